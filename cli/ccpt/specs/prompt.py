"""The structured prompt text an agent receives for a spec (`ccpt spec prompt`, `ccpt agent --spec`).

Plain Markdown with one section per part of the spec, each CRPG item followed by its
machine-checkable form, so that a model reads both the intent and the exact gate.
"""

from __future__ import annotations

from ccpt.specs.model import CrpgItem, TaskSpec

_SECTIONS = (
    ("constraints", "Constraints (hard limits: every one must hold)", "check"),
    ("rewards", "Rewards (targets to reach; the gates the project is accepted on)", "target"),
    ("penalties", "Penalties (anti-patterns to avoid)", "penalised when"),
    ("goal_state", "Goal state (deliverables, and how each is validated)", "check"),
)
_MODALITY_OF_KIND = {
    "image-classification": "vision",
    "object-detection": "vision",
    "semantic-segmentation": "vision",
    "image-pretraining": "vision",
    "text-classification": "text",
    "token-classification": "text",
    "question-answering": "text",
    "causal-lm": "text",
    "masked-lm": "text",
    "image-captioning": "multimodal",
    "visual-question-answering": "multimodal",
    "document-understanding": "multimodal",
}


def modality_of(spec: TaskSpec) -> str:
    """The spec's modality, or the one its task kind implies."""
    return spec.modality or _MODALITY_OF_KIND.get(spec.task_kind, "")


def render_prompt(spec: TaskSpec) -> str:
    """The prompt text for `spec`: story, prompt, acceptance criteria, CRPG items with their gates."""
    out = [f"# Task spec: {spec.title} (id: {spec.id})", ""]
    facts = [f"Task kind: {spec.task_kind or 'not stated'}"]
    if modality_of(spec):
        facts.append(f"modality: {modality_of(spec)}")
    if spec.points is not None:
        facts.append(f"story points: {spec.points}")
    out.append("; ".join(facts) + ".")
    if spec.lead_role:
        out.append(f"Lead role: {spec.lead_role}.")
    if spec.depends_on:
        out.append(f"Builds on: {', '.join(spec.depends_on)}.")

    if spec.story.lines():
        out += ["", "## User story", "", *spec.story.lines()]
    if spec.prompt:
        out += ["", "## Request", "", spec.prompt]
    if spec.acceptance:
        out += ["", "## Acceptance criteria", ""]
        out += [f"{i}. {criterion.sentence()}" for i, criterion in enumerate(spec.acceptance, start=1)]
    for section, heading, gate_word in _SECTIONS:
        items: list[CrpgItem] = getattr(spec, section)
        if items:
            out += ["", f"## {heading}", ""]
            out += [_item_line(item, gate_word) for item in items]
    open_parameters = spec.open_parameters()
    if open_parameters:
        out += ["", "## Open parameters (not decided yet: ask, or state the value you assume)", ""]
        out += [f"- [{name}]" for name in open_parameters]
    for name, lines in spec.extra_sections.items():
        out += ["", f"## {name}", ""]
        out += [f"- {line}" for line in lines]
    out += ["", "## How to work", ""]
    out += [
        "- Satisfy every constraint; optimise the rewards within them; avoid each penalty.",
        "- The work is done when the goal state is delivered and every acceptance criterion and "
        "machine-checkable target holds; report the measured value next to each target.",
        "- Where the spec leaves a choice open, choose, say why in one line, and keep it easy to change.",
    ]
    return "\n".join(out) + "\n"


def _item_line(item: CrpgItem, gate_word: str) -> str:
    if item.threshold is None:
        return f"- {item.text}"
    unit = f" ({item.threshold.unit})" if item.threshold.unit else ""
    return f"- {item.text}  [{gate_word}: {item.threshold}{unit}]"
