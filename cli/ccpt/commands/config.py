"""`ccpt config`: show resolved settings and where each one came from."""

from __future__ import annotations

import typer
from rich.markup import escape

from ccpt.commands.common import examples, load_settings
from ccpt.commands.output import console, make_table, print_json
from ccpt.config import SPECS_BY_NAME, ResolvedSetting, Settings, SettingSpec

app = typer.Typer(
    help="Show ccpt's settings and where each value came from.",
    no_args_is_help=True,
    epilog=examples("ccpt config show", "CCPT_MODEL=claude-opus-5-5 ccpt config show --json"),
)


@app.command("show", epilog=examples("ccpt config show --json"))
def show(json_output: bool = typer.Option(False, "--json", help="Print the settings as JSON.")) -> None:
    """Each setting's resolved value (secrets masked) and its source.

    Precedence: defaults < [tool.ccpt] in pyproject.toml or ccpt.toml < CCPT_* environment < flags.
    """
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
    rows = [(v.name, _shown(v, settings), v.source, _env_names(SPECS_BY_NAME[v.name])) for v in values]
    console.print(
        make_table(f"ccpt settings (config file: {found})", ["setting", "value", "source", "env"], rows)
    )


def _shown(value: ResolvedSetting, settings: Settings) -> str:
    """The value, or (dimmed) what applies while it is unset."""
    if value.value is not None:
        return escape(value.display_value())
    unset = settings.when_unset(value.name)
    return f"[dim]unset: {escape(unset)}[/dim]" if unset else ""


def _env_names(spec: SettingSpec) -> str:
    return ", ".join((spec.env_var, *spec.extra_env))
