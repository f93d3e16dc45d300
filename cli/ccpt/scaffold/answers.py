"""Answers to the template's questions: from a task spec, from `--data key=value`, checked up front.

The spec answers what it knows (task kind, its id, its `scaffold:` mapping, itself); the project
name comes from the target folder; `--data` overrides the rest. Answers are put in a canonical
form (mappings sorted) so that rendering the same answers twice gives byte-identical files,
which is what lets `ccpt update` tell template changes from nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ccpt.errors import CcptError
from ccpt.scaffold.template import ProjectTemplate
from ccpt.specs.model import SCAFFOLD_KINDS, TaskSpec

# Answers that come from the spec itself; `--data` may not contradict them.
FROM_SPEC = ("task_kind", "spec_id", "spec", "ccpt_version")


def parse_assignments(pairs: Iterable[str], flag: str = "--data") -> dict[str, str]:
    """`["key=value", ...]` as a dict; a pair without `=` is a clear error."""
    parsed: dict[str, str] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise CcptError(f"{flag} {pair!r} is not key=value", hint=f"for example {flag} precision=bf16")
        parsed[key.strip()] = value
    return parsed


def project_slug(name: str) -> str:
    """A Python-safe name for `name`: lowercase, runs of other characters as one underscore."""
    slug = re.sub(r"[^0-9a-z]+", "_", name.lower()).strip("_") or "project"
    return f"p_{slug}" if slug[0].isdigit() else slug


def check_data(template: ProjectTemplate, data: Mapping[str, Any]) -> None:
    """Refuse `--data` keys the template does not ask, values outside a question's choices,
    and keys whose answer belongs to the spec."""
    for key, value in data.items():
        question = template.questions.get(key)
        if question is None or not question.asked:
            known = ", ".join(
                name for name, q in template.questions.items() if q.asked and name not in FROM_SPEC
            )
            raise CcptError(f"--data {key}: the template has no such question", hint=f"questions: {known}")
        if key in FROM_SPEC:
            raise CcptError(
                f"--data {key}: this answer comes from the task spec",
                hint="choose another spec with --spec, or change it with --set",
            )
        if question.choices and str(value) not in question.choices:
            raise CcptError(f"--data {key}={value}: not one of {', '.join(question.choices)}")


def check_renderable(template: ProjectTemplate, spec: TaskSpec) -> None:
    """Refuse a spec whose task kind the template cannot render, naming the kinds it can."""
    renderable = template.choices_of("task_kind") or tuple(sorted(SCAFFOLD_KINDS))
    if spec.task_kind not in renderable:
        raise CcptError(
            f"spec {spec.id!r} is a task of kind {spec.task_kind}, which ccpt new cannot render yet",
            hint=f"task kinds that render: {', '.join(sorted(renderable))}",
        )


def answers_for_spec(
    template: ProjectTemplate, spec: TaskSpec, project_name: str, data: Mapping[str, Any]
) -> tuple[dict[str, Any], list[str]]:
    """The answers a spec (plus `--data`) gives, and notes about scaffold keys it had to ignore."""
    check_renderable(template, spec)
    check_data(template, data)
    answers: dict[str, Any] = {
        "project_name": project_name,
        "project_slug": project_slug(str(data.get("project_name", project_name))),
        "task_kind": spec.task_kind,
        "spec_id": spec.id,
        "ccpt_version": template.version,
        "spec": spec.to_dict(),
    }
    notes = []
    for key, value in spec.scaffold.items():
        question = template.questions.get(key)
        if question is None or key in FROM_SPEC:
            notes.append(f"the spec's scaffold key {key!r} is not a template question; ignored")
            continue
        if question.choices and str(value) not in question.choices:
            raise CcptError(
                f"spec {spec.id!r}: scaffold {key}={value} is not one of {', '.join(question.choices)}",
                hint="fix the spec, or override with --data",
            )
        answers[key] = value
    answers.update(data)
    return {key: value for key, value in answers.items() if key in template.questions}, notes


def unanswered(template: ProjectTemplate, answers: Mapping[str, Any]) -> list[str]:
    """Questions that would be prompted for (asked, and not answered yet)."""
    return [name for name, q in template.questions.items() if q.asked and name not in answers]


def canonical(value: Any) -> Any:
    """`value` with every mapping's keys sorted: the order a recorded answers file reads back in."""
    if isinstance(value, Mapping):
        return {str(key): canonical(value[key]) for key in sorted(value, key=str)}
    if isinstance(value, list | tuple):
        return [canonical(item) for item in value]
    return value
