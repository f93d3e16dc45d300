"""`ccpt spec check`: the INVEST lint and the CRPG checks, each a verdict with its reason.

Every INVEST letter gets pass, warn or fail:
  Independent  fails when the spec depends on other stories.
  Negotiable   warns when the story dictates the how ("must use", "exactly") instead of the what.
  Valuable     fails without a "so that"; warns without an "as a".
  Estimable    fails without story points or with unfilled [placeholders].
  Small        fails above 8 points, with a suggested split.
  Testable     fails with neither acceptance criteria nor a reward with a number, or with unfilled
               placeholders; warns when one of the two is missing.
CRPG checks: the task kind, constraints (contradictory pairs fail), rewards (those without
numbers warn), penalties (one that every acceptable value triggers fails), goal state, and
the open parameters.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from ccpt.specs.model import SCAFFOLD_KINDS, TASK_KINDS, CrpgItem, TaskSpec, Threshold, metric_unit

Status = Literal["pass", "warn", "fail"]
MAX_POINTS = 8
FIBONACCI_POINTS = frozenset({0, 1, 2, 3, 5, 8, 13, 21, 34})
_PRESCRIPTIVE = re.compile(
    r"\bmust use\b|\bexactly\b|\bonly use\b|\bdo not deviate\b|\bhard[- ]?cod(?:e|ed)\b|\bno alternatives?\b",
    re.IGNORECASE,
)
_DEPENDENCY_WORDS = re.compile(
    r"\bdepends on (?:story|spec|ticket)\b|\bblocked by\b|\bafter (?:story|spec)\b", re.I
)


@dataclass(frozen=True)
class Verdict:
    """One line of the lint: which check, pass/warn/fail, and why."""

    check: str
    status: Status
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"check": self.check, "status": self.status, "reason": self.reason}


@dataclass
class SpecReport:
    """All verdicts for one spec; it passes when none of them fails."""

    spec_id: str
    title: str
    source: str = ""
    verdicts: list[Verdict] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(v.status != "fail" for v in self.verdicts)

    def failures(self) -> list[Verdict]:
        return [v for v in self.verdicts if v.status == "fail"]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.spec_id,
            "title": self.title,
            "source": self.source,
            "passed": self.passed,
            "verdicts": [v.to_dict() for v in self.verdicts],
        }


def check_spec(spec: TaskSpec, source: str = "") -> SpecReport:
    """The INVEST verdicts, then the CRPG ones, for one spec."""
    verdicts = [
        _independent(spec),
        _negotiable(spec),
        _valuable(spec),
        _estimable(spec),
        _small(spec),
        _testable(spec),
        _task_kind(spec),
        _constraints(spec),
        _rewards(spec),
        _penalties(spec),
        _goal_state(spec),
        _parameters(spec),
    ]
    return SpecReport(spec.id, spec.title, source, verdicts)


def _open(spec: TaskSpec) -> str:
    return ", ".join(f"[{name}]" for name in spec.open_parameters())


def _independent(spec: TaskSpec) -> Verdict:
    if spec.depends_on:
        others = ", ".join(spec.depends_on)
        return Verdict(
            "Independent", "fail", f"depends on {others}: merge them or cut the dependency so it ships alone"
        )
    text = " ".join([spec.story.i_want, spec.prompt])
    if _DEPENDENCY_WORDS.search(text):
        return Verdict(
            "Independent", "warn", "its text mentions another story it waits for; list it in depends_on"
        )
    return Verdict("Independent", "pass", "depends on no other story")


def _negotiable(spec: TaskSpec) -> Verdict:
    found = _PRESCRIPTIVE.search(" ".join([spec.story.i_want, spec.prompt]))
    if found:
        return Verdict(
            "Negotiable",
            "warn",
            f"'{found.group()}' dictates the how; state the outcome and leave the design to the team",
        )
    return Verdict("Negotiable", "pass", "states outcomes and limits, leaves the design open")


def _valuable(spec: TaskSpec) -> Verdict:
    if not spec.story.so_that:
        return Verdict("Valuable", "fail", "no 'so that': say what the work is worth and to whom")
    if not spec.story.as_a:
        return Verdict("Valuable", "warn", "no 'as a': name who benefits")
    return Verdict("Valuable", "pass", f"so that {_short(spec.story.so_that)}")


def _estimable(spec: TaskSpec) -> Verdict:
    if spec.open_parameters():
        return Verdict(
            "Estimable", "fail", f"unfilled parameters {_open(spec)}: fill them with --set NAME=VALUE"
        )
    if spec.points is None:
        return Verdict("Estimable", "fail", "no estimate: add story points")
    if spec.points not in FIBONACCI_POINTS:
        return Verdict("Estimable", "warn", f"{spec.points} points is off the usual 1, 2, 3, 5, 8 scale")
    return Verdict("Estimable", "pass", f"estimated at {spec.points} points")


def _small(spec: TaskSpec) -> Verdict:
    if spec.points is None:
        return Verdict("Small", "warn", "no story points to judge the size by")
    if spec.points > MAX_POINTS:
        return Verdict(
            "Small", "fail", f"{spec.points} points is over {MAX_POINTS}: split it ({_split_hint(spec)})"
        )
    if len(spec.goal_state) > 6:
        return Verdict(
            "Small", "warn", f"{len(spec.goal_state)} deliverables in the goal state: consider a split"
        )
    return Verdict("Small", "pass", f"{spec.points} points fits in one iteration")


def _split_hint(spec: TaskSpec) -> str:
    if len(spec.goal_state) >= 2:
        halves = [spec.goal_state[: len(spec.goal_state) // 2], spec.goal_state[len(spec.goal_state) // 2 :]]
        return "e.g. one story for " + " and one for ".join(
            "'" + "; ".join(_short(i.text, 40) for i in half) + "'" for half in halves
        )
    return "e.g. a first story for data and a baseline, a second for the targets"


def _testable(spec: TaskSpec) -> Verdict:
    if spec.open_parameters():
        return Verdict("Testable", "fail", f"cannot be tested while {_open(spec)} are unfilled")
    numeric = [item for item in spec.rewards if item.threshold]
    criteria = len(spec.acceptance)
    criteria_text = _count(criteria, "acceptance criterion", "acceptance criteria")
    targets_text = _count(len(numeric), "numeric target")
    if not criteria and not numeric:
        return Verdict(
            "Testable",
            "fail",
            "no acceptance criteria and no reward with a number: nothing decides when it is done",
        )
    if not criteria:
        return Verdict("Testable", "warn", f"{targets_text} but no Given/When/Then criteria")
    if not numeric:
        return Verdict(
            "Testable",
            "warn",
            f"{criteria_text} but no reward with a number",
        )
    return Verdict(
        "Testable",
        "pass",
        f"{criteria_text}, {targets_text}",
    )


def _task_kind(spec: TaskSpec) -> Verdict:
    if not spec.task_kind:
        return Verdict("task kind", "fail", f"no task kind: add one of {', '.join(TASK_KINDS)}")
    if spec.task_kind not in SCAFFOLD_KINDS:
        return Verdict(
            "task kind",
            "warn",
            f"{spec.task_kind}: `ccpt new` does not render this kind yet (it renders "
            f"{', '.join(sorted(SCAFFOLD_KINDS))}); the spec still guides the agents",
        )
    return Verdict("task kind", "pass", f"{spec.task_kind}: rendered by `ccpt new`")


def _constraints(spec: TaskSpec) -> Verdict:
    if not spec.constraints:
        return Verdict("constraints", "warn", "none: state the data, hardware, time or budget limits")
    clash = _contradiction([*spec.constraints, *spec.rewards, *spec.goal_state])
    if clash:
        return Verdict("constraints", "fail", f"contradictory: '{clash[0].text}' and '{clash[1].text}'")
    checked = sum(1 for item in spec.constraints if item.threshold)
    unknown = _unknown_metrics(spec.constraints)
    if unknown:
        return Verdict(
            "constraints", "warn", f"unknown metric(s) {unknown}: generated gates cannot measure them"
        )
    return Verdict(
        "constraints", "pass", f"{_count(len(spec.constraints), 'constraint')}, {checked} machine-checkable"
    )


def _rewards(spec: TaskSpec) -> Verdict:
    if not spec.rewards:
        return Verdict("rewards", "fail", "none: say what success is, with a number")
    vague = [item.text for item in spec.rewards if not item.threshold]
    if vague:
        listed = "; ".join(f"'{_short(text, 50)}'" for text in vague)
        return Verdict("rewards", "warn", f"without a number: {listed}")
    unknown = _unknown_metrics(spec.rewards)
    if unknown:
        return Verdict("rewards", "warn", f"unknown metric(s) {unknown}: generated gates cannot measure them")
    gates = ", ".join(str(item.threshold) for item in spec.rewards)
    return Verdict("rewards", "pass", gates)


def _penalties(spec: TaskSpec) -> Verdict:
    if not spec.penalties:
        return Verdict("penalties", "warn", "none: name the anti-patterns to avoid")
    for penalty in spec.penalties:
        if penalty.threshold is None:
            continue
        interval = _feasible(
            [i.threshold for i in (*spec.constraints, *spec.rewards) if i.threshold], penalty.threshold.metric
        )
        if interval and _within(interval, penalty.threshold):
            return Verdict(
                "penalties",
                "fail",
                f"'{penalty.text}' triggers for every value the constraints and rewards allow",
            )
    checked = sum(1 for item in spec.penalties if item.threshold)
    return Verdict(
        "penalties",
        "pass",
        f"{_count(len(spec.penalties), 'penalty', 'penalties')}, {checked} with a threshold",
    )


def _goal_state(spec: TaskSpec) -> Verdict:
    if not spec.goal_state:
        return Verdict("goal state", "warn", "none: list the deliverables and how each is validated")
    return Verdict("goal state", "pass", f"{_count(len(spec.goal_state), 'deliverable')}")


def _parameters(spec: TaskSpec) -> Verdict:
    if spec.open_parameters():
        return Verdict("parameters", "fail", f"unfilled: {_open(spec)} (fill with --set NAME=VALUE)")
    if spec.parameters:
        filled = ", ".join(f"{name}={value}" for name, value in spec.parameters.items())
        return Verdict("parameters", "pass", f"filled: {filled}")
    return Verdict("parameters", "pass", "no template parameters")


# An interval of allowed values: (low, low_inclusive, high, high_inclusive).
Interval = tuple[float, bool, float, bool]


def _bounds(threshold: Threshold) -> Interval:
    value = threshold.value
    return {
        ">=": (value, True, math.inf, False),
        ">": (value, False, math.inf, False),
        "<=": (-math.inf, False, value, True),
        "<": (-math.inf, False, value, False),
        "==": (value, True, value, True),
    }[threshold.op]


def _intersect(a: Interval, b: Interval) -> Interval:
    low = max((a[0], a[1]), (b[0], b[1]), key=lambda bound: (bound[0], not bound[1]))
    high = min((a[2], a[3]), (b[2], b[3]), key=lambda bound: (bound[0], bound[1]))
    return (low[0], low[1], high[0], high[1])


def _empty(interval: Interval) -> bool:
    low, low_in, high, high_in = interval
    return low > high or (low == high and not (low_in and high_in))


def _feasible(thresholds: Iterable[Threshold], metric: str) -> Interval | None:
    interval: Interval | None = None
    for threshold in thresholds:
        if threshold.metric == metric:
            interval = _bounds(threshold) if interval is None else _intersect(interval, _bounds(threshold))
    return interval


def _contradiction(items: list[CrpgItem]) -> tuple[CrpgItem, CrpgItem] | None:
    """The first pair of requirements on one metric that no value can satisfy together."""
    gated = [item for item in items if item.threshold]
    for i, first in enumerate(gated):
        for second in gated[i + 1 :]:
            a, b = first.threshold, second.threshold
            if a and b and a.metric == b.metric and _empty(_intersect(_bounds(a), _bounds(b))):
                return first, second
    return None


def _within(interval: Interval, trigger: Threshold) -> bool:
    """Whether every value in `interval` triggers `trigger` (the interval lies inside the trigger's)."""
    if _empty(interval):
        return False
    return _intersect(interval, _bounds(trigger)) == interval


def _unknown_metrics(items: list[CrpgItem]) -> str:
    names = sorted(
        {i.threshold.metric for i in items if i.threshold and metric_unit(i.threshold.metric) is None}
    )
    return ", ".join(names)


def _count(number: int, word: str, plural: str | None = None) -> str:
    return f"{number} {word if number == 1 else plural or word + 's'}"


def _short(text: str, limit: int = 60) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"
