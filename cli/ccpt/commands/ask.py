"""`ccpt ask` (not built yet: the command exists so help and completion list it)."""

from __future__ import annotations

from ccpt.errors import NotBuiltYet


def ask() -> None:
    raise NotBuiltYet("ask")
