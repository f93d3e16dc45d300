"""`ccpt doctor`: a table of what this machine offers ccpt."""

from __future__ import annotations

import typer

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
    rows = [(c.name, styled_status(c.status), c.detail, c.fix) for c in checks]
    console.print(make_table("ccpt doctor", ["check", "status", "detail", "fix"], rows))


EPILOG = examples("ccpt doctor", "ccpt doctor --json | jq '.[] | select(.status != \"OK\")'")
