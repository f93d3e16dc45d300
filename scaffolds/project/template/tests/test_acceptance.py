"""`runner.py check` on a short real training run: every gate of the spec reported, judged right."""

from __future__ import annotations

import json
import shutil
import statistics
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import yaml

import acceptance
from acceptance import (
    CONTINUATION_TOKENS,
    CONTINUATIONS,
    HINTS,
    hint,
    longest_rise,
    median_prediction_ms,
    most_repeated_ngram,
    read_gates,
    readable,
)
from config import SPEC_PATH, TASK_KIND
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
        penalties=[
            ("train_val_gap", ">", 1.0),
            ("nonfinite_losses", ">", 0),
            ("latency_p95_ms", ">", 60_000),
        ],
    )
    result = check(finished_run, "--spec", str(spec))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all measured gates pass" in result.stdout
    assert "not measured" in result.stdout  # cost_usd: nothing here knows the bill
    assert "not machine-checkable (review it yourself): Reviewed by a colleague" in result.stdout

    gates = {g["metric"]: g for g in json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)}
    unmeasured = [metric for metric, gate in gates.items() if gate["status"] == "not measured"]
    assert "cost_usd" in unmeasured  # and counted in the last line, so "pass" is not read as covering it
    assert f"all measured gates pass; {len(unmeasured)} of {len(gates)} not measured" in result.stdout
    assert 0 < gates["latency_ms"]["observed"] < 60_000  # measured by timing predictions
    # The slow tail of the same timings: never under their median.
    assert gates["latency_p95_ms"]["observed"] >= gates["latency_ms"]["observed"]
    size_mb = (finished_run / "model.pt").stat().st_size / 1e6
    assert gates["model_size_mb"]["observed"] == pytest.approx(size_mb)
    assert gates["nonfinite_losses"]["observed"] == 0  # counted over the run's training records
    assert gates["latency_ms"]["observed_text"] == f"{gates['latency_ms']['observed']:.4g} ms"


@pytest.mark.parametrize("width", [60, 80, 200])
def test_check_shows_every_figure_whole_in_any_terminal_width(
    finished_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, width: int
) -> None:
    """Long metric names and targets with units: each gate's metric, target and figure stay whole
    on one line, and the spec's words are still shown (in 80 columns the table once squeezed their
    column to nothing and cut figures to "not measur…")."""
    import runner

    gates = {
        "constraints": [
            ("gpu_memory_gb", "<=", 24),
            ("cost_usd", "<=", 1234.5),
            ("model_size_mb", "<", 1000),
        ],
        "rewards": [("parameters_m", "<", 1000)],
        "penalties": [("nonfinite_losses", ">", 0), ("train_val_gap", ">", 1)],
    }
    spec = {"id": "test", "title": "test", "task_kind": "test"} | {
        section: [
            {
                "text": f"{section} {number} of this spec, in words long enough to wrap in a narrow column",
                "threshold": {"metric": metric, "op": op, "value": value},
            }
            for number, (metric, op, value) in enumerate(entries, start=1)
        ]
        for section, entries in gates.items()
    }
    spec_path = tmp_path / "spec.yaml"
    spec_path.write_text(yaml.safe_dump(spec))
    monkeypatch.setattr(runner.console, "width", width)
    shown = check(finished_run, "--spec", str(spec_path)).stdout
    lines = shown.splitlines()
    assert max(map(len, lines)) <= width
    table = "┃ metric" in shown  # a table's header row; the list has none
    if width != 80:  # 80 columns hold the table for some kinds' figures, not for others
        assert table == (width == 200)  # 60 cannot hold the five columns whole: two lines a gate
    # The spec's words, however they wrap: a table's first column, or the list's lines.
    cells = [line.split("│")[1] for line in lines if line.startswith("│")] if table else lines
    words = " ".join(" ".join(cells).split())
    for gate in json.loads(check(finished_run, "--spec", str(spec_path), "--json").stdout):
        (line,) = [line for line in lines if gate["metric"] in line]
        assert gate["target_text"] in line and (gate["observed_text"] or "not measured") in line
        assert gate["text"] in words


def test_check_counts_what_the_spec_names_without_a_number(finished_run: Path, tmp_path: Path) -> None:
    """Leaked validation examples, a classifier stuck on one class, a rising validation loss."""
    spec = write_spec(
        tmp_path / "spec.yaml",
        penalties=[
            ("split_overlap", ">", 0),
            ("predicted_classes", "<=", 1),
            ("rising_val_loss_evals", ">=", 3),
            ("overfitting_evals", ">=", 3),
            ("max_4gram_repeats", ">", 3),
        ],
    )
    gates = {g["metric"]: g for g in json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)}
    assert gates["split_overlap"]["observed"] == 0  # the data reads its copies once (test_loading.py)
    records = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    (final,) = [r for r in records if r["kind"] == "final"]
    if TASK_KIND != "causal-lm":  # no text to repeat itself
        assert gates["max_4gram_repeats"]["status"] == "not measured"
        if "predicted_classes" in final:  # classifiers, taggers, segmenters
            assert gates["predicted_classes"]["observed"] == final["predicted_classes"] > 1
        else:  # a reader points at spans: it has no classes
            assert gates["predicted_classes"]["status"] == "not measured"
    else:  # language models: no classes
        assert gates["predicted_classes"]["status"] == "not measured"
        from predictor import Predictor

        # The same continuations on every check: sampled from a fixed seed of their own, which
        # leaves the process's random state (a server's, say) as it was.
        predictor = Predictor(finished_run)
        state = torch.get_rng_state()
        samples = predictor.continuations(CONTINUATIONS, CONTINUATION_TOKENS)
        assert torch.equal(torch.get_rng_state(), state)
        texts = [sample["completion"] for sample in samples]
        assert len(texts) == CONTINUATIONS and all(texts)
        worst = max(most_repeated_ngram(text, 4) for text in texts)
        assert gates["max_4gram_repeats"]["observed"] == worst
    evaluations = [r for r in records if r["kind"] == "eval"]
    assert 0 <= gates["overfitting_evals"]["observed"] <= gates["rising_val_loss_evals"]["observed"]
    assert gates["rising_val_loss_evals"]["observed"] < len(evaluations)


def test_readable_numbers() -> None:
    assert readable("tokens_per_second", 41_412.7) == "41,413 tokens/s"
    assert readable("latency_ms", 0.53124) == "0.5312 ms"
    assert readable("model_size_mb", 2.2) == "2.2 MB"
    assert readable("inference_throughput", 33.25) == "33.25/s"
    assert readable("cost_usd", 1234.5) == "$1,234.50"
    assert readable("accuracy", 0.975) == "0.975"  # a fraction has no unit
    assert readable("training_hours", 2 / 60) == "2 min"


def test_most_repeated_ngram_counts_runs_of_words() -> None:
    loop = "and then the cat sat " * 4
    assert most_repeated_ngram(loop + "down.", 4) == 4  # "and then the cat" (and "then the cat sat")
    assert most_repeated_ngram(loop, 5) == 4
    assert most_repeated_ngram("a b c d e f g", 4) == 1
    assert most_repeated_ngram("too short", 4) == 0


def test_check_times_text_generation_from_prompt_to_first_token_and_per_second(
    finished_run: Path, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        constraints=[("time_to_first_token_ms", "<", 60_000), ("latency_ms", "<", 60_000)],
        rewards=[("generation_tokens_per_second", ">", 0)],
    )
    gates = {g["metric"]: g for g in json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)}
    assert gates["latency_ms"]["status"] == "pass"
    if TASK_KIND != "causal-lm":  # it generates no text
        assert gates["time_to_first_token_ms"]["status"] == "not measured"
        assert gates["generation_tokens_per_second"]["status"] == "not measured"
        return
    first_token, per_token = gates["time_to_first_token_ms"]["observed"], gates["latency_ms"]["observed"]
    assert 0 < first_token < 60_000 and 0 < per_token < 60_000
    speed = gates["generation_tokens_per_second"]["observed"]
    assert speed > 0 and gates["generation_tokens_per_second"]["status"] == "pass"
    # Sampling runs the model once per token, so speed and time per token roughly agree (within 10x
    # either way on a busy machine: the speed comes from longer continuations than the latency).
    assert 0.1 < speed * per_token / 1000 < 10


def test_check_measures_inference_throughput_from_predictions_not_the_training_log(
    finished_run: Path, tmp_path: Path
) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        constraints=[("latency_ms", "<", 60_000)],
        rewards=[("inference_throughput", ">=", 0.001), ("throughput", ">", 0)],
    )
    gates = {g["metric"]: g for g in json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)}
    speed, latency = gates["inference_throughput"]["observed"], gates["latency_ms"]["observed"]
    assert speed > 0 and gates["inference_throughput"]["status"] == "pass"
    records = [json.loads(line) for line in (finished_run / "metrics.jsonl").read_text().splitlines()]
    # Training throughput is the training log's samples/s (a language model logs tokens/s instead).
    logged = [r["samples_per_s"] for r in records if r["kind"] == "train" and "samples_per_s" in r]
    if logged:
        assert gates["throughput"]["observed"] == pytest.approx(statistics.median(logged))
    else:
        assert gates["throughput"]["status"] == "not measured"
    if TASK_KIND != "causal-lm":  # one timing gives both
        assert speed == pytest.approx(1000 / latency)
    else:  # a text generator: whole predictions, each of several tokens, against a time per token
        assert speed * latency / 1000 < 2


def test_inference_throughput_times_whole_predictions(monkeypatch: pytest.MonkeyPatch) -> None:
    """A text generator's latency is per token; its inference throughput counts predictions."""
    clock = [0.0]

    class Generator:  # each prediction: 4 tokens of 5 ms
        def sample_inputs(self, count: int) -> list[str]:
            return ["prompt"] * count

        def predict(self, prompt: str, max_new_tokens: int = 4) -> dict[str, int]:
            clock[0] += 0.005 * max_new_tokens
            return {"tokens": max_new_tokens}

        def continuations(self, count: int, max_new_tokens: int) -> list[dict]:
            return []

    monkeypatch.setattr(acceptance, "time", SimpleNamespace(perf_counter=lambda: clock[0]))
    assert median_prediction_ms(Generator()) == pytest.approx(5)
    assert median_prediction_ms(Generator(), per_token=False) == pytest.approx(20)
    assert median_prediction_ms(Generator(), max_new_tokens=1) == pytest.approx(5)

    import predictor

    monkeypatch.setattr(predictor, "Predictor", lambda run_dir: Generator())
    values = acceptance.measure_predictions(Path("run"), {"latency_ms", "inference_throughput"})
    assert values == pytest.approx({"latency_ms": 5, "inference_throughput": 50})  # 1000 / 20 ms


def test_longest_rise_finds_streaks_of_a_rising_validation_loss() -> None:
    def evaluation(step: int, loss: float) -> dict:
        return {"kind": "eval", "step": step, "eval_loss": loss}

    training = [{"kind": "train", "step": step, "loss": 3.0 - step / 100} for step in range(10, 101, 10)]
    evaluations = [evaluation(s, v) for s, v in ((20, 2.0), (40, 2.1), (60, 2.2), (80, 2.1), (100, 2.3))]
    assert longest_rise(evaluations, training, while_training_falls=False) == 2  # steps 40 and 60
    assert longest_rise(evaluations, training, while_training_falls=True) == 2  # training falls throughout
    training[-1]["loss"] = 5.0  # step 100: the training loss rose
    evaluations += [evaluation(110, 2.4), evaluation(120, 2.5)]  # past the last training record
    assert longest_rise(evaluations, training, while_training_falls=False) == 3  # 100, 110, 120
    assert longest_rise(evaluations, training, while_training_falls=True) == 2  # still 40 and 60
    assert longest_rise([], training, while_training_falls=False) == 0


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


def test_a_failed_anti_pattern_gate_comes_with_what_to_try(finished_run: Path, tmp_path: Path) -> None:
    spec = write_spec(
        tmp_path / "spec.yaml",
        rewards=[("eval_loss", "<", 0.0)],
        penalties=[("split_overlap", ">=", 0), ("rising_val_loss_evals", ">=", 0)],  # always triggered
    )
    result = check(finished_run, "--spec", str(spec))
    assert result.returncode == 1
    output = " ".join(result.stdout.split())
    assert f"split_overlap: {' '.join(HINTS['split_overlap'].split())}" in output
    assert f"rising_val_loss_evals: {HINTS['rising_val_loss_evals']}" in output
    assert "eval_loss:" not in output  # a missed score has no one remedy
    assert "3 gate(s) failed" in output
    assert hint("max_3gram_repeats") == hint("max_4gram_repeats") is not None
    gates = json.loads(check(finished_run, "--spec", str(spec), "--json").stdout)
    assert {gate["metric"]: gate["hint"] for gate in gates} == {
        "eval_loss": None,
        "split_overlap": HINTS["split_overlap"],
        "rising_val_loss_evals": HINTS["rising_val_loss_evals"],
    }


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
