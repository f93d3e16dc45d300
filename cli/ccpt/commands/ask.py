"""`ccpt ask`: the Supervisor routes a question to the team, consults them, and merges the answers.

The plan is printed before anyone is consulted; a live table shows each role's state, tokens,
cost and tool calls; the Supervisor's merged plan streams last, then per-role and total cost.
Piped, progress goes to stderr and only the merged answer to stdout.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from ccpt.commands.common import load_settings
from ccpt.commands.completion import complete_spec
from ccpt.commands.output import console, err_console, make_table, print_json

STATE_STYLES = {"waiting": "dim", "working": "yellow", "done": "green", "failed": "red", "skipped": "magenta"}


def ask(
    question: list[str] | None = typer.Argument(
        None, help="The question; @agent-Name mentions pick roles directly.", show_default=False
    ),
    spec: str | None = typer.Option(
        None,
        "--spec",
        help="A task spec (file or built-in name); its lead role joins.",
        autocompletion=complete_spec,
    ),
    files: list[Path] = typer.Option(
        [],
        "--file",
        "-f",
        help="A text file every role receives, with its path (repeatable).",
        show_default=False,
    ),
    agents: str | None = typer.Option(
        None, "--agents", "-a", help="Comma-separated roles to consult (skips the Supervisor's routing)."
    ),
    max_agents: int = typer.Option(4, "--max-agents", min=1, max=15, help="Most roles to consult."),
    budget_usd: float | None = typer.Option(
        None,
        "--budget-usd",
        min=0.0,
        help="Stop before the exchange would cost more (checked with token counts).",
    ),
    project: Path | None = typer.Option(
        None, "--project", help="Directory the roles may read (default: the current ccpt project, if any)."
    ),
    no_project: bool = typer.Option(False, "--no-project", help="Give the roles no access to project files."),
    model: str | None = typer.Option(None, "--model", "-m", help="One model for every call (id or alias)."),
    max_tokens: int | None = typer.Option(
        None, "--max-tokens", min=1, help="Upper bound on each answer's tokens."
    ),
    timeout: float | None = typer.Option(
        None, "--timeout", min=1, help="Seconds before a request is abandoned."
    ),
    json_output: bool = typer.Option(
        False, "--json", help="Print the plan, every answer, usage and cost as JSON."
    ),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the routing request; send nothing, need no key."
    ),
    no_log: bool = typer.Option(False, "--no-log", help="Do not record this exchange in the history."),
) -> None:
    from ccpt.agents.consult import task_spec
    from ccpt.agents.prompt import gather_attachments
    from ccpt.agents.roster import load_roster
    from ccpt.agents.team import prepare_ask, run_ask
    from ccpt.commands.agent_view import read_piped_stdin
    from ccpt.errors import CcptError

    settings = load_settings(max_tokens=max_tokens, timeout=timeout)
    roster = load_roster()
    attachments = gather_attachments(files, read_piped_stdin())
    spec_text, lead_role = task_spec(spec)
    setup = prepare_ask(
        roster,
        " ".join(question or []),
        settings,
        attachments=attachments,
        spec_text=spec_text,
        lead_role=lead_role,
        agents=[name.strip() for name in (agents or "").split(",") if name.strip()],
        max_agents=max_agents,
        model=model,
        max_tokens=max_tokens,
        project=None if no_project else _project_dir(project, settings),
    )
    if dry_run:
        _print_dry_run(setup, settings)
        return
    view = TeamView(markdown=console.is_terminal and not json_output, quiet=json_output)
    try:
        with view:
            result = run_ask(setup, settings, view.handle, budget_usd=budget_usd, log=not no_log)
    except KeyboardInterrupt:
        raise CcptError(
            f"interrupted; the answers so far, partial ones too, are in the history"
            f" (conversation {setup.conversation_id})",
            hint="ccpt agent log",
            exit_code=130,
        ) from None
    if json_output:
        print_json(result.to_dict())
        return
    view.report(result)


def _project_dir(flag: Path | None, settings: Any) -> Path | None:
    from ccpt.errors import CcptError

    if flag is None:
        return settings.project_root
    if not flag.is_dir():
        raise CcptError(f"--project {flag}: not a directory", exit_code=2)
    return flag


def _print_dry_run(setup: Any, settings: Any) -> None:
    from ccpt.agents.client import messages_url

    if setup.direct_plan is None:
        requests = [{"purpose": "routing", "body": setup.routing_request().body(stream=True)}]
        plan = None
    else:
        plan = setup.direct_plan.to_dict()
        requests = [
            {"purpose": step.role, "body": setup.role_request(step, {}).body(stream=True)}
            for step in setup.direct_plan.steps
            if not step.needs
        ]
    print_json({"url": messages_url(settings.anthropic_base_url), "plan": plan, "requests": requests})
    err_console.print("[dim]dry run: nothing was sent[/dim]")


class TeamView:
    """Renders the exchange's events: the plan, a live role table, tool calls, the synthesis."""

    def __init__(self, markdown: bool, quiet: bool) -> None:
        self.markdown = markdown
        self.quiet = quiet
        self.rows: dict[str, dict[str, Any]] = {}
        self.synthesis: list[str] = []
        self.live: Any = None
        self.out = console if markdown else err_console
        self.planned = False

    def __enter__(self) -> TeamView:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.stop()
            self.live = None
        if self.synthesis and not self.markdown and not self.quiet:
            text = "".join(self.synthesis)
            if not text.endswith("\n"):
                typer.echo("")

    def handle(self, event: Any) -> None:
        from ccpt.agents.team import PlanReady, RoleUpdate, SynthesisText, ToolUsed

        if self.quiet:
            return
        if isinstance(event, PlanReady):
            self._plan(event.plan)
        elif isinstance(event, RoleUpdate):
            self._role(event)
        elif isinstance(event, ToolUsed):
            mark = "✓" if event.ok else "✗"
            args = ", ".join(f"{key}={value!r}" for key, value in event.arguments.items())
            args = args if len(args) <= 80 else args[:79] + "…"
            self.out.print(
                f"  [cyan]{event.role}[/cyan] {mark} {event.name}({args}) [dim]{event.summary}[/dim]"
            )
        elif isinstance(event, SynthesisText):
            self._synthesis(event.text)

    def _plan(self, plan: Any) -> None:
        self.planned = True
        title = f"Plan ({plan.routed_by})" + (f": {plan.summary}" if plan.summary else "")
        rows = [(i, s.role, ", ".join(s.needs) or "—", s.question) for i, s in enumerate(plan.steps, 1)]
        self.out.print(make_table(title, ["#", "role", "waits for", "sub-question"], rows))
        for note in plan.notes:
            self.out.print(f"[yellow]note:[/yellow] {note}", highlight=False)

    def _role(self, event: Any) -> None:
        role = event.role
        if role == "Supervisor":
            role = "Supervisor (synthesis)" if self.planned else "Supervisor (routing)"
        previous = self.rows.get(role, {}).get("state")
        self.rows[role] = {
            "state": event.state,
            "usage": event.usage,
            "cost": event.cost_usd,
            "note": event.note,
        }
        if self.markdown:
            if self.live is None and not self.synthesis:
                from rich.live import Live

                self.live = Live(self._table(), console=console, refresh_per_second=8)
                self.live.start()
            elif self.live is not None and not self.synthesis:
                self.live.update(self._table())
            return
        if event.state in {previous, "waiting"}:
            return
        from ccpt.commands.agent_view import format_cost

        detail = ""
        if event.state == "done":
            usage = event.usage
            detail = (
                f" · {usage.prompt_tokens:,} in / {usage.output_tokens:,} out · {format_cost(event.cost_usd)}"
            )
        elif event.note:
            detail = f" · {event.note}"
        style = STATE_STYLES.get(event.state, "")
        self.out.print(f"[{style}]{role} {event.state}[/{style}]{detail}", highlight=False)

    def _table(self) -> Any:
        from ccpt.commands.agent_view import format_cost

        rows = []
        for role, row in self.rows.items():
            style = STATE_STYLES.get(row["state"], "")
            usage = row["usage"]
            rows.append(
                (
                    role,
                    f"[{style}]{row['state']}[/{style}]",
                    f"{usage.prompt_tokens:,}/{usage.output_tokens:,}",
                    format_cost(row["cost"]) if row["cost"] is not None else "—",
                    row["note"],
                )
            )
        return make_table(None, ["role", "state", "in/out tokens", "cost", "note"], rows)

    def _synthesis(self, text: str) -> None:
        if not self.synthesis:
            if self.live is not None:
                self.live.stop()
                self.live = None
            if self.markdown:
                console.rule("[bold]Supervisor: the merged plan[/bold]")
        self.synthesis.append(text)
        if not self.markdown:
            typer.echo(text, nl=False)
            return
        from rich.live import Live
        from rich.markdown import Markdown

        if self.live is None:
            self.live = Live(Markdown(""), console=console, refresh_per_second=8, vertical_overflow="visible")
            self.live.start()
        self.live.update(Markdown("".join(self.synthesis)))

    def report(self, result: Any) -> None:
        """Per-call usage and cost, and the totals."""
        from ccpt.commands.agent_view import format_cost

        if not result.synthesis.answer:
            self.out.print(
                "[yellow]note:[/yellow] no merged plan; the answers received are below", highlight=False
            )
            for outcome in result.outcomes:
                if outcome.answer:
                    typer.echo(f"\n## {outcome.role}\n\n{outcome.answer}")
        rows = []
        for label, outcome in [("routing", result.routing), *[("role", o) for o in result.outcomes]]:
            if outcome is not None:
                rows.append(_cost_row(outcome.role if label == "role" else "Supervisor (routing)", outcome))
        rows.append(_cost_row("Supervisor (synthesis)", result.synthesis))
        total = result.total_usage
        rows.append(
            (
                "[bold]total[/bold]",
                "",
                f"{total.input_tokens:,}",
                f"{total.output_tokens:,}",
                f"{total.cache_write_tokens:,}",
                f"{total.cache_read_tokens:,}",
                f"[bold]{format_cost(result.total_cost)}[/bold]",
            )
        )
        columns = ["call", "state", "input", "output", "cache write", "cache read", "cost"]
        self.out.print(make_table(f"Cost (conversation {result.conversation_id})", columns, rows))
        if result.budget_stopped:
            limit = f"${result.budget_usd:.2f}"
            self.out.print(
                f"[yellow]note:[/yellow] stopped before going over the {limit} budget", highlight=False
            )


def _cost_row(label: str, outcome: Any) -> tuple[str, ...]:
    from ccpt.commands.agent_view import format_cost

    usage = outcome.usage
    state = outcome.state + (f": {outcome.note}" if outcome.note else "")
    return (
        label,
        state,
        f"{usage.input_tokens:,}",
        f"{usage.output_tokens:,}",
        f"{usage.cache_write_tokens:,}",
        f"{usage.cache_read_tokens:,}",
        format_cost(outcome.cost_usd) if outcome.state != "skipped" else "—",
    )
