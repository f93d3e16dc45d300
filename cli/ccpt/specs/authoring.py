"""Writing a new spec (`ccpt spec new`): what the author gave, what is still missing, the result."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ccpt.errors import CcptError
from ccpt.specs.markdown_form import slugify
from ccpt.specs.model import TASK_KINDS, CrpgItem, Story, TaskSpec
from ccpt.specs.placeholders import discover_parameters
from ccpt.specs.thresholds import explicit_threshold, extract_threshold
from ccpt.specs.yaml_form import SPEC_ID, parse_criterion

# Fields a spec needs to pass `spec check`, in the order the guided prompts ask for them.
REQUIRED = ("title", "kind", "as_a", "i_want", "so_that", "points", "rewards", "acceptance")
OPTIONAL = ("constraints", "penalties", "goals")
# The copier answers `ccpt new` uses for a kind it renders (scaffolds/project/copier.yml).
DEFAULT_SCAFFOLD = {"dataset": "builtin", "model_name": "", "precision": "auto", "distributed": "ddp"}
LIST_FIELDS = frozenset({"constraints", "rewards", "penalties", "goals", "acceptance"})
QUESTIONS = {
    "title": "Title",
    "kind": "Task kind",
    "as_a": "As a (who benefits)",
    "i_want": "I want (what)",
    "so_that": "So that (why it is worth it)",
    "points": "Story points",
    "rewards": "Reward with a target, e.g. 'Accuracy >= 90%'",
    "acceptance": "Acceptance criterion 'Given ..., when ..., then ...'",
    "constraints": "Constraint, e.g. 'Model size under 100MB'",
    "penalties": "Penalty, e.g. 'Overfitting (>5% train-val gap)'",
    "goals": "Goal-state deliverable",
}


@dataclass
class SpecDraft:
    """What the author has given so far (None or empty = not given)."""

    spec_id: str | None = None
    title: str | None = None
    kind: str | None = None
    as_a: str | None = None
    i_want: str | None = None
    so_that: str | None = None
    points: int | None = None
    modality: str | None = None
    prompt: str | None = None
    constraints: list[str] = field(default_factory=list)
    rewards: list[str] = field(default_factory=list)
    penalties: list[str] = field(default_factory=list)
    goals: list[str] = field(default_factory=list)
    acceptance: list[str] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    start_from: str | None = None


def missing_fields(draft: SpecDraft, with_optional: bool = False) -> list[str]:
    """Required fields neither the flags nor the `--from` spec provide (optional ones too if asked)."""
    if draft.start_from:
        return []  # the starting spec provides every field the flags leave out
    names = REQUIRED + (OPTIONAL if with_optional else ())
    return [name for name in names if getattr(draft, name) in (None, "", [])]


def build_spec(draft: SpecDraft) -> TaskSpec:
    """The TaskSpec the draft describes; raises CcptError for a bad id or task kind."""
    if draft.start_from:
        from ccpt.specs.library import load_spec

        spec = dataclasses.replace(load_spec(draft.start_from))
    else:
        spec = TaskSpec(id="", title="", task_kind="")
    spec.title = draft.title or spec.title
    if not spec.title:
        raise CcptError("a spec needs a title", hint="pass --title")
    spec.id = draft.spec_id or (spec.id if draft.start_from and not draft.title else slugify(spec.title))
    if not SPEC_ID.match(spec.id):
        raise CcptError(f"spec id '{spec.id}' must be lowercase letters, digits, '-', '_' or '.'")
    spec.task_kind = draft.kind or spec.task_kind
    if spec.task_kind not in TASK_KINDS:
        raise CcptError(f"task kind '{spec.task_kind}' is not one of {', '.join(TASK_KINDS)}")
    spec.story = Story(
        draft.as_a or spec.story.as_a, draft.i_want or spec.story.i_want, draft.so_that or spec.story.so_that
    )
    spec.points = draft.points if draft.points is not None else spec.points
    spec.modality = draft.modality or spec.modality
    spec.prompt = draft.prompt or spec.prompt
    for section, texts in (
        ("constraints", draft.constraints),
        ("rewards", draft.rewards),
        ("penalties", draft.penalties),
        ("goal_state", draft.goals),
    ):
        if texts:
            setattr(spec, section, [_item(text, section) for text in texts])
    if draft.acceptance:
        spec.acceptance = [parse_criterion(text) for text in draft.acceptance]
    if draft.depends_on:
        spec.depends_on = list(draft.depends_on)
    if spec.scaffoldable and not spec.scaffold:
        spec.scaffold = dict(DEFAULT_SCAFFOLD)
    return discover_parameters(spec)


def _item(text: str, section: str) -> CrpgItem:
    text, pinned = explicit_threshold(" ".join(text.split()))
    return CrpgItem(text, pinned or extract_threshold(text, section))
