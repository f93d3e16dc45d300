"""Pieces shared by command modules: settings from flags, examples in help text."""

from __future__ import annotations

from typing import Any

from ccpt.config import Settings, resolve_settings


def load_settings(**flags: Any) -> Settings:
    """Resolve settings with the flags that were given (None means 'not given')."""
    return resolve_settings(flags={key: value for key, value in flags.items() if value is not None})


def examples(*lines: str) -> str:
    """An epilog listing example command lines, one per line in rich help."""
    body = "\n\n".join(f"  [cyan]$ {line}[/cyan]" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"
