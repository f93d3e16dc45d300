"""Render the pristine project into a folder: copier's files, the agent files, the spec.

This is the one place copier is called. What it produces is exactly what `ccpt new` places in
the target and records as the template's render, and what `ccpt update` renders again to
compare: the same answers always give the same bytes.
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from ccpt.errors import CcptError
from ccpt.scaffold.answers import canonical
from ccpt.scaffold.template import AGENTS_DIR, SPEC_FILE, ProjectTemplate

SPEC_HEADER = (
    "# The task spec this project was made from: its user story, CRPG items and acceptance gates.\n"
    "# `python src/runner.py check` compares the latest run with it; `ccpt spec check` lints it.\n"
)


@dataclass(frozen=True)
class Rendered:
    """A finished render: the answers copier ended with (prompted ones included) and its files."""

    answers: dict[str, Any]
    files: list[str]


def agent_files(agents_dir: Path | None) -> list[Path]:
    """The role files a project's `.claude/agents/` gets: markdown, not README, not `_`-prefixed."""
    if agents_dir is None or not agents_dir.is_dir():
        return []
    return sorted(
        path
        for path in agents_dir.glob("*.md")
        if path.is_file() and path.name != "README.md" and not path.name.startswith("_")
    )


def front_matter(path: Path) -> dict[str, Any]:
    """The YAML front matter of an agent file (empty when it has none or it does not parse)."""
    text = path.read_text(encoding="utf-8")
    if not text.startswith("---"):
        return {}
    head, sep, _ = text[3:].partition("\n---")
    try:
        data = yaml.safe_load(head) if sep else None
    except yaml.YAMLError:
        return {}
    return data if isinstance(data, dict) else {}


def computed_answers(template: ProjectTemplate) -> dict[str, Any]:
    """Answers ccpt supplies on every render and never records (`when: false` questions): the
    roster and team charter, read from the same agent files the render copies."""
    computed: dict[str, Any] = {}
    if "agents" in template.questions:
        computed["agents"] = [
            {
                "name": str(meta.get("name") or path.stem),
                "description": " ".join(str(meta.get("description") or "").split()),
            }
            for path in agent_files(template.agents_dir)
            for meta in [front_matter(path)]
        ]
    if "team_charter" in template.questions and template.agents_dir is not None:
        charters = sorted(template.agents_dir.glob("_*.md"))
        computed["team_charter"] = "\n\n".join(path.read_text(encoding="utf-8").strip() for path in charters)
    return computed


def render_pristine(
    template: ProjectTemplate, answers: Mapping[str, Any], dest: Path, *, interactive: bool = False
) -> Rendered:
    """Render `template` with `answers` into `dest` (missing or empty), with no template code run.

    Unanswered questions are prompted for when `interactive`, else take their defaults.
    """
    from copier import Settings, run_copy
    from copier.errors import CopierError
    from jinja2 import TemplateError

    data = {**canonical(dict(answers)), **computed_answers(template)}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # copier's notes about local, untagged templates
            worker = run_copy(
                str(template.root),
                dest,
                data=data,
                defaults=not interactive,
                unsafe=False,
                skip_tasks=True,
                quiet=True,
                overwrite=True,
                cleanup_on_error=False,
                settings=Settings(),  # ignore the user's copier settings: no trusted prefixes, no defaults
            )
    except Exception as exc:  # a template can fail in any way; the user gets one line (--debug: all)
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if not isinstance(exc, CopierError | TemplateError):
            message = f"{type(exc).__name__}: {message}" if message else type(exc).__name__
        raise CcptError(f"rendering the template failed: {message}", hint="nothing was written") from exc
    final = {
        name: worker.answers.combined[name]
        for name, question in template.questions.items()
        if question.asked and name in worker.answers.combined
    }
    dest.mkdir(parents=True, exist_ok=True)
    for path in agent_files(template.agents_dir):
        target = dest / AGENTS_DIR / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)
    spec = final.get("spec")
    if isinstance(spec, Mapping) and spec:
        write_spec(dest / SPEC_FILE, spec)
    files = sorted(str(p.relative_to(dest).as_posix()) for p in dest.rglob("*") if p.is_file())
    return Rendered(answers=final, files=files)


def write_spec(path: Path, spec: Mapping[str, Any]) -> None:
    """`specs/task.yaml` as `ccpt spec` writes specs: schema field order, multi-line text as blocks."""
    from ccpt.specs import TaskSpec, dump_yaml

    try:
        body = dump_yaml(TaskSpec.from_dict(spec))
    except (KeyError, TypeError, ValueError):  # a template's own spec shape: keep it as recorded
        body = yaml.safe_dump(dict(spec), sort_keys=False, allow_unicode=True, width=100)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(SPEC_HEADER + body, encoding="utf-8")
