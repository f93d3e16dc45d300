"""`ccpt new` (not built yet: the command exists so help and completion list it)."""

from __future__ import annotations

from ccpt.errors import NotBuiltYet


def new() -> None:
    raise NotBuiltYet("new")
