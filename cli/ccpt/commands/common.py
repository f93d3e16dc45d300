"""Pieces shared by command modules: settings from flags, examples in help text."""

from __future__ import annotations

from typing import Any

import typer

from ccpt.config import Settings, resolve_settings

# The AWS options of `ccpt ec2` and `ccpt train --ec2-tag`.
AWS_REGION = typer.Option(None, "--region", help="AWS region (setting region; else AWS_DEFAULT_REGION).")
AWS_PROFILE = typer.Option(None, "--profile", help="AWS profile (setting profile).")
AWS_ENDPOINT = typer.Option(
    None, "--endpoint-url", help="EC2 endpoint, e.g. LocalStack or moto (setting endpoint_url)."
)


def load_settings(**flags: Any) -> Settings:
    """Resolve settings with the flags that were given (None means 'not given')."""
    return resolve_settings(flags={key: value for key, value in flags.items() if value is not None})


def examples(*lines: str) -> str:
    """An epilog listing example command lines, one per line in rich help."""
    body = "\n\n".join(f"  [cyan]$ {line}[/cyan]" for line in lines)
    return f"[bold]Examples[/bold]\n\n{body}"
