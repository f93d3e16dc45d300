"""`runner.py card`: the run's model card, its metadata as the Hugging Face Hub reads it and its
tables as `check` judges the run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

import metrics
from acceptance import GENERATION_METRICS, LATENCY_METRICS
from config import TASK_KIND
from conftest import read_records, run_cli


def test_the_model_card_holds_the_runs_scores_gates_and_settings(trained_run: Path, tmp_path: Path) -> None:
    path = tmp_path / "card.md"
    result = run_cli("card", "--run", str(trained_run), "--output", str(path))
    assert result.returncode == 0, result.stderr
    assert f"wrote the model card of run {trained_run.name} to {path}" in result.stdout
    _, front, body = path.read_text().split("---\n", 2)
    meta = yaml.safe_load(front)
    assert meta["library_name"] == "pytorch" and TASK_KIND in meta["tags"]
    (result_entry,) = meta["model-index"][0]["results"]
    scores = {entry["type"]: entry["value"] for entry in result_entry["metrics"]}
    final = read_records(trained_run)[-1]
    assert scores[metrics.MONITOR] == pytest.approx(final[metrics.MONITOR], abs=1e-6)
    assert not any(name.startswith("train_") for name in scores)  # validation scores only
    # Every gate `check` judges is a row, with the verdict `check` gives (timings aside: measured anew).
    gates = json.loads(run_cli("check", "--run", str(trained_run), "--json").stdout)
    rows = [line for line in body.splitlines() if line.startswith(("| constraint", "| reward", "| penalty"))]
    assert len(rows) == len(gates)
    timed = LATENCY_METRICS | set(GENERATION_METRICS) | {"inference_throughput"}
    for gate, row in zip(gates, rows, strict=True):
        assert f"| {gate['metric']} |" in row
        if gate["metric"] not in timed:
            assert row.endswith(f"| {gate['status']} |")
    assert (trained_run / "config.json").read_text().strip() in body  # every setting, as saved
    assert f"--run {trained_run.name}" in body  # how to use it
    as_json = json.loads(run_cli("card", "--run", str(trained_run), "--output", str(path), "--json").stdout)
    failed = sum(gate["status"] == "fail" for gate in gates)
    assert as_json == {"path": str(path), "gates": len(gates), "failed": failed}
