"""Helpers for the test_project_* tests: render a project with `ccpt new`, run things inside it.

Everything runs offline: the generated code must never need the network.
"""

from __future__ import annotations

import json
import operator
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import run_ccpt

PROJECT_KINDS = (
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
)
# The built-in spec each kind renders from, where its id is not the kind's name.
KIND_SPECS = {
    "token-classification": "named-entity-recognition",
    "image-pretraining": "vision-pretraining",
    "masked-lm": "domain-adaptation",
}
OFFLINE_ENV = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# The gates a project's `check` times afresh on every call (its acceptance.TIMED_METRICS): whether
# they pass follows how busy the machine is, which a test does not judge (benchmarks/ measure speed).
TIMED_GATES = frozenset(
    {
        "latency_ms",
        "latency_p95_ms",
        "inference_throughput",
        "time_to_first_token_ms",
        "generation_tokens_per_second",
    }
)
COMPARISONS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}


def new_project(parent: Path, name: str, kind: str, *options: str) -> Path:
    """`ccpt new NAME --spec SPEC --defaults --no-git OPTIONS` in `parent`, with the built-in spec
    of task kind `kind`; returns the project."""
    home = {"CCPT_HOME": str(parent / ".ccpt-home")}  # also isolated when called from a module fixture
    spec = KIND_SPECS.get(kind, kind)
    result = run_ccpt("new", name, "--spec", spec, "--defaults", "--no-git", *options, cwd=parent, env=home)
    assert result.returncode == 0, result.stderr
    return parent / name


def run_in_project(project: Path, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    """This interpreter with `args`, in the project's root, offline, as the project's user runs it."""
    env = {**os.environ, **OFFLINE_ENV, "NO_COLOR": "1", "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=env, capture_output=True, text=True, timeout=timeout
    )


def gate_status(gate: dict) -> str:
    """A gate's status from `check --json`; for a timed gate, "timed" once it is shown to have been
    measured and judged by its own figure."""
    if gate["metric"] not in TIMED_GATES:
        return gate["status"]
    assert gate["observed"] is not None and gate["observed"] > 0, gate
    assert gate["status"] == verdict(gate), gate
    return "timed"


def verdict(gate: dict) -> str:
    """pass or fail, as the gate's own observed figure and target decide it (a penalty passes where
    its comparison does not hold)."""
    holds = COMPARISONS[gate["op"]](gate["observed"], gate["target"])
    return "pass" if holds != (gate["section"] == "penalties") else "fail"


def run_records(run_dir: Path) -> list[dict]:
    """The lines of a run's metrics.jsonl."""
    return [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]


def only_run(project: Path) -> Path:
    (run_dir,) = (project / "runs").iterdir()
    return run_dir


def next_steps(panel: str) -> list[str]:
    """The commands of the "Next" list that `ccpt new` prints, a command continued over lines
    (ending in a backslash) joined into one."""
    lines = [line.strip("│ ") for line in panel.splitlines()]
    listed = lines[lines.index("Next") + 1 :]
    listed = listed[: next(index for index, line in enumerate(listed) if line.startswith("╰"))]
    return "\n".join(listed).replace(" \\\n", " ").splitlines()
