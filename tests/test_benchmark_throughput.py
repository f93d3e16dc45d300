"""benchmarks/train_throughput.py in its CPU mode, and generation_speed.py (the cache; LoRA merged;
against transformers' generate): each really runs and reports.

No figure is asserted (speed is measured in benchmarks/, not in tests); what is checked is that the
benchmark issue 8 rests on keeps working: it renders a causal-lm project with `ccpt new`, runs the
generated trainer and the HF Trainer on the same shape, data and batch, and writes its JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("torch")
pytest.importorskip("transformers")


@pytest.mark.slow
def test_cpu_tiny_mode_runs_both_trainers_on_the_same_batch_and_reports_a_ratio(tmp_path: Path) -> None:
    report = tmp_path / "throughput.json"
    script = ROOT / "benchmarks" / "train_throughput.py"
    done = subprocess.run(
        [sys.executable, str(script), "--device", "cpu", "--tiny", "--json", str(report)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "Next" not in done.stdout  # ccpt new's panel is not mixed into the table
    results = {row["trainer"]: row for row in json.loads(report.read_text())["results"]}
    generated, hf = results["generated"], results["hf-trainer"]
    assert generated["batch"] == hf["batch"] and generated["seq_len"] == hf["seq_len"]
    assert generated["device"] == hf["device"] == "cpu"
    assert generated["tokens_per_s"] > 0 and hf["tokens_per_s"] > 0
    assert generated["ratio_over_hf"] == pytest.approx(generated["tokens_per_s"] / hf["tokens_per_s"])
    assert f"generated / HF Trainer: {generated['ratio_over_hf']:.2f}x tokens/s" in done.stdout


@pytest.mark.slow
def test_generation_speed_samples_with_and_without_the_cache_side_by_side() -> None:
    script = ROOT / "benchmarks" / "generation_speed.py"
    command = [sys.executable, str(script), "--shapes", "tiny", "--tokens", "8", "--runs", "1", "--json"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout)
    assert row["shape"] == "tiny" and row["new_tokens"] == 8 and row["prompt_tokens"] == 64
    assert row["cached_tokens_per_s"] > 0 and row["rerun_tokens_per_s"] > 0
    assert row["speedup"] == pytest.approx(row["cached_tokens_per_s"] / row["rerun_tokens_per_s"], rel=0.02)


@pytest.mark.slow
def test_generation_speed_compares_lora_adapters_with_them_merged_and_both_sample_alike() -> None:
    script = ROOT / "benchmarks" / "generation_speed.py"
    command = [sys.executable, str(script), "--lora", "4", "--shapes", "tiny", "--tokens", "8", "--runs", "1"]
    done = subprocess.run([*command, "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout)
    assert row["shape"] == "tiny" and row["rank"] == 4 and row["new_tokens"] == 8
    assert row["same_tokens"] is True  # merging changes the cost of a token, not the token
    assert row["adapters_tokens_per_s"] > 0 and row["merged_tokens_per_s"] > 0
    speedup = row["merged_tokens_per_s"] / row["adapters_tokens_per_s"]
    assert row["speedup"] == pytest.approx(speedup, rel=0.02)


@pytest.mark.slow
def test_generation_speed_compares_the_project_with_transformers_on_the_same_weights() -> None:
    script = ROOT / "benchmarks" / "generation_speed.py"
    command = [sys.executable, str(script), "--against-hf", "--shapes", "tiny", "--tokens", "8"]
    done = subprocess.run([*command, "--runs", "1", "--json"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    (row,) = json.loads(done.stdout)
    assert row["shape"] == "tiny" and row["new_tokens"] == 8
    assert row["same_tokens"] is True  # the exported GPT-2 is the same model
    assert row["project_tokens_per_s"] > 0 and row["transformers_tokens_per_s"] > 0
    ratio = row["project_tokens_per_s"] / row["transformers_tokens_per_s"]
    assert row["ratio"] == pytest.approx(ratio, rel=0.02)
