"""`ccpt train` (not built yet: the command exists so help and completion list it)."""

from __future__ import annotations

from ccpt.errors import NotBuiltYet


def train() -> None:
    raise NotBuiltYet("train")
