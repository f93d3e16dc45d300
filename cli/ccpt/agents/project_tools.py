"""Read-only tools that let a role look at the engineer's project during `ccpt ask`.

Three tools, `read_file`, `list_files` and `grep`, confined to one directory: a path that
resolves outside it (`../`, an absolute path, a symlink pointing away) is refused, files that
usually hold secrets are refused, and every answer is capped in size so a tool call cannot
flood the context window. Nothing here writes, runs or fetches anything.
"""

from __future__ import annotations

import fnmatch
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAX_READ_BYTES = 64 * 1024
MAX_LISTED = 300
MAX_MATCHES = 100
MAX_GREP_FILE_BYTES = 1024 * 1024
SKIPPED_DIRS = frozenset(
    {".git", ".hg", ".venv", "venv", "node_modules", "__pycache__", ".mypy_cache", ".ruff_cache"}
)
SECRET_NAMES = (
    ".env",
    ".env.*",
    "*.pem",
    "*.key",
    "id_rsa*",
    "id_ed25519*",
    "credentials",
    ".netrc",
    "*.p12",
)

TOOL_SCHEMAS: list[dict[str, Any]] = [
    {
        "name": "read_file",
        "description": "Read a text file of the engineer's project (read-only). Paths are relative to the "
        "project root. Large files are cut; ask for a line range to see more.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {"type": "string", "description": "File path relative to the project root."},
                "start_line": {"type": "integer", "minimum": 1},
                "end_line": {"type": "integer", "minimum": 1},
            },
            "required": ["path"],
        },
    },
    {
        "name": "list_files",
        "description": "List the files under a directory of the project (recursive), optionally filtered "
        "by a glob pattern such as '*.py'.",
        "input_schema": {
            "type": "object",
            "properties": {
                "path": {
                    "type": "string",
                    "description": "Directory relative to the project root; default '.'",
                },
                "pattern": {"type": "string", "description": "Glob on file names, e.g. '*.py'"},
            },
        },
    },
    {
        "name": "grep",
        "description": "Search the project's text files for a regular expression; returns file:line: text.",
        "input_schema": {
            "type": "object",
            "properties": {
                "pattern": {"type": "string", "description": "Python regular expression"},
                "path": {"type": "string", "description": "Directory or file to search; default '.'"},
                "glob": {"type": "string", "description": "Only files whose name matches, e.g. '*.py'"},
            },
            "required": ["pattern"],
        },
    },
]


@dataclass(frozen=True)
class ToolOutcome:
    ok: bool
    text: str

    @property
    def summary(self) -> str:
        first = self.text.splitlines()[0] if self.text else ""
        return first if len(first) <= 100 else first[:99] + "…"


class Refused(Exception):
    """A tool call that may not be served; the message goes back to the model."""


class ProjectTools:
    """The tools for one project root."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()

    def run(self, name: str, arguments: dict[str, Any]) -> ToolOutcome:
        handlers: dict[str, Callable[..., str]] = {
            "read_file": self._read_file,
            "list_files": self._list_files,
            "grep": self._grep,
        }
        handler = handlers.get(name)
        if handler is None:
            return ToolOutcome(False, f"unknown tool `{name}`; use read_file, list_files or grep")
        try:
            return ToolOutcome(True, handler(**arguments))
        except Refused as exc:
            return ToolOutcome(False, f"refused: {exc}")
        except TypeError as exc:
            return ToolOutcome(False, f"bad arguments for {name}: {exc}")
        except OSError as exc:
            return ToolOutcome(False, f"{name} failed: {exc.strerror or exc}")

    def _resolve(self, path: str | None) -> Path:
        """`path` inside the root, or Refused."""
        candidate = (self.root / (path or ".")).resolve()
        if candidate != self.root and self.root not in candidate.parents:
            raise Refused(f"`{path}` is outside the project directory")
        relative = candidate.relative_to(self.root)
        if any(part in SKIPPED_DIRS for part in relative.parts[:-1]) or _is_secret(candidate.name):
            raise Refused(
                f"`{path}` is not shared with the team (secrets and tool directories are off limits)"
            )
        return candidate

    def _relative(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix() or "."

    def _read_file(self, path: str, start_line: int | None = None, end_line: int | None = None) -> str:
        target = self._resolve(path)
        if not target.is_file():
            raise Refused(f"`{path}` is not a file")
        data = target.read_bytes()
        if b"\x00" in data[:8192]:
            raise Refused(f"`{path}` is binary")
        lines = data.decode("utf-8", errors="replace").splitlines()
        first = max(1, start_line or 1)
        last = min(len(lines), end_line or len(lines))
        shown: list[str] = []
        size = 0
        for number in range(first, last + 1):
            line = f"{number:>5}  {lines[number - 1]}"
            size += len(line) + 1
            if size > MAX_READ_BYTES:
                last = number - 1
                break
            shown.append(line)
        cut = last < min(len(lines), end_line or len(lines))
        note = f" (cut at {MAX_READ_BYTES // 1024} KiB; start_line={last + 1} goes on)" if cut else ""
        return f"{self._relative(target)} lines {first}-{last} of {len(lines)}{note}\n" + "\n".join(shown)

    def _files(self, top: Path, pattern: str | None) -> list[Path]:
        if top.is_file():
            return [top]
        found: list[Path] = []
        for directory, dirs, files in os.walk(top):
            dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
            for name in sorted(files):
                if _is_secret(name) or (pattern and not fnmatch.fnmatch(name, pattern)):
                    continue
                path = Path(directory) / name
                if path.resolve().is_relative_to(self.root):  # a symlink may point away
                    found.append(path)
        return found

    def _list_files(self, path: str = ".", pattern: str | None = None) -> str:
        top = self._resolve(path)
        if not top.is_dir():
            raise Refused(f"`{path}` is not a directory")
        files = self._files(top, pattern)
        shown = [self._relative(f) for f in files[:MAX_LISTED]]
        more = f"\n… and {len(files) - MAX_LISTED} more" if len(files) > MAX_LISTED else ""
        return f"{len(files)} files under {self._relative(top)}\n" + "\n".join(shown) + more

    def _grep(self, pattern: str, path: str = ".", glob: str | None = None) -> str:
        try:
            regex = re.compile(pattern)
        except re.error as exc:
            raise Refused(f"invalid regular expression: {exc}") from None
        matches: list[str] = []
        for file in self._files(self._resolve(path), glob):
            if file.stat().st_size > MAX_GREP_FILE_BYTES:
                continue
            data = file.read_bytes()
            if b"\x00" in data[:8192]:
                continue
            for number, line in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
                if regex.search(line):
                    matches.append(f"{self._relative(file)}:{number}: {line.strip()[:200]}")
                    if len(matches) >= MAX_MATCHES:
                        return f"first {MAX_MATCHES} matches (narrow the pattern or path)\n" + "\n".join(
                            matches
                        )
        return f"{len(matches)} matches\n" + "\n".join(matches)


def _is_secret(name: str) -> bool:
    return any(fnmatch.fnmatch(name, pattern) for pattern in SECRET_NAMES)
