"""Render the generated-project template for the test_project_* tests.

The template is rendered with copier's `run_copy` directly (no template code runs: `unsafe=False`),
and specs/task.yaml is written from a TaskSpec the way `ccpt new` writes it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ccpt.resources import scaffolds_dir
from ccpt.specs.model import Criterion, CrpgItem, Story, TaskSpec, Threshold

PROJECT_KINDS = ("image-classification", "text-classification", "causal-lm")

# Nothing may come from the network: the generated code must work offline.
OFFLINE_ENV = {
    "HF_HUB_OFFLINE": "1",
    "HF_DATASETS_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "NO_COLOR": "1",
}


def gate(metric: str, op: str, value: float, text: str) -> CrpgItem:
    return CrpgItem(text, Threshold(metric, op, value))  # type: ignore[arg-type]


def project_spec(task_kind: str) -> TaskSpec:
    """A spec of the kind the built-in library holds, with gates a short CPU run can meet."""
    story = Story(as_a="an ML engineer", i_want=f"a {task_kind} model", so_that="users get predictions")
    common_penalties = [gate("train_val_gap", ">", 0.15, "Overfitting (>15% train-val gap)")]
    rewards: dict[str, list[CrpgItem]] = {
        "image-classification": [
            gate("accuracy", ">=", 0.9, "Achieve >90% top-1 accuracy"),
            gate("latency_ms", "<", 50, "Inference under 50ms per image on CPU"),
        ],
        "text-classification": [
            gate("accuracy", ">=", 0.5, "Accuracy of at least 50% (8 classes)"),
            gate("macro_f1", ">=", 0.4, "Macro-F1 >= 0.4"),
        ],
        "causal-lm": [
            gate("perplexity", "<", 40, "Validation perplexity under 40 per byte"),
            gate("latency_ms", "<", 100, "Under 100ms per generated token"),
        ],
    }
    return TaskSpec(
        id=task_kind,
        title=f"{task_kind} on the built-in data",
        task_kind=task_kind,
        story=story,
        points=3,
        acceptance=[Criterion(given="a trained run", when="check runs", then="every gate passes")],
        constraints=[
            gate("model_size_mb", "<", 100, "Model size under 100MB"),
            CrpgItem("Budget: $5 of cloud time", Threshold("cost_usd", "<=", 5)),
        ],
        rewards=rewards[task_kind],
        penalties=common_penalties if task_kind != "causal-lm" else [],
        goal_state=[CrpgItem("A served model with passing acceptance gates")],
        scaffold={"dataset": "builtin", "model_name": "", "precision": "auto", "distributed": "ddp"},
    )


def render_project(dst: Path, task_kind: str, spec: TaskSpec | None = None, **answers: str) -> Path:
    """Render the template into `dst` for `task_kind` and write specs/task.yaml; returns `dst`."""
    import copier
    import yaml

    spec = spec or project_spec(task_kind)
    data = {
        "project_name": dst.name,
        "task_kind": task_kind,
        "spec_id": spec.id,
        "spec": spec.to_dict(),
        **answers,
    }
    copier.run_copy(
        str(scaffolds_dir() / "project"),
        str(dst),
        data=data,
        defaults=True,
        unsafe=False,
        vcs_ref=None,
        quiet=True,
    )
    (dst / "specs").mkdir(exist_ok=True)
    (dst / "specs" / "task.yaml").write_text(yaml.safe_dump(spec.to_dict(), sort_keys=False))
    return dst


def run_in_project(
    project: Path, *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run this interpreter with `args` in the project, offline, as its user would."""
    full_env = {**os.environ, **OFFLINE_ENV, "COLUMNS": "200", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=project, env=full_env, capture_output=True, text=True, timeout=timeout
    )
