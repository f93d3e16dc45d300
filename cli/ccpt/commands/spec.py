"""`ccpt spec` (not built yet: the group exists so help and completion list it)."""

from __future__ import annotations

import typer

from ccpt.errors import NotBuiltYet

app = typer.Typer(invoke_without_command=True)


@app.callback()
def spec() -> None:
    raise NotBuiltYet("spec")
