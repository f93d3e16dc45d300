"""Putting a finished render where the user asked, all at once or not at all.

A render is staged in a hidden folder beside the target (same filesystem, so moves are renames).
A missing target is one rename; an existing folder gets the render's top-level entries renamed
in, descending only into folders both sides have, with Ctrl-C held until the last move. Nothing
of the user's is deleted: with --force, only files at the template's own paths are replaced.
"""

from __future__ import annotations

import filecmp
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ccpt.errors import CcptError
from ccpt.scaffold.interrupts import interrupts_held


@dataclass(frozen=True)
class Target:
    """The folder a project goes to, as found before anything was written."""

    path: Path
    exists: bool
    entries: tuple[str, ...]

    @property
    def fresh(self) -> bool:
        """Missing or empty: the render can become the folder as a whole."""
        return not self.entries


def inspect_target(path: Path, force: bool) -> Target:
    """Check that `path` can receive a project: missing, empty, or non-empty with --force."""
    if path.exists() and not path.is_dir():
        raise CcptError(f"{path} exists and is not a folder", hint="choose another path")
    entries = tuple(sorted(os.listdir(path))) if path.exists() else ()
    if entries and not force:
        shown = ", ".join(entries[:4]) + (", ..." if len(entries) > 4 else "")
        raise CcptError(
            f"{path} is not empty ({len(entries)} entries: {shown})",
            hint="choose a new folder, or pass --force to render into it (your other files are kept)",
        )
    return Target(path, path.exists(), entries)


@contextmanager
def staging_dir(target: Path) -> Iterator[Path]:
    """A hidden folder beside `target` for the render; removed on the way out, whatever happens.

    Parent folders it had to create are removed again if nothing ended up in them.
    """
    created = [parent for parent in reversed(target.parents) if not parent.exists()]
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        stage = Path(tempfile.mkdtemp(prefix=f".{target.name}.ccpt-", dir=target.parent))
    except OSError as exc:
        raise CcptError(
            f"cannot create the project beside {target}: {exc.strerror}",
            hint="choose a folder you can write to",
        ) from exc
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)
        for parent in reversed(created):
            try:
                parent.rmdir()
            except OSError:
                break  # not empty: the project (or something of the user's) is in it


def blocked_paths(render_dir: Path, target: Path) -> list[str]:
    """Paths where the render and the target disagree on file versus folder."""
    blocked = []
    for source in sorted(render_dir.rglob("*")):
        relative = source.relative_to(render_dir)
        existing = target / relative
        if existing.exists() and existing.is_dir() != source.is_dir():
            blocked.append(relative.as_posix())
    return blocked


def replaced_files(render_dir: Path, target: Path, files: Iterable[str]) -> list[str]:
    """The user's files at the template's paths whose content the render would change."""
    return [
        path
        for path in files
        if (target / path).is_file() and not filecmp.cmp(render_dir / path, target / path, shallow=False)
    ]


def move_into_place(render_dir: Path, target: Target) -> None:
    """Move the render to the target: one rename when the target is missing, else entry by entry."""
    if not target.exists:
        try:
            os.rename(render_dir, target.path)
        except OSError as exc:  # something else created the folder while we rendered
            raise CcptError(
                f"{target.path} appeared while rendering ({exc.strerror}); nothing was written"
            ) from exc
        return
    blocked = blocked_paths(render_dir, target.path)
    if blocked:
        raise CcptError(
            f"{target.path}: a file and a folder share a path with the template: {', '.join(blocked[:5])}",
            hint="move those aside, then run ccpt new again",
        )
    with interrupts_held():
        _merge_tree(render_dir, target.path)


def _merge_tree(source: Path, dest: Path) -> None:
    for entry in sorted(os.listdir(source)):
        src, dst = source / entry, dest / entry
        if src.is_dir() and dst.is_dir():
            _merge_tree(src, dst)
        else:
            os.replace(src, dst)
