"""`ccpt spec`: list, show, write, check, convert and prompt INVEST/CRPG task specs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ccpt.commands.common import examples
from ccpt.commands.completion import complete_spec
from ccpt.commands.output import console, fit_columns, make_table, print_json, styled_status
from ccpt.errors import CcptError

if TYPE_CHECKING:
    from rich.table import Table

    from ccpt.specs.authoring import SpecDraft
    from ccpt.specs.lint import SpecReport
    from ccpt.specs.model import TaskSpec

app = typer.Typer(
    no_args_is_help=True,
    help="Task specs (INVEST user stories with CRPG): list, show, new, check, prompt, convert.",
)

SET_HELP = "Fill a [placeholder] parameter: --set 'GPU memory=24' (repeatable)."
REF_HELP = "A built-in spec id (ccpt spec list), a .yaml/.md file, or FILE#ID for one spec of several."


def parse_sets(values: list[str] | None) -> dict[str, str]:
    """`--set key=value` options as a mapping."""
    result: dict[str, str] = {}
    for value in values or []:
        key, sep, text = value.partition("=")
        if not sep or not key.strip():
            raise CcptError(f"--set '{value}' is not KEY=VALUE", hint="e.g. --set 'GPU memory=24'")
        result[key.strip()] = text.strip()
    return result


@app.command("list", epilog=examples("ccpt spec list", "ccpt spec list --json | jq '.[].id'"))
def list_specs(
    json_output: bool = typer.Option(False, "--json", help="Print the specs as JSON (the YAML schema)."),
) -> None:
    """The built-in spec library: id, task kind, whether `ccpt new` renders it, points, title."""
    from ccpt.specs import list_builtin_specs

    specs = list_builtin_specs()
    if json_output:
        print_json([spec.to_dict() for spec in specs])
        return
    from rich.box import SIMPLE_HEAD
    from rich.table import Table

    table = Table(
        title=f"{len(specs)} built-in specs", title_justify="left", header_style="bold", box=SIMPLE_HEAD
    )
    table.add_column("id", no_wrap=True)
    table.add_column("task kind", no_wrap=True)
    table.add_column("new", no_wrap=True)
    table.add_column("pts", no_wrap=True)
    table.add_column("title")
    for s in specs:
        points = str(s.points) if s.points is not None else "-"
        table.add_row(s.id, s.task_kind, "yes" if s.scaffoldable else "-", points, s.title)
    table.caption = "new: whether `ccpt new` renders the task kind (the others still brief the agents)"
    console.print(fit_columns(table, "title", ["task kind", "pts"]))


@app.command(
    "show", epilog=examples("ccpt spec show image-classification", "ccpt spec show specs/task.yaml --yaml")
)
def show(
    ref: str = typer.Argument(..., help=REF_HELP, autocompletion=complete_spec),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
    yaml_output: bool = typer.Option(False, "--yaml", help="Print the spec as YAML."),
    json_output: bool = typer.Option(False, "--json", help="Print the spec as JSON."),
) -> None:
    """One spec: story, prompt, acceptance criteria and CRPG items with their machine-checkable gates."""
    from ccpt.specs import dump_yaml, load_spec

    spec = load_spec(ref, parse_sets(sets))
    if json_output:
        print_json(spec.to_dict())
    elif yaml_output:
        _write(dump_yaml(spec))
    else:
        _print_spec(spec)


@app.command(
    "prompt", epilog=examples("ccpt spec prompt image-classification", "ccpt spec prompt lib.md#lora")
)
def prompt(
    ref: str = typer.Argument(..., help=REF_HELP, autocompletion=complete_spec),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
) -> None:
    """The structured prompt text the agents receive for a spec (what `ccpt agent --spec` attaches)."""
    from ccpt.specs import load_spec, render_prompt

    _write(render_prompt(load_spec(ref, parse_sets(sets))))


@app.command(
    "check",
    epilog=examples(
        "ccpt spec check specs/task.yaml",
        "ccpt spec check library.md --set 'GPU memory=24'",
        "ccpt spec check --builtin --json",
    ),
)
def check(
    refs: list[str] = typer.Argument(
        None,
        help="Spec files or built-in ids (every spec in a file is checked).",
        autocompletion=complete_spec,
    ),
    builtin: bool = typer.Option(False, "--builtin", help="Check every built-in spec."),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
    json_output: bool = typer.Option(False, "--json", help="Print the verdicts as JSON."),
) -> None:
    """The INVEST lint (each letter pass / warn / fail with its reason) plus the CRPG checks.

    Exits 1 when any spec has a failing check.
    """
    from ccpt.specs import list_builtin_specs, load_specs
    from ccpt.specs.lint import check_spec

    if not refs and not builtin:
        raise CcptError("nothing to check", hint="give spec files or ids, or --builtin")
    overrides = parse_sets(sets)
    if overrides and not refs:
        raise CcptError(
            "--set fills the parameters of the specs given by name; --builtin checks the defaults",
            hint="ccpt spec check ID --set 'KEY=VALUE'",
            exit_code=2,
        )
    reports = [check_spec(spec, "built-in") for spec in list_builtin_specs()] if builtin else []
    for ref in refs or []:
        reports += [check_spec(spec, ref) for spec in load_specs(ref, overrides)]
    if json_output:
        print_json([report.to_dict() for report in reports])
    else:
        for report in reports:
            _print_report(report)
        failed = [r.spec_id for r in reports if not r.passed]
        checked = f"{len(reports)} spec{'s' if len(reports) != 1 else ''} checked"
        summary = f"{checked}, {len(reports) - len(failed)} passed"
        console.print(summary + (f", {len(failed)} failed: {', '.join(failed)}" if failed else ""))
    if any(not report.passed for report in reports):
        raise typer.Exit(1)


@app.command(
    "convert",
    epilog=examples(
        "ccpt spec convert library.md",
        "ccpt spec convert library.md -o specs.yaml --set 'GPU memory=24'",
        "ccpt spec convert specs/task.yaml --to markdown",
    ),
)
def convert(
    ref: str = typer.Argument(..., help=REF_HELP, autocompletion=complete_spec),
    output: Path = typer.Option(
        None, "--output", "-o", help="Write here (format from its suffix) instead of stdout."
    ),
    to: str = typer.Option(None, "--to", help="yaml or markdown (default: the other form of the input)."),
    sets: list[str] = typer.Option(None, "--set", help=SET_HELP),
    force: bool = typer.Option(False, "--force", help="Overwrite OUTPUT if it exists."),
) -> None:
    """Markdown to YAML, or YAML to Markdown; YAML on stdout unless -o is given."""
    from ccpt.specs import dump_markdown, dump_yaml_all, load_specs
    from ccpt.specs.library import MARKDOWN_SUFFIXES, YAML_SUFFIXES

    target = _target_format(ref, output, to, YAML_SUFFIXES, MARKDOWN_SUFFIXES)
    specs = load_specs(ref, parse_sets(sets))
    text = dump_yaml_all(specs) if target == "yaml" else dump_markdown(specs)
    if output is None:
        _write(text)
        return
    if output.resolve() == Path(ref.partition("#")[0]).resolve():
        raise CcptError("the output would replace the input file", hint="choose another -o path")
    _write_file(output, text, force)
    console.print(f"wrote {len(specs)} spec(s) as {target} to {output}")


def _target_format(
    ref: str,
    output: Path | None,
    to: str | None,
    yaml_suffixes: tuple[str, ...],
    md_suffixes: tuple[str, ...],
) -> str:
    if to:
        choice = to.lower()
        if choice in {"md", "markdown"}:
            return "markdown"
        if choice in {"yaml", "yml"}:
            return "yaml"
        raise CcptError(f"--to '{to}' is not yaml or markdown")
    if output is not None:
        if output.suffix.lower() in md_suffixes:
            return "markdown"
        if output.suffix.lower() in yaml_suffixes:
            return "yaml"
        raise CcptError(f"{output}: cannot tell the format from the suffix", hint="use .yaml or .md, or --to")
    return "markdown" if ref.partition("#")[0].lower().endswith(yaml_suffixes) else "yaml"


@app.command(
    "new",
    epilog=examples(
        "ccpt spec new",
        "ccpt spec new --id churn --title 'Churn classifier' --kind text-classification --as-a analyst "
        "--i-want 'a churn classifier' --so-that 'we call customers first' --points 3 "
        "--reward 'Macro-F1 >= 0.8' --accept 'Given last month, when scored, then macro-F1 is reported'",
        "ccpt spec new --from image-classification --id xray --title 'X-ray triage' -o specs/xray.yaml",
    ),
)
def new(
    spec_id: str = typer.Option(None, "--id", help="Spec id (lowercase, digits, '-')."),
    title: str = typer.Option(None, "--title", help="One-line title."),
    kind: str = typer.Option(None, "--kind", help="Task kind, e.g. image-classification, causal-lm."),
    as_a: str = typer.Option(None, "--as-a", help="Who benefits ('ML engineer')."),
    i_want: str = typer.Option(None, "--i-want", help="What they want."),
    so_that: str = typer.Option(None, "--so-that", help="Why: the value it brings."),
    points: int = typer.Option(None, "--points", min=0, help="Story points (1, 2, 3, 5, 8)."),
    modality: str = typer.Option(None, "--modality", help="vision, text, multimodal ..."),
    prompt_text: str = typer.Option(None, "--prompt", help="Free text for the agents."),
    constraints: list[str] = typer.Option(None, "--constraint", help="A constraint (repeatable)."),
    rewards: list[str] = typer.Option(None, "--reward", help="A reward with a target (repeatable)."),
    penalties: list[str] = typer.Option(None, "--penalty", help="A penalty (repeatable)."),
    goals: list[str] = typer.Option(None, "--goal", help="A goal-state deliverable (repeatable)."),
    accept: list[str] = typer.Option(None, "--accept", help="'Given ..., when ..., then ...' (repeatable)."),
    depends_on: list[str] = typer.Option(
        None, "--depends-on", help="Id of a story this one needs (repeatable)."
    ),
    start_from: str = typer.Option(
        None,
        "--from",
        help="Start from a built-in spec or a file, then override.",
        autocompletion=complete_spec,
    ),
    output: Path = typer.Option(
        None, "--output", "-o", help="Where to write (default ./ID.yaml; '-' = stdout)."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite the output file if it exists."),
    no_input: bool = typer.Option(
        False, "--no-input", help="Never prompt; fail if a required field is missing."
    ),
) -> None:
    """Write a new spec as YAML: asks for what the flags leave out, then checks it."""
    from ccpt.specs import dump_yaml
    from ccpt.specs.authoring import SpecDraft, build_spec, missing_fields
    from ccpt.specs.lint import check_spec

    draft = SpecDraft(
        spec_id=spec_id,
        title=title,
        kind=kind,
        as_a=as_a,
        i_want=i_want,
        so_that=so_that,
        points=points,
        modality=modality,
        prompt=prompt_text,
        constraints=constraints or [],
        rewards=rewards or [],
        penalties=penalties or [],
        goals=goals or [],
        acceptance=accept or [],
        depends_on=depends_on or [],
        start_from=start_from,
    )
    missing = missing_fields(draft)
    if missing and no_input:
        flags = ", ".join(f"--{name.replace('_', '-')}" for name in missing)
        raise CcptError(f"missing {flags}", hint="give them as flags, or drop --no-input to be asked")
    if missing:
        _ask(draft, missing_fields(draft, with_optional=True))
    spec = build_spec(draft)
    text = dump_yaml(spec)
    if output is not None and str(output) == "-":
        _write(text)
        return
    path = output or Path(f"{spec.id}.yaml")
    _write_file(path, text, force)
    report = check_spec(spec, str(path))
    console.print(f"wrote {path}")
    _print_report(report)


def _ask(draft: SpecDraft, missing: list[str]) -> None:
    """Guided prompts for the fields the flags left out (lists end at an empty line)."""
    from ccpt.specs.authoring import LIST_FIELDS, QUESTIONS
    from ccpt.specs.model import TASK_KINDS

    for name in missing:
        question = QUESTIONS[name]
        if name in LIST_FIELDS:
            items: list[str] = []
            while True:
                answer = typer.prompt(f"{question} (empty to finish)", default="", show_default=False)
                if not answer.strip():
                    break
                items.append(answer.strip())
            setattr(draft, name, items)
        elif name == "kind":
            console.print("task kinds: " + ", ".join(TASK_KINDS))
            setattr(draft, name, typer.prompt(question, default="image-classification"))
        elif name == "points":
            setattr(draft, name, typer.prompt(question, default=3, type=int))
        else:
            setattr(draft, name, typer.prompt(question))


def _write(text: str) -> None:
    """Plain text on stdout, exactly as produced (no rich markup or wrapping)."""
    typer.echo(text, nl=not text.endswith("\n"))


def _write_file(path: Path, text: str, force: bool) -> None:
    """Write `text` to `path` (parents made); refuse an existing file without --force."""
    if path.exists() and not force:
        raise CcptError(f"{path} exists; not overwriting it", hint="pass --force, or choose another -o path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise CcptError(f"cannot write {path}: {exc.strerror or exc}", hint="choose another -o path") from exc


def _print_report(report: SpecReport) -> None:
    verdict = "[green]PASS[/green]" if report.passed else "[red]FAIL[/red]"
    rows = [(v.check, styled_status(v.status.upper()), v.reason) for v in report.verdicts]
    title = (
        f"{report.spec_id} ({report.source}): {verdict}" if report.source else f"{report.spec_id}: {verdict}"
    )
    console.print(make_table(title, ["check", "verdict", "reason"], rows))


_NUMBERED = re.compile(r"\d+[.)] ")


def _reflow(text: str) -> list[str]:
    """The prompt's paragraphs without their hard line breaks, so that the terminal wraps them.

    A line that starts a list item (-, *, 1.) or is indented (code) keeps its own line.
    """
    paragraphs = []
    for block in text.strip().split("\n\n"):
        lines: list[str] = []
        for line in block.splitlines():
            stripped = line.lstrip()
            own_line = line[:1].isspace() or stripped[:2] in ("- ", "* ") or _NUMBERED.match(stripped)
            if lines and not own_line:
                lines[-1] += " " + stripped
            else:
                lines.append(line.rstrip())
        paragraphs.append("\n".join(lines))
    return paragraphs


def _items(rows: list[str], marker: str = "-", style: str = "") -> Table:
    """Bulleted lines (rich markup) whose wrapped lines stay under the text, not under the bullet."""
    from rich.table import Table

    grid = Table.grid(padding=(0, 1))
    grid.add_column(no_wrap=True)  # the indent and the bullet
    grid.add_column(style=style)
    for row in rows:
        grid.add_row(f"  {marker}", row)
    return grid


def _joined_lines(parts: list[str], separator: str, width: int) -> list[str]:
    """`parts` joined by `separator`, broken into lines of at most `width` between parts only."""
    lines = [parts[0]] if parts else []
    for part in parts[1:]:
        if len(lines[-1]) + len(separator) + len(part) <= width:
            lines[-1] += separator + part
        else:
            lines.append(part)
    return lines


def _print_spec(spec: TaskSpec) -> None:
    from rich.markup import escape
    from rich.padding import Padding

    from ccpt.specs.prompt import modality_of

    where = "rendered by `ccpt new`" if spec.scaffoldable else "not rendered by `ccpt new` yet"
    console.print(f"[bold]{escape(spec.title)}[/bold]  [dim]({spec.id})[/dim]")
    facts = [f"kind {spec.task_kind or '?'} ({where})", f"modality {modality_of(spec) or '?'}"]
    facts.append(f"{spec.points} points" if spec.points is not None else "no points")
    if spec.lead_role:
        facts.append(f"lead {spec.lead_role}")
    for line in _joined_lines(facts, " · ", console.width):
        console.print(escape(line))
    console.print(_items([escape(line) for line in spec.story.lines()], marker="", style="italic"))
    if spec.prompt:
        console.print("\n[bold]Prompt[/bold]")
        for paragraph in _reflow(spec.prompt):
            console.print(Padding(escape(paragraph), (0, 0, 0, 2)))
    if spec.acceptance:
        console.print("\n[bold]Acceptance criteria[/bold]")
        console.print(_items([escape(criterion.sentence()) for criterion in spec.acceptance]))
    for section, heading in (
        ("constraints", "Constraints"),
        ("rewards", "Rewards"),
        ("penalties", "Penalties"),
        ("goal_state", "Goal state"),
    ):
        items = getattr(spec, section)
        if items:
            console.print(f"\n[bold]{heading}[/bold]")
            gates = [f"  [cyan]→ {escape(str(i.threshold))}[/cyan]" if i.threshold else "" for i in items]
            console.print(_items([escape(item.text) + gate for item, gate in zip(items, gates, strict=True)]))
    if spec.open_parameters():
        console.print(
            "\n[bold yellow]Open parameters[/bold yellow] " + escape(", ".join(spec.open_parameters()))
        )
    for name, lines in spec.extra_sections.items():
        console.print(f"\n[bold]{escape(name)}[/bold]")
        console.print(_items([escape(line) for line in lines]))
