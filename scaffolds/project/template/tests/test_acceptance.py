"""`runner.py check` on a short real training run: every gate of the spec reported, judged right."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from acceptance import read_gates
from config import SPEC_PATH
from conftest import TINY, run_cli, set_flags

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A short training run made the way a user makes one: `runner.py train`."""
    runs = tmp_path_factory.mktemp("runs")
    result = run_cli("train", "--max-steps", "30", *set_flags({**TINY, "runs_dir": str(runs)}))
    assert result.returncode == 0, result.stderr[-3000:]
    (run_dir,) = runs.iterdir()
    return run_dir


def check(run_dir: Path, *args: str):
    return run_cli("check", "--run", str(run_dir), *args)


def write_spec(path: Path, notes: tuple[str, ...] = (), **sections: list[tuple[str, str, float]]) -> Path:
    """A spec with these gates, and `notes`: constraints without a number."""
    spec: dict = {"id": "test", "title": "test", "task_kind": "test", "constraints": list(notes)}
    for section, gates in sections.items():
        spec.setdefault(section, [])
        spec[section] += [
            {"text": f"{metric} {op} {value}", "threshold": {"metric": metric, "op": op, "value": value}}
            for metric, op, value in gates
        ]
    path.write_text(yaml.safe_dump(spec))
    return path


def test_check_reports_every_gate_of_the_projects_spec(finished_run: Path) -> None:
    result = check(finished_run, "--json")
    gates = json.loads(result.stdout)
    assert [g["metric"] for g in gates] == [g.metric for g in read_gates(SPEC_PATH)]
    assert {g["status"] for g in gates} <= {"pass", "fail", "not measured"}
    assert result.returncode == (1 if any(g["status"] == "fail" for g in gates) else 0)


def test_check_passes_when_every_measured_gate_holds(finished_run: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        notes=("Reviewed by a colleague",),
        constraints=[("model_size_mb", "<", 1000), ("latency_ms", "<", 60_000), ("cost_usd", "<=", 5)],
        rewards=[("eval_loss", "<", 100), ("parameters_m", "<", 1000)],
        penalties=[("train_val_gap", ">", 1.0), ("nonfinite_losses", ">", 0)],
    )
    result = check(finished_run, "--spec", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all measured gates pass" in result.stdout
    assert "not measured" in result.stdout  # cost_usd: nothing here knows the bill
    assert "not machine-checkable (review it yourself): Reviewed by a colleague" in result.stdout

    gates = {g["metric"]: g for g in json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)}
    assert 0 < gates["latency_ms"]["observed"] < 60_000  # measured by timing predictions
    size_mb = (finished_run / "model.pt").stat().st_size / 1e6
    assert gates["model_size_mb"]["observed"] == pytest.approx(size_mb)
    assert gates["nonfinite_losses"]["observed"] == 0  # counted over the run's training records
    assert gates["latency_ms"]["observed_text"] == f"{gates['latency_ms']['observed']:.4g}"


def test_check_states_times_as_people_write_them(finished_run: Path, tmp_path: Path) -> None:
    spec = write_spec(tmp_path / "spec.yaml", constraints=[("training_hours", "<", 2 / 60)])  # "2 minutes"
    (gate,) = json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)
    assert gate["target_text"] == "2 min" and gate["observed_text"].endswith(" s")
    assert "< 2 min" in check(finished_run, "--spec", str(spec)).stdout


def test_check_fails_a_missed_reward_and_a_triggered_penalty(finished_run: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        rewards=[("eval_loss", "<", 0.0)],
        penalties=[("parameters_m", ">", 0.0)],
        constraints=[("model_size_mb", "<", 1000)],
    )
    result = check(finished_run, "--spec", str(spec), "--json")
    assert result.returncode == 1
    statuses = {g["metric"]: g["status"] for g in json.loads(result.stdout)}
    assert statuses == {"eval_loss": "fail", "parameters_m": "fail", "model_size_mb": "pass"}


def test_check_without_a_run_says_what_to_do(tmp_path: Path) -> None:
    result = run_cli("check", "--runs-dir", str(tmp_path))
    assert result.returncode == 2
    assert "train one first" in result.stderr


def test_check_names_the_step_where_a_halted_run_lost_its_numbers(finished_run: Path, tmp_path: Path) -> None:
    """A run halted by a NaN loss (see test_trainer.py) has no final record: check says where it
    went wrong instead of only that it did not finish."""
    run_dir = tmp_path / finished_run.name
    shutil.copytree(finished_run, run_dir)
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if r["kind"] != "final"]
    diverged = [r for r in records if r["kind"] == "train"][-1]
    diverged["loss"] = float("nan")
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    result = check(run_dir)
    assert result.returncode == 2
    assert f"stopped at step {diverged['step']}, where its training loss became nan" in result.stderr
