"""`ccpt update`: bring template improvements into a project made by `ccpt new`, keeping your edits."""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ccpt.commands.output import console, err_console, make_table, print_json

if TYPE_CHECKING:
    from ccpt.scaffold.update import UpdatePlan, UpdateResult

STATUS_STYLES = {
    "updated": "green",
    "added": "green",
    "merged": "cyan",
    "conflict": "bold red",
    "kept-deleted": "yellow",
    "kept": "yellow",
    "removed": "magenta",
}


def update(
    path: Path | None = typer.Argument(
        None, help="The project folder (default: the project around the current folder)."
    ),
    pretend: bool = typer.Option(False, "--pretend", help="Show the plan table; write nothing."),
    to: str | None = typer.Option(
        None, "--to", metavar="VERSION", help="Template version to update to (default: this ccpt's)."
    ),
    data: list[str] | None = typer.Option(
        None, "--data", "-d", metavar="KEY=VALUE", help="Change a recorded answer, e.g. precision=bf16."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the plan (and result) as JSON."),
    template_dir: Path | None = typer.Option(
        None, "--template", hidden=True, help="A copier template folder to use instead of the built-in one."
    ),
) -> None:
    from ccpt.scaffold.answers import parse_assignments
    from ccpt.scaffold.records import find_project
    from ccpt.scaffold.template import ProjectTemplate
    from ccpt.scaffold.update import apply_update, ensure_clean, planned_update

    template = ProjectTemplate.load(template_dir)
    if path is None:
        path = find_project(Path.cwd(), template)
    with ExitStack() as stack:
        with err_console.status("Rendering the template with the recorded answers ..."):
            plan = stack.enter_context(planned_update(path, template, parse_assignments(data or []), to))
        if plan.up_to_date:
            _report_up_to_date(plan, json_output)
            return
        if not pretend:
            ensure_clean(plan.project)
        if json_output:
            if pretend:
                print_json({**plan.to_dict(), "pretend": True})
            else:
                print_json({**plan.to_dict(), "template_commit": apply_update(plan).template_commit})
            return
        _print_plan(plan)
        if pretend:
            console.print("[dim]--pretend: nothing was written.[/dim]")
            return
        _print_result(apply_update(plan))


def _report_up_to_date(plan: UpdatePlan, json_output: bool) -> None:
    if json_output:
        print_json(plan.to_dict())
    else:
        console.print(f"{plan.project} is up to date with template {plan.to_version}: nothing to do.")


def _print_plan(plan: UpdatePlan) -> None:
    from rich.markup import escape

    for note in plan.notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)
    rows = [
        (_styled(change.status.value), escape(change.path), escape(change.detail))
        for change in plan.changes
        if change.status.value != "unchanged"
    ]
    versions = (
        f"template {plan.from_version} -> {plan.to_version}"
        if plan.from_version != plan.to_version
        else f"template {plan.to_version}, changed since this project's last render"
    )
    title = f"ccpt update {plan.project.name}: {versions}"
    console.print(make_table(title, ["status", "path", "detail"], rows))
    counts = ", ".join(f"{count} {status}" for status, count in plan.counts().items() if count)
    console.print(counts)


def _styled(status: str) -> str:
    style = STATUS_STYLES.get(status)
    return f"[{style}]{status}[/{style}]" if style else status


def _print_result(result: UpdateResult) -> None:
    from rich.markup import escape

    from ccpt.scaffold.update import Status

    conflicts = [change.path for change in result.plan.with_status(Status.CONFLICT)]
    answers = result.plan.answers_file  # always rewritten, so not counted with the files above
    files = [path for path in result.written if path != answers]
    console.print(
        f"Wrote {len(files)} file{'s' if len(files) != 1 else ''}, removed {len(result.removed)}; "
        f"{escape(answers)} now names the new template render {result.template_commit[:7]} as the "
        "next base (branch ccpt-template)."
    )
    if conflicts:
        console.print(
            f"[bold red]{len(conflicts)} conflict{'s' if len(conflicts) != 1 else ''}[/bold red] to resolve "
            "(look for <<<<<<< markers): " + escape(", ".join(conflicts))
        )
    # The tree was clean before the update (ensure_clean), so `add -A` stages the update alone, new
    # files included, which `commit -a` would leave behind.
    added = result.plan.with_status(Status.ADDED)
    new_files = "the new file" if len(added) == 1 else f"the {len(added)} new files"
    review = "`git diff`" + (f" (and {new_files} `git status` lists)" if added else "")
    commit = "git add -A && git commit -m 'ccpt update'"
    console.print(f"Review with {review}, run `pytest`, then commit: {commit}")
    console.print("[dim]To discard the update instead: git checkout -- . && git clean -fd[/dim]")
