"""`ccpt new`: render a complete, tested ML project from a task spec."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Set as AbstractSet
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.markup import escape

from ccpt.commands.completion import complete_spec
from ccpt.commands.output import console, err_console, make_table, print_json

if TYPE_CHECKING:
    from ccpt.scaffold.project import NewProject

DEFAULT_SPEC = "image-classification"


def new(
    path: Path = typer.Argument(..., help="Folder to create; its name becomes the project name."),
    spec: str = typer.Option(
        DEFAULT_SPEC,
        "--spec",
        "-s",
        help="Built-in spec id (ccpt spec list) or a spec file (.yaml/.md, FILE#id).",
        autocompletion=complete_spec,
    ),
    set_values: list[str] | None = typer.Option(
        None,
        "--set",
        metavar="KEY=VALUE",
        help="Fill a placeholder parameter of the spec (ccpt spec check lists them).",
    ),
    data: list[str] | None = typer.Option(
        None,
        "--data",
        "-d",
        metavar="KEY=VALUE",
        help="Answer a template question, e.g. precision=bf16 (repeatable).",
    ),
    defaults: bool = typer.Option(
        False, "--defaults", help="Take the default for every question the spec leaves open; never prompt."
    ),
    pretend: bool = typer.Option(
        False, "--pretend", help="List the files that would be written; write nothing."
    ),
    force: bool = typer.Option(
        False, "--force", help="Render into a non-empty folder; files outside the template's paths are kept."
    ),
    no_git: bool = typer.Option(
        False, "--no-git", help="Skip git init, the first commit and the template record `ccpt update` needs."
    ),
    json_output: bool = typer.Option(False, "--json", help="Print the result as JSON."),
    template_dir: Path | None = typer.Option(
        None,
        "--template",
        hidden=True,
        help="A copier template folder to render instead of the built-in one.",
    ),
) -> None:
    from ccpt.scaffold.answers import parse_assignments
    from ccpt.scaffold.project import NewRequest, create_project, pretend_project
    from ccpt.scaffold.template import ProjectTemplate
    from ccpt.specs import load_spec

    request = NewRequest(
        target=path,
        spec=load_spec(spec, parse_assignments(set_values or [], "--set")),
        template=ProjectTemplate.load(template_dir),
        data=parse_assignments(data or []),
        interactive=not defaults,
        force=force,
        git=not no_git,
    )
    quiet_render = defaults or not sys.stdin.isatty()
    if pretend:
        with err_console.status("Rendering (pretend) ...") if quiet_render else _nothing():
            planned, notes = pretend_project(request)
        if json_output:
            print_json({"pretend": True, "notes": notes, "files": [vars(item) for item in planned]})
            return
        _print_notes(notes)
        rows = [(item.action, escape(item.path), f"{item.size:,}") for item in planned]
        table = make_table(escape(f"ccpt new {path} --pretend"), ["action", "path", "bytes"], rows)
        table.columns[2].justify = "right"
        console.print(table)
        creates = sum(item.action == "create" for item in planned)
        total_kib = sum(item.size for item in planned) / 1024
        console.print(
            f"Would write {len(planned)} files ({creates} new, {total_kib:,.0f} KiB) to {path}"
            + ("" if no_git else ", then git init, a first commit and the ccpt-template record")
            + ". Nothing was written."
        )
        return
    with err_console.status(f"Rendering {path} ...") if quiet_render else _nothing():
        project = create_project(request)
    if json_output:
        print_json(project.to_dict())
        return
    _print_notes(project.notes)
    console.print(_summary_panel(project, {threshold.metric for _, threshold in request.spec.thresholds()}))


def _nothing():  # a do-nothing context manager where a spinner would fight the prompts
    from contextlib import nullcontext

    return nullcontext()


def _print_notes(notes: list[str]) -> None:
    for note in notes:
        err_console.print(f"[yellow]note:[/yellow] {escape(note)}", highlight=False)


def _shown(path: Path) -> str:
    """The path as the user typed it, unless that is `.` (then where it really is)."""
    return str(path.resolve()) if str(path) in (".", "./") else str(path)


# Steps of the first, short training run `ccpt new` suggests: enough for a model that does
# something. A question-answering reader answers nothing for its first ~150 steps (exact match
# 0.68 after 300, in under two minutes on a 2-core CPU).
QUICK_STEPS = {"question-answering": 300}


# Gates that judge a language model fine-tuned from another: its first runs are a base, then LoRA.
FINE_TUNING_METRICS = {"trainable_params_fraction", "win_rate"}
# Gates on a language model's answers to instructions: its first runs are a base on the plain text,
# then the base tuned on the instruction data. A BPE tokenizer makes a name one token to copy, not
# a dozen bytes: on a 2-core CPU 300 base steps and 1,200 tuning steps gave ROUGE-L 0.51 (0.41
# after 800); bytes gave 0.32 after 1,500.
INSTRUCTION_METRICS = {"rouge_l", "format_error_rate"}
BASE_STEPS, TUNING_STEPS = 300, 1200


def next_commands(path: Path, task_kind: str, metrics: AbstractSet[str] = frozenset()) -> list[str]:
    """What to run after `ccpt new`: install, train briefly, check the gates, test. A language
    model whose spec judges answers to instructions (`metrics`) trains a base run, then tunes it
    on the instruction data; one whose spec judges fine-tuning trains a base run, then LoRA
    adapters on it: rank 1 keeps the tiny CPU model's trained share under 1%."""
    enter = [] if path.resolve() == Path.cwd().resolve() else [f"cd {shlex.quote(str(path))}"]
    train = f"python src/runner.py train --max-steps {QUICK_STEPS.get(task_kind, 60)}"
    runs = [train]
    if task_kind == "causal-lm" and metrics & INSTRUCTION_METRICS:
        runs = [
            f"python src/runner.py train --max-steps {BASE_STEPS} --run-name base --set dataset=builtin"
            " --set tokenizer=bpe --set vocab_size=4096",
            f"python src/runner.py train --max-steps {TUNING_STEPS} --set init_from=base",
        ]
    elif task_kind == "causal-lm" and metrics & FINE_TUNING_METRICS:
        runs = [f"{train} --run-name base", f"{train} --set init_from=base --set lora_rank=1"]
    return [*enter, "pip install -e '.[dev]'", *runs, "python src/runner.py check", "pytest"]


def folded(command: str, width: int = 72) -> list[str]:
    """A long command as shell lines continued with a backslash, each break before an option (an
    option stays with its value), so that it reads and pastes whole in an 80-column terminal.
    Words are split at spaces alone: a quoted path keeps its quotes, and no break falls inside it."""
    chunks: list[str] = []
    for word in command.split(" "):
        if chunks and not word.startswith("--"):
            chunks[-1] += f" {word}"
        else:
            chunks.append(word)
    lines = [chunks[0]]
    for chunk in chunks[1:]:
        if len(lines[-1]) + 1 + len(chunk) > width:
            lines[-1] += " \\"
            lines.append(f"    {chunk}")
        else:
            lines[-1] += f" {chunk}"
    return lines


def _command_markup(line: str) -> str:
    """One line of a command, indented, as rich markup. rich's escape() doubles a backslash that
    ends its text, so a continuation's backslash is put back after it."""
    body = line.removesuffix("\\")
    return f"  {escape(body)}{line[len(body) :]}"


def _summary_panel(project: NewProject, metrics: AbstractSet[str]):
    from rich.panel import Panel

    lines = [
        f"Made [bold]{escape(_shown(project.path))}[/bold] ({len(project.files)} files).",
        f"Task {project.task_kind} from spec [cyan]{escape(project.spec_id)}[/cyan]; "
        f"template {project.template_version}.",
    ]
    if project.replaced:
        lines.append(f"Replaced {len(project.replaced)} of your files: {escape(', '.join(project.replaced))}")
    git = project.git
    if git and git.commit:
        lines.append(
            f"git: first commit {git.commit[:7]} on {git.branch}; template record on branch ccpt-template."
        )
    elif git:
        lines.append("git: template record on branch ccpt-template; the files are left for you to commit.")
    else:
        lines.append("git: skipped (--no-git), so `ccpt update` has no template record to merge from.")
    lines += ["", "[bold]Next[/bold]"]
    commands = next_commands(project.path, project.task_kind, metrics)
    lines += [_command_markup(line) for command in commands for line in folded(command)]
    return Panel("\n".join(lines), title="ccpt new", title_align="left", expand=False, border_style="green")
