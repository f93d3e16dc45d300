"""Rendering shared by every command: consoles, JSON, tables and the error line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

console = Console()
err_console = Console(stderr=True)

STATUS_STYLES = {"OK": "green", "PASS": "green", "WARN": "yellow", "MISSING": "red", "FAIL": "red"}


def print_json(data: Any) -> None:
    """Plain JSON on stdout (no colour, no wrapping) for scripts."""
    sys.stdout.write(json.dumps(data, indent=2, default=str) + "\n")


def styled_status(status: str) -> str:
    style = STATUS_STYLES.get(status, "")
    return f"[{style}]{status}[/{style}]" if style else status


def make_table(title: str | None, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> Table:
    table = Table(title=title, title_justify="left", header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(str(cell) for cell in row))
    return table


def fit_columns(table: Table, prose: str, optional: Sequence[str], min_prose: int = 24) -> Table:
    """Drop `optional` columns, in that order, until the table fits the console.

    The `prose` column (the one that wraps) keeps at least `min_prose` characters: without this a
    narrow terminal squeezes it to nothing while the unwrappable columns keep their full width.
    """
    from rich.measure import Measurement

    def column(header: str) -> Column:
        return next(c for c in table.columns if c.header == header)

    column(prose).min_width = min_prose
    for other in table.columns:
        if other.no_wrap:  # rich measures them by their longest word, yet never wraps them
            texts = [other.header, *other.cells]
            other.min_width = max(Text.from_markup(t).cell_len for t in texts if isinstance(t, str))
    unbounded = console.options.update_width(10_000)
    for header in optional:
        if Measurement.get(console, unbounded, table).minimum <= console.width:
            break
        table.columns.remove(column(header))
    return table


def print_error(message: str, hint: str | None = None) -> None:
    """The one line every failure becomes: what is wrong, then what to do."""
    # Messages quote paths, user input and settings such as [tool.ccpt]: never read as markup.
    line = f"[bold red]error:[/bold red] {escape(message)}"
    if hint:
        line += f" [dim]— {escape(hint)}[/dim]"
    err_console.print(line, highlight=False, soft_wrap=True)
