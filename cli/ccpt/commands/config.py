"""`ccpt config`: show resolved settings and where each one came from."""

from __future__ import annotations

import typer

from ccpt.commands.common import examples, load_settings
from ccpt.commands.output import console, make_table, print_json

app = typer.Typer(
    help="Show ccpt's settings and where each value came from.",
    no_args_is_help=True,
    epilog=examples("ccpt config show", "CCPT_MODEL=claude-opus-4-1 ccpt config show --json"),
)


@app.command("show", epilog=examples("ccpt config show --json"))
def show(json_output: bool = typer.Option(False, "--json", help="Print the settings as JSON.")) -> None:
    """Each setting's resolved value (secrets masked) and its source.

    Precedence: defaults < [tool.ccpt] in pyproject.toml or ccpt.toml < CCPT_* environment < flags.
    """
    from ccpt.config import SPECS_BY_NAME

    settings = load_settings()
    values = list(settings.resolved.values())
    if json_output:
        print_json(
            {
                "config_file": str(settings.config_file) if settings.config_file else None,
                "settings": {
                    v.name: {"value": v.display_value() if v.secret else v.value, "source": v.source}
                    for v in values
                },
            }
        )
        return
    found = str(settings.config_file) if settings.config_file else "none found"
    rows = [(v.name, v.display_value(), v.source, SPECS_BY_NAME[v.name].env_var) for v in values]
    console.print(
        make_table(f"ccpt settings (config file: {found})", ["setting", "value", "source", "env"], rows)
    )
