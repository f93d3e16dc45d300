"""`ccpt agent`: list, show and consult the specialist roles.

Every role is its own subcommand (`ccpt agent NetworkArchitect "..."`), so `--help` lists
them and shell completion offers them. The roles are read from their files only when the
`agent` group itself runs: `ccpt --help` never touches them, and the group reads fifteen short
front-matter blocks without importing YAML or the SDK.
"""

from __future__ import annotations

import copy
import json
from functools import cache
from pathlib import Path
from typing import Any

import typer
from typer.core import TyperGroup

from ccpt.commands.common import examples, load_settings
from ccpt.commands.completion import complete_spec
from ccpt.commands.output import console, fit_columns, make_table, print_json
from ccpt.errors import CcptError

ROLES_PANEL = "Roles"
_KIND_LABELS = {"ask-route": " (ask: routing)", "ask-role": " (ask)", "ask-synthesis": " (ask: synthesis)"}


class AgentGroup(TyperGroup):
    """A Typer group whose subcommands are the fixed ones plus one per role in the roster."""

    _roster: Any = None

    def roster(self) -> Any:
        if self._roster is None:
            from ccpt.agents.roster import load_roster

            self._roster = load_roster()
        return self._roster

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *self.roster().names()]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            return command
        try:
            role = self.roster().find(cmd_name)
        except CcptError:
            if ctx.resilient_parsing:  # shell completion: ambiguity is not an error
                return None
            raise
        return role_command(role) if role else None

    def resolve_command(self, ctx: Any, args: list[str]) -> Any:
        name = args[0] if args else ""
        if (
            name
            and not name.startswith("-")
            and not ctx.resilient_parsing
            and self.get_command(ctx, name) is None
        ):
            self.roster().get(name)  # raises "no role named ... did you mean ..."
        return super().resolve_command(ctx, args)


app = typer.Typer(
    cls=AgentGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    epilog=examples(
        "ccpt agent list",
        'ccpt agent NetworkArchitect "fused QKV or separate projections for a 12-layer ViT?"',
        'cat train.log | ccpt agent DataEngineer "why is the GPU idle half the time?"',
        "ccpt agent log",
    ),
)


def _short(description: str, limit: int = 90) -> str:
    first = description.split(". ")[0].rstrip(".")
    return first if len(first) <= limit else first[: limit - 1].rstrip() + "…"


def role_command(role: Any) -> Any:
    """The `ccpt agent ROLE` command for `role`: the consultation command under the role's name."""
    command = copy.copy(_consult_command())
    command.name = role.title
    command.short_help = _short(role.description)
    owned = role.owns.split()[0] if role.owns else ""
    # Most descriptions already say what the role owns, in their own words.
    owns = f" Owns {role.owns}." if owned and owned not in role.description else ""
    command.help = f"{role.description}{owns}\n\nAsk [bold]{role.title}[/bold] a question through Claude."
    example_file = owned if Path(owned).suffix else "specs/task.yaml"  # a file of its own, if it has one
    command.epilog = examples(
        f'ccpt agent {role.title} "your question"',
        f'ccpt agent {role.short_alias} -f {example_file} "review this"',
        f'ccpt agent {role.title} -c "and if memory is the limit?"',
    )
    command.rich_help_panel = ROLES_PANEL
    return command


def consult(
    ctx: typer.Context,
    question: list[str] | None = typer.Argument(
        None, help="The question (quote it, or write it as several words).", show_default=False
    ),
    model: str | None = typer.Option(
        None,
        "--model",
        "-m",
        help="Model id or alias (opus, sonnet, haiku); default: the role's, then settings.",
    ),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Upper bound on the answer's tokens."
    ),
    files: list[Path] = typer.Option(
        [], "--file", "-f", help="A text file to send with its path (repeatable).", show_default=False
    ),
    spec: str | None = typer.Option(
        None, "--spec", help="A task spec (file or built-in name) to attach.", autocompletion=complete_spec
    ),
    system: str | None = typer.Option(
        None, "--system", help="Extra instructions appended to the system prompt."
    ),
    continue_: bool = typer.Option(
        False, "--continue", "-c", help="Continue the last conversation with this role."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print answer, model, usage, cost and ids as JSON."
    ),
    no_stream: bool = typer.Option(
        False, "--no-stream", help="Wait for the whole answer instead of streaming."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the exact request and the prompt-cache check; send nothing."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not record this consultation in the history."),
    timeout: float | None = typer.Option(
        None, "--timeout", min=1, help="Seconds before the request is abandoned."
    ),
) -> None:
    from ccpt.agents.consult import prepare_consultation
    from ccpt.commands.agent_view import print_notice, read_piped_stdin

    settings = load_settings(model=None, max_tokens=max_tokens, timeout=timeout)
    roster = _roster(ctx)
    consultation = prepare_consultation(
        roster,
        ctx.command.name or "",
        " ".join(question or []),
        settings,
        model=model,
        max_tokens=max_tokens,
        files=files,
        stdin_text=read_piped_stdin(),
        spec=spec,
        system=system,
        continue_last=continue_,
    )
    for notice in consultation.notices:
        print_notice(notice)
    if dry_run:
        _print_dry_run(consultation, settings, json_output)
        return
    from ccpt.agents.client import require_api_key

    require_api_key(settings.anthropic_api_key)
    _run(consultation, settings, json_output=json_output, stream=not no_stream, log=not no_log)


def _print_dry_run(consultation: Any, settings: Any, json_output: bool) -> None:
    from anthropic._constants import ANTHROPIC_API_VERSION

    from ccpt.agents.client import messages_url
    from ccpt.agents.consult import check_cache
    from ccpt.commands.agent_view import print_footer, print_notice

    plan = check_cache(consultation, settings)
    request = {
        "method": "POST",
        "url": messages_url(settings.anthropic_base_url),
        "headers": {
            "anthropic-version": ANTHROPIC_API_VERSION,
            "authorization": "Bearer $ANTHROPIC_API_KEY"
            if settings.anthropic_api_key
            else "(ANTHROPIC_API_KEY not set)",
            "content-type": "application/json",
        },
        "body": consultation.request.body(stream=True),
    }
    if json_output:
        request["cache"] = plan.to_dict()
    print_json(request)
    (print_footer if plan.reaches else print_notice)(plan.describe())
    print_footer("dry run: nothing was sent")


def _run(consultation: Any, settings: Any, *, json_output: bool, stream: bool, log: bool) -> None:
    from ccpt.agents.consult import ConsultResult, run_consultation
    from ccpt.commands.agent_view import (
        print_answer,
        print_footer,
        print_notice,
        render_stream,
        split_events,
        usage_line,
    )

    markdown = console.is_terminal and not json_output
    events = run_consultation(consultation, settings, stream=stream, log=log)
    texts, results = split_events(events, ConsultResult)
    if stream and not json_output:
        render_stream(texts, markdown)
    else:
        for _ in texts:  # drain the events; the result arrives last
            pass
        if not json_output:
            print_answer(results[0].answer, markdown)
    result = results[0]
    if json_output:
        print_json(result.to_dict())
        return
    if result.stop_reason == "max_tokens":
        print_notice(f"the answer was cut at {consultation.request.max_tokens:,} tokens; raise --max-tokens")
    logged = f" · log #{result.entry_id}" if result.entry_id else ""
    print_footer(f"{result.role} · {usage_line(result.model, result.usage, result.cost_usd)}{logged}")


@cache
def _consult_command() -> Any:
    """The click command built from `consult`, made once and copied for each role."""
    holder = typer.Typer(add_completion=False, rich_markup_mode="rich")
    holder.command("consult")(consult)
    return typer.main.get_command(holder)


@app.command("list", epilog=examples("ccpt agent list", "ccpt agent list --json"))
def list_roles(
    ctx: typer.Context, json_output: bool = typer.Option(False, "--json", help="Print the roles as JSON.")
) -> None:
    """The roles: name, team, what they are for, model, and where each was loaded from."""
    from ccpt.agents.consult import choose_model

    roster = _roster(ctx)
    default = load_settings().model
    rows = [(role, choose_model(None, role, default)) for role in roster.roles]
    if json_output:
        print_json(
            [
                {
                    "name": role.title,
                    "file_name": role.name,
                    "team": role.team,
                    "description": role.description,
                    "model": model,
                    "model_alias": role.model,
                    "owns": role.owns,
                    "hands_to": list(role.hands_to),
                    "source": role.source,
                    "path": str(role.path),
                }
                for role, model in rows
            ]
        )
        return
    table = make_table(
        f'{len(rows)} roles (ccpt agent NAME "question")',
        ["name", "team", "description", "model", "source"],
        [
            (role.title, role.team or "—", _short(role.description, 70), model, role.source)
            for role, model in rows
        ],
    )
    for column in (0, 1, 3, 4):  # only the description wraps
        table.columns[column].no_wrap = True
    console.print(fit_columns(table, "description", ["team", "source", "model"]))


@app.command("show", epilog=examples("ccpt agent show NetworkArchitect", "ccpt agent show network --charter"))
def show_role(
    ctx: typer.Context,
    name: str = typer.Argument(..., help="Role name: NetworkArchitect, network-architect or network."),
    charter: bool = typer.Option(False, "--charter", help="Also print the team charter every role receives."),
    json_output: bool = typer.Option(False, "--json", help="Print the role as JSON."),
) -> None:
    """A role's card (team, model, tools, hand-offs, file) and its full prompt."""
    from ccpt.agents.consult import choose_model

    roster = _roster(ctx)
    role = roster.get(name)
    model = choose_model(None, role, load_settings().model)
    card = {
        "name": role.title,
        "file name": role.name,
        "team": role.team or "—",
        "owns": role.owns or "—",
        "hands work to": ", ".join(role.hands_to) or "—",
        "model": f"{model}" + (f" ({role.model})" if role.model else " (settings)"),
        "tools": ", ".join(role.tools) or "—",
        "source": f"{role.source}: {role.path}",
        "use when": role.description,
    }
    if json_output:
        print_json({**card, "prompt": role.prompt, **({"charter": roster.charter} if charter else {})})
        return
    from rich.markdown import Markdown
    from rich.table import Table

    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan")
    grid.add_column()
    for key, value in card.items():
        grid.add_row(key, value)
    console.print(grid)
    console.rule()
    if charter:
        console.print(Markdown(roster.charter))
        console.rule()
    console.print(Markdown(role.prompt))


@app.command("log", epilog=examples("ccpt agent log", "ccpt agent log --role network", "ccpt agent log 12"))
def log(
    ctx: typer.Context,
    entry_id: int | None = typer.Argument(None, help="Show this entry in full."),
    role: str | None = typer.Option(None, "--role", "-r", help="Only this role's consultations."),
    limit: int = typer.Option(20, "--limit", "-n", min=1, help="How many entries to list."),
    json_output: bool = typer.Option(False, "--json", help="Print entries as JSON."),
) -> None:
    """Past consultations, newest first; with an id, one of them in full."""
    from ccpt.agents.consult import history_of
    from ccpt.commands.agent_view import format_cost, print_answer, print_footer, usage_line

    history = history_of(load_settings())
    if entry_id is not None:
        entry = history.get(entry_id)
        if json_output:
            print_json(entry.to_dict())
            return
        console.print(
            f"[bold]#{entry.id}[/bold] {entry.role} · {entry.created_at} · {entry.status} · "
            f"conversation {entry.conversation_id}",
            highlight=False,
        )
        if entry.attachments:
            console.print(f"[dim]attached: {', '.join(entry.attachments)}[/dim]", highlight=False)
        console.print(f"[bold]Q:[/bold] {entry.question}", highlight=False)
        console.rule()
        print_answer(entry.answer, console.is_terminal)
        print_footer(usage_line(entry.model, entry.usage, entry.cost_usd))
        return
    role_title = _roster(ctx).get(role).title if role else None
    entries = history.entries(limit=limit, role=role_title)
    if json_output:
        print_json([entry.to_dict() for entry in entries])
        return
    if not entries:
        console.print("No consultations logged yet.")
        return
    rows = [
        (
            entry.id,
            entry.created_at.replace("T", " ")[5:16],
            entry.role + _KIND_LABELS.get(entry.kind, ""),
            entry.status,
            f"{entry.usage.prompt_tokens:,}/{entry.usage.output_tokens:,}",
            format_cost(entry.cost_usd),
            _short(json.dumps(entry.question)[1:-1], 60),
        )
        for entry in entries
    ]
    table = make_table(
        "History (ccpt agent log ID shows one in full)",
        ["id", "when (UTC)", "role", "status", "in/out tokens", "cost", "question"],
        rows,
    )
    for column in table.columns[:-1]:
        column.no_wrap = True
    console.print(fit_columns(table, "question", ["in/out tokens", "when (UTC)", "cost"]))


def _roster(ctx: typer.Context) -> Any:
    """The roster the running `agent` group loaded (read once per command line)."""
    group = ctx.parent.command if ctx.parent is not None else None
    if isinstance(group, AgentGroup):
        return group.roster()
    from ccpt.agents.roster import load_roster

    return load_roster()
