"""`ccpt doctor`: a table of what this machine offers ccpt."""

from __future__ import annotations

import typer
from rich.markup import escape

from ccpt.commands.common import examples, load_settings
from ccpt.commands.output import console, make_table, print_json, styled_status

HELP = "Check this machine: Python, torch/CUDA/GPUs, HF libraries, Claude key, AWS, ssh, rsync."


def doctor(
    json_output: bool = typer.Option(False, "--json", help="Print the checks as JSON."),
) -> None:
    from ccpt.doctor import run_checks

    checks = run_checks(load_settings())
    if json_output:
        print_json([check.to_dict() for check in checks])
        return
    rows = [(c.name, styled_status(c.status), _detail_and_fix(c.detail, c.fix)) for c in checks]
    table = make_table("ccpt doctor", ["check", "status", "detail"], rows)
    for column in table.columns[:2]:
        column.no_wrap = True
    console.print(table)


def _detail_and_fix(detail: str, fix: str) -> str:
    # The fix goes under its detail rather than in a column of its own: one wrapping column reads
    # well in 80 columns, where two side by side broke every path and command mid-word.
    return escape(detail) + (f"\n[cyan]fix:[/] {escape(fix)}" if fix else "")


EPILOG = examples("ccpt doctor", "ccpt doctor --json | jq '.[] | select(.status != \"OK\")'")
