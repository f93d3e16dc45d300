"""Shell completion for spec references: the built-in ids, then spec files and folders on disk."""

from __future__ import annotations

import contextlib
from pathlib import Path


def complete_spec(incomplete: str) -> list[tuple[str, str]]:
    """(value, help) pairs for `--spec` and the `ccpt spec` commands' SPEC argument.

    A built-in id completes with its title as help; a path completes to folders (to go on into)
    and to files whose suffix a spec can have. Errors never reach the shell: completion that
    raises prints a traceback into the user's prompt.
    """
    from ccpt.errors import CcptError
    from ccpt.specs.library import SPEC_SUFFIXES, list_builtin_specs

    choices: list[tuple[str, str]] = []
    if "/" not in incomplete:
        with contextlib.suppress(CcptError):  # a broken built-in file still leaves the paths
            choices += [(s.id, s.title) for s in list_builtin_specs() if s.id.startswith(incomplete)]
    folder, slash, stem = incomplete.rpartition("/")
    prefix = folder + slash  # "" in the current folder, "/" at the root, "specs/" below
    try:
        entries = sorted(Path(prefix or ".").iterdir())
    except OSError:
        return choices
    for entry in entries:
        if not entry.name.startswith(stem) or (entry.name.startswith(".") and not stem.startswith(".")):
            continue
        if entry.is_dir():
            choices.append((f"{prefix}{entry.name}/", "folder"))
        elif entry.suffix.lower() in SPEC_SUFFIXES:
            choices.append((f"{prefix}{entry.name}", "spec file"))
    return choices
