"""`ccpt update` (not built yet: the command exists so help and completion list it)."""

from __future__ import annotations

from ccpt.errors import NotBuiltYet


def update() -> None:
    raise NotBuiltYet("update")
