"""Template parameters: `[GPU memory]`-style placeholders in a spec's text, found and filled.

Prompt libraries ship specs as templates ("Memory budget: [GPU memory] GB", "train
[0.1-1%] of parameters"). A placeholder stays in the text, and in `TaskSpec.parameters` with no
value, until `--set "GPU memory=24"` (or a default in the spec) fills it; filling rewrites the
text and reads the item's threshold again, so "Memory budget: 24 GB" becomes gpu_memory_gb <= 24.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from ccpt.errors import CcptError
from ccpt.specs.model import Criterion, CrpgItem, Story, TaskSpec
from ccpt.specs.thresholds import extract_threshold

# `[name]`, but not a Markdown link `[text](url)`, a checkbox `[ ]`/`[x]` or a footnote `[1]`.
PLACEHOLDER = re.compile(r"\[(?P<name>[^\[\]\n]{1,80})\](?!\()")
CRPG_SECTIONS = ("constraints", "rewards", "penalties", "goal_state")


def placeholders_in(text: str) -> list[str]:
    """Placeholder names in `text`, in order of appearance, without repeats."""
    names: list[str] = []
    for match in PLACEHOLDER.finditer(text):
        name = " ".join(match["name"].split())
        if name.lower() in {"", "x"} or name.isdigit() or name in names:
            continue
        names.append(name)
    return names


def parameter_key(name: str) -> str:
    """How `--set` keys match placeholder names: case, spaces, `_` and dashes do not matter."""
    return re.sub(r"[\s_\-\u2013\u2014]+", "", name.lower())


def spec_texts(spec: TaskSpec) -> Iterator[str]:
    """Every piece of prose in a spec that may hold placeholders."""
    yield spec.title
    yield from (spec.story.as_a, spec.story.i_want, spec.story.so_that)
    yield spec.prompt
    for criterion in spec.acceptance:
        yield from (criterion.given, criterion.when, criterion.then)
    for section in CRPG_SECTIONS:
        yield from (item.text for item in getattr(spec, section))
    for lines in spec.extra_sections.values():
        yield from lines
    yield from (value for value in spec.scaffold.values() if isinstance(value, str))


def discover_parameters(spec: TaskSpec) -> TaskSpec:
    """Add every placeholder found in the text to `spec.parameters` (open unless it has a value)."""
    found = {name: None for text in spec_texts(spec) for name in placeholders_in(text)}
    known = {parameter_key(name) for name in spec.parameters}
    extra = {name: value for name, value in found.items() if parameter_key(name) not in known}
    if extra:
        spec.parameters = {**spec.parameters, **extra}
    return spec


def fill_parameters(spec: TaskSpec, overrides: Mapping[str, str] | None = None) -> TaskSpec:
    """A copy of `spec` with `overrides` (and the spec's own defaults) written into its text.

    Raises CcptError for a key that names no parameter of the spec.
    """
    by_key = {parameter_key(name): name for name in spec.parameters}
    values = {name: value for name, value in spec.parameters.items() if value not in (None, "")}
    still_open = {parameter_key(name) for text in spec_texts(spec) for name in placeholders_in(text)}
    for key, value in (overrides or {}).items():
        name = by_key.get(parameter_key(key))
        if name is None:
            listed = ", ".join(spec.parameters) or "none"
            raise CcptError(
                f"spec '{spec.id}' has no parameter '{key}' (its parameters: {listed})",
                hint="run `ccpt spec check` to list a spec's open parameters",
            )
        if parameter_key(name) not in still_open and str(value) != values.get(name):
            raise CcptError(
                f"parameter '{name}' of spec '{spec.id}' is already filled in as '{values.get(name)}'",
                hint="edit the spec file to change it",
            )
        values[name] = str(value)
    if not values:
        return spec
    by_key_values = {parameter_key(name): value for name, value in values.items()}

    def fill(text: str) -> str:
        def substitute(match: re.Match[str]) -> str:
            value = by_key_values.get(parameter_key(match["name"]))
            return match.group() if value is None else str(value)

        return PLACEHOLDER.sub(substitute, text)

    filled = map_texts(spec, fill)
    filled.parameters = {name: values.get(name, spec.parameters[name]) for name in spec.parameters}
    return filled


def map_texts(spec: TaskSpec, change: Callable[[str], str]) -> TaskSpec:
    """A copy of `spec` with `change` applied to all its prose; CRPG items whose text changed and
    whose threshold came from their text get their threshold read again."""

    def item(section: str, old: CrpgItem) -> CrpgItem:
        text = change(old.text)
        if text == old.text:
            return old
        threshold = old.threshold
        if threshold is None or threshold == extract_threshold(old.text, section):
            threshold = extract_threshold(text, section)
        return CrpgItem(text, threshold)

    story = Story(change(spec.story.as_a), change(spec.story.i_want), change(spec.story.so_that))
    crpg: dict[str, Any] = {
        section: [item(section, i) for i in getattr(spec, section)] for section in CRPG_SECTIONS
    }
    return dataclasses.replace(
        spec,
        title=change(spec.title),
        story=story,
        prompt=change(spec.prompt),
        acceptance=[Criterion(change(c.given), change(c.when), change(c.then)) for c in spec.acceptance],
        **crpg,
        extra_sections={
            name: [change(line) for line in lines] for name, lines in spec.extra_sections.items()
        },
        scaffold={k: change(v) if isinstance(v, str) else v for k, v in spec.scaffold.items()},
        parameters=dict(spec.parameters),
    )
