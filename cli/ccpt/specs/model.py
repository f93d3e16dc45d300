"""The typed model of a task spec: an INVEST user story with CRPG items.

A spec is the single source of truth for a piece of ML work. `TaskSpec.to_dict()` is also the
on-disk YAML schema (`specs/task.yaml` in a generated project, the built-in library), and
`TaskSpec.from_dict()` reads it back, so Markdown -> YAML -> TaskSpec round-trips.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Comparison = Literal[">=", ">", "<=", "<", "=="]

COMPARATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    ">": operator.gt,
    "<=": operator.le,
    "<": operator.lt,
    "==": operator.eq,
}

# Task kinds a spec may name. The scaffold renders the ones in SCAFFOLD_KINDS; for the others
# `ccpt new` says clearly that they are not rendered yet.
TASK_KINDS = (
    "image-classification",
    "object-detection",
    "semantic-segmentation",
    "text-classification",
    "token-classification",
    "question-answering",
    "causal-lm",
    "image-captioning",
    "visual-question-answering",
    "document-understanding",
    "masked-lm",
    "image-pretraining",
)
SCAFFOLD_KINDS = frozenset(
    {
        "image-classification",
        "text-classification",
        "token-classification",
        "semantic-segmentation",
        "object-detection",
        "image-captioning",
        "visual-question-answering",
        "image-pretraining",
        "masked-lm",
        "document-understanding",
        "question-answering",
        "causal-lm",
    }
)

# Metric names with their canonical unit. Thresholds are stored in these units
# (fractions for percentages, milliseconds, megabytes ...) so generated projects can check them.
METRIC_UNITS: dict[str, str] = {
    "accuracy": "fraction",
    "top5_accuracy": "fraction",
    "macro_f1": "fraction",
    "f1": "fraction",
    "precision": "fraction",
    "recall": "fraction",
    "exact_match": "fraction",
    "map": "fraction",
    "miou": "fraction",
    "dice": "fraction",
    "bleu": "score",
    "rouge_l": "fraction",
    "cider": "score",
    "anls": "fraction",
    "perplexity": "ratio",
    "eval_loss": "nats",
    "train_val_gap": "fraction",
    "accuracy_drop": "fraction",
    "win_rate": "fraction",
    "latency_ms": "ms",
    "latency_p95_ms": "ms",
    "time_to_first_token_ms": "ms",
    "throughput": "samples/s",  # training: examples per second through the training loop
    "inference_throughput": "samples/s",  # trained model: predictions per second, one at a time
    "tokens_per_second": "tokens/s",
    "generation_tokens_per_second": "tokens/s",
    "model_size_mb": "MB",
    "parameters_m": "millions",
    "gpu_memory_gb": "GB",
    "training_hours": "h",
    "gpu_hours": "h",
    "cost_usd": "USD",
    "trainable_params_fraction": "fraction",
    "mfu": "fraction",
    "nonfinite_losses": "count",
    "split_overlap": "count",
    "predicted_classes": "count",
    "rising_val_loss_evals": "count",
    "overfitting_evals": "count",
    "prompt_loss_tokens": "count",  # training targets inside an instruction: the loss should skip them
}
# A family of its own: max_4gram_repeats is how often the most repeated word 4-gram of one
# generated continuation occurs ("the same 4-gram more than 3 times": repetition loops).
REPEATED_NGRAMS = re.compile(r"max_(?P<n>[1-9])gram_repeats")
# A family of its own too: a classification metric on one class, named by the class lower-cased
# (recall_drug, f1_condition, iou_water), or on the class that scores worst (worst_class_precision,
# the minimum over the classes), or accuracy on one kind of input (accuracy_stacked_bar: on stacked
# bar charts; accuracy_drop is no such kind). All are fractions where a larger value is better.
CLASS_METRICS = re.compile(
    r"(?:precision|recall|f1|iou)_[a-z0-9_]+|worst_class_(?:precision|recall|f1)|accuracy_(?!drop$)[a-z0-9_]+"
)


def metric_unit(metric: str) -> str | None:
    """The canonical unit of a metric name, None for a name no generated project knows."""
    if REPEATED_NGRAMS.fullmatch(metric):
        return "count"
    if CLASS_METRICS.fullmatch(metric):
        return "fraction"
    return METRIC_UNITS.get(metric)


@dataclass(frozen=True)
class Threshold:
    """A machine-checkable form of a CRPG item: `metric op value` (value in the metric's unit)."""

    metric: str
    op: Comparison
    value: float
    unit: str | None = None

    def holds(self, observed: float) -> bool:
        """Whether `observed` satisfies `metric op value`."""
        return COMPARATORS[self.op](observed, self.value)

    def __str__(self) -> str:
        return f"{self.metric} {self.op} {self.value:g}"

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"metric": self.metric, "op": self.op, "value": self.value}
        if self.unit:
            data["unit"] = self.unit
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Threshold:
        return cls(str(data["metric"]), data["op"], float(data["value"]), data.get("unit"))


@dataclass(frozen=True)
class CrpgItem:
    """One bullet of CONSTRAINTS, REWARDS, PENALTIES or GOAL STATE.

    For a reward or constraint the threshold is what must hold; for a penalty it is the
    condition that triggers the penalty ("train_val_gap > 0.05").
    """

    text: str
    threshold: Threshold | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"text": self.text}
        if self.threshold:
            data["threshold"] = self.threshold.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | str) -> CrpgItem:
        if isinstance(data, str):
            return cls(data)
        threshold = data.get("threshold")
        return cls(str(data["text"]), Threshold.from_dict(threshold) if threshold else None)


@dataclass(frozen=True)
class Story:
    as_a: str = ""
    i_want: str = ""
    so_that: str = ""

    def lines(self) -> list[str]:
        """'As a ...', 'I want ...', 'So that ...' for the parts that are filled in."""
        parts = (("As a", self.as_a), ("I want", self.i_want), ("So that", self.so_that))
        return [f"{word} {value}" for word, value in parts if value]


@dataclass(frozen=True)
class Criterion:
    """An acceptance criterion in Given/When/Then form (any part may be empty)."""

    given: str = ""
    when: str = ""
    then: str = ""

    def __str__(self) -> str:
        return f"Given {self.given}, when {self.when}, then {self.then}"

    def sentence(self) -> str:
        """'Given ..., when ..., then ...' without the parts that are empty."""
        parts = (("Given", self.given), ("when", self.when), ("then", self.then))
        text = ", ".join(f"{word} {value}" for word, value in parts if value)
        return text[:1].upper() + text[1:]


@dataclass
class TaskSpec:
    """A task spec. `scaffold` holds answers for `ccpt new` (dataset, model_family, precision ...)."""

    id: str
    title: str
    task_kind: str
    story: Story = field(default_factory=Story)
    points: int | None = None
    modality: str = ""
    prompt: str = ""
    lead_role: str | None = None
    acceptance: list[Criterion] = field(default_factory=list)
    constraints: list[CrpgItem] = field(default_factory=list)
    rewards: list[CrpgItem] = field(default_factory=list)
    penalties: list[CrpgItem] = field(default_factory=list)
    goal_state: list[CrpgItem] = field(default_factory=list)
    depends_on: list[str] = field(default_factory=list)
    parameters: dict[str, str | None] = field(default_factory=dict)
    extra_sections: dict[str, list[str]] = field(default_factory=dict)
    scaffold: dict[str, Any] = field(default_factory=dict)

    @property
    def scaffoldable(self) -> bool:
        return self.task_kind in SCAFFOLD_KINDS

    def thresholds(self) -> list[tuple[str, Threshold]]:
        """Every machine-checkable item as (section, threshold), section in constraints/rewards/penalties."""
        found = []
        for section in ("constraints", "rewards", "penalties"):
            for item in getattr(self, section):
                if item.threshold:
                    found.append((section, item.threshold))
        return found

    def open_parameters(self) -> list[str]:
        """Placeholders from a template spec that have no value yet."""
        return [name for name, value in self.parameters.items() if value in (None, "")]

    def to_dict(self) -> dict[str, Any]:
        """The YAML schema: plain dicts, lists and scalars, empty fields left out."""
        data: dict[str, Any] = {"id": self.id, "title": self.title, "task_kind": self.task_kind}
        story = {k: v for k, v in vars(self.story).items() if v}
        if story:
            data["story"] = story
        for key in ("points", "modality", "prompt", "lead_role"):
            value = getattr(self, key)
            if value not in (None, ""):
                data[key] = value
        if self.acceptance:
            data["acceptance"] = [{k: v for k, v in vars(c).items() if v} for c in self.acceptance]
        for section in ("constraints", "rewards", "penalties", "goal_state"):
            items = getattr(self, section)
            if items:
                data[section] = [item.to_dict() for item in items]
        for key in ("depends_on", "parameters", "extra_sections", "scaffold"):
            value = getattr(self, key)
            if value:
                data[key] = value
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TaskSpec:
        """Build from the YAML schema; raises KeyError/TypeError/ValueError on a malformed mapping
        (the YAML reader turns those into errors naming file, line and field)."""
        return cls(
            id=str(data["id"]),
            title=str(data["title"]),
            task_kind=str(data["task_kind"]),
            story=Story(**dict(data.get("story") or {})),
            points=int(data["points"]) if data.get("points") is not None else None,
            modality=str(data.get("modality") or ""),
            prompt=str(data.get("prompt") or ""),
            lead_role=data.get("lead_role"),
            acceptance=[Criterion(**dict(c)) for c in data.get("acceptance") or []],
            constraints=[CrpgItem.from_dict(i) for i in data.get("constraints") or []],
            rewards=[CrpgItem.from_dict(i) for i in data.get("rewards") or []],
            penalties=[CrpgItem.from_dict(i) for i in data.get("penalties") or []],
            goal_state=[CrpgItem.from_dict(i) for i in data.get("goal_state") or []],
            depends_on=[str(d) for d in data.get("depends_on") or []],
            parameters=dict(data.get("parameters") or {}),
            extra_sections={str(k): list(v) for k, v in (data.get("extra_sections") or {}).items()},
            scaffold=dict(data.get("scaffold") or {}),
        )
