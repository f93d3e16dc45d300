"""The few git operations `ccpt new` and `ccpt update` need, run as argv lists.

The pristine render of the template is stored as commits made with plumbing (a private index
file, `write-tree`, `commit-tree`, `update-ref`), so the user's branch, index and working tree
are never touched by recording it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from ccpt.errors import CcptError

# Used for ccpt's own commits only when git has no identity configured (a fresh CI machine);
# passed with `-c` for that one command, never written into the user's config.
FALLBACK_IDENTITY = ("ccpt", "ccpt@localhost")


def require_git() -> str:
    """The git executable, or a clear error saying how to go without it."""
    git = shutil.which("git")
    if not git:
        raise CcptError("git is not installed", hint="install git, or pass --no-git")
    return git


def blob_sha(data: bytes) -> str:
    """The object id git gives `data` as a blob (sha1 of header + content), without running git."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


@dataclass(frozen=True)
class TreeEntry:
    mode: str
    sha: str


class Git:
    """git commands in one repository (`path` is its work tree)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.executable = require_git()

    def run(
        self,
        *args: str,
        env: Mapping[str, str] | None = None,
        input: bytes | None = None,
        check: bool = True,
    ) -> subprocess.CompletedProcess[bytes]:
        """Run `git -C path ARGS`; a failure becomes a CcptError naming the command and git's words."""
        result = subprocess.run(
            [self.executable, "-C", str(self.path), *args],
            env={**os.environ, **(env or {})},
            input=input,
            capture_output=True,
        )
        if check and result.returncode != 0:
            words = result.stderr.decode(errors="replace").strip().splitlines()
            command = next(arg for arg in args if not arg.startswith("-") and "=" not in arg)
            raise CcptError(f"`git {command}` failed in {self.path}: {words[-1] if words else 'no message'}")
        return result

    def text(self, *args: str, env: Mapping[str, str] | None = None) -> str:
        return self.run(*args, env=env).stdout.decode().strip()

    # -- repository state ------------------------------------------------------------------

    def is_repo_root(self) -> bool:
        result = self.run("rev-parse", "--show-toplevel", check=False)
        if result.returncode != 0:
            return False
        return Path(result.stdout.decode().strip()).resolve() == self.path.resolve()

    def init(self) -> None:
        """`git init`, on the user's default branch name if they chose one, else `main`."""
        configured = subprocess.run(
            [self.executable, "config", "--get", "init.defaultBranch"], capture_output=True, text=True
        ).stdout.strip()
        self.run("init", "-q", "-b", configured or "main")

    def identity_flags(self) -> list[str]:
        """`-c user.name=... -c user.email=...` for ccpt's commits when git has no identity."""
        flags: list[str] = []
        for key, fallback in zip(("user.name", "user.email"), FALLBACK_IDENTITY, strict=True):
            if self.run("config", "--get", key, check=False).returncode != 0:
                flags += ["-c", f"{key}={fallback}"]
        return flags

    def rev_parse(self, rev: str) -> str | None:
        """The commit id `rev` names, or None when it does not exist."""
        result = self.run("rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}", check=False)
        return result.stdout.decode().strip() if result.returncode == 0 else None

    def dirty_paths(self) -> list[str]:
        """Changed, staged and untracked (not ignored) paths: what would make an update unsafe."""
        out = self.run("status", "--porcelain=v1", "-z", "--untracked-files=all").stdout.decode()
        paths = []
        entries = iter(out.split("\0"))
        for entry in entries:
            if not entry:
                continue
            paths.append(entry[3:])
            if entry[0] in "RC":  # a rename or copy is followed by its source path
                next(entries, None)
        return paths

    # -- commits made with plumbing ----------------------------------------------------------

    def listed_files(self, directory: Path) -> list[str]:
        """Files under `directory` that `git add -A` would take (its .gitignore applied), sorted."""
        with tempfile.TemporaryDirectory(prefix="ccpt-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            out = self.run(
                f"--work-tree={directory.resolve()}",
                "ls-files",
                "-z",
                "--others",
                "--exclude-standard",
                env=env,
            ).stdout.decode()
        return sorted(path for path in out.split("\0") if path)

    def commit_directory(self, directory: Path, message: str, parents: Iterable[str] = ()) -> str:
        """A commit whose tree is `directory`'s files; no branch, index or work tree is touched."""
        with tempfile.TemporaryDirectory(prefix="ccpt-index-") as scratch:
            env = {"GIT_INDEX_FILE": str(Path(scratch) / "index")}
            self.run(f"--work-tree={directory.resolve()}", "add", "-A", ".", env=env)
            tree = self.text("write-tree", env=env)
        parent_args = [arg for parent in parents for arg in ("-p", parent)]
        return self.text(*self.identity_flags(), "commit-tree", tree, *parent_args, "-m", message)

    def set_branch(self, name: str, commit: str, expected_old: str | None = None) -> None:
        """Point `refs/heads/NAME` at `commit` (only if it still is `expected_old`, when given)."""
        args = ["update-ref", "-m", "ccpt: record template render", f"refs/heads/{name}", commit]
        if expected_old:
            args.append(expected_old)
        self.run(*args)

    def commit_all(self, message: str) -> str:
        """Stage everything and commit it on the current branch (hooks skipped: ccpt wrote the files)."""
        self.run("add", "-A", ".")
        self.run(*self.identity_flags(), "commit", "-q", "--no-verify", "-m", message)
        return self.text("rev-parse", "HEAD")

    # -- reading stored trees ------------------------------------------------------------------

    def ls_tree(self, rev: str) -> dict[str, TreeEntry]:
        """Every file of `rev`'s tree: path -> (mode, blob id)."""
        out = self.run("ls-tree", "-r", "-z", "--full-tree", rev).stdout.decode()
        entries = {}
        for record in out.split("\0"):
            if not record:
                continue
            meta, path = record.split("\t", 1)
            mode, kind, sha = meta.split()
            if kind == "blob":
                entries[path] = TreeEntry(mode, sha)
        return entries

    def read_blobs(self, shas: Iterable[str]) -> dict[str, bytes]:
        """The contents of several blobs through one `git cat-file --batch`."""
        wanted = list(dict.fromkeys(shas))
        if not wanted:
            return {}
        out = self.run("cat-file", "--batch", input="".join(f"{sha}\n" for sha in wanted).encode()).stdout
        blobs: dict[str, bytes] = {}
        position = 0
        for sha in wanted:
            header_end = out.index(b"\n", position)
            size = int(out[position:header_end].split()[2])
            start = header_end + 1
            blobs[sha] = out[start : start + size]
            position = start + size + 1
        return blobs


def merge_texts(ours: bytes, base: bytes, theirs: bytes, labels: tuple[str, str, str]) -> tuple[bytes, int]:
    """Three-way merge with `git merge-file`: the merged bytes and how many conflicts it marked."""
    with tempfile.TemporaryDirectory(prefix="ccpt-merge-") as scratch:
        paths = []
        for name, data in (("ours", ours), ("base", base), ("theirs", theirs)):
            path = Path(scratch) / name
            path.write_bytes(data)
            paths.append(str(path))
        label_args = [arg for label in labels for arg in ("-L", label)]
        result = subprocess.run([require_git(), "merge-file", "-p", *label_args, *paths], capture_output=True)
    if result.returncode < 0 or result.returncode > 127:
        raise CcptError(f"`git merge-file` failed: {result.stderr.decode(errors='replace').strip()}")
    return result.stdout, result.returncode
