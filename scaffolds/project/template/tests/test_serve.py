"""`runner.py serve` as a user starts it: on the port asked for, on any free one with --port 0,
with one line of advice when the port is taken or the model cannot be read, and quickly."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
import torch

from config import ProjectError
from conftest import ROOT, run_cli
from predictor import Predictor


def test_a_busy_port_is_refused_in_one_line(trained_run: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_cli("serve", "--run", str(trained_run), "--port", str(port))
    assert result.returncode == 2, result.stderr
    assert f"cannot serve on 127.0.0.1:{port}" in result.stderr and "--port" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and "serving run" not in result.stdout


def test_port_zero_serves_on_a_free_port_and_says_which(trained_run: Path) -> None:
    env = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    command = [sys.executable, "src/runner.py", "serve", "--run", str(trained_run), "--port", "0"]
    with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True) as server:
        try:
            first_line = server.stdout.readline()
            url = first_line.split(" on ")[1].split()[0]
            assert not url.endswith(":0"), first_line
            with urllib.request.urlopen(f"{url}/health", timeout=30) as response:
                assert json.load(response)["run"] == trained_run.name
        finally:
            server.send_signal(signal.SIGINT)  # Ctrl-C
            assert server.wait(timeout=30) == 0


def test_a_model_cut_short_is_one_line_and_leaves_the_port_free(trained_run: Path, tmp_path: Path) -> None:
    """A run copied from another machine by a transfer that broke off: serve says which file cannot
    be read, and lets go of the port it had bound."""
    run_dir = tmp_path / trained_run.name
    shutil.copytree(trained_run, run_dir)
    model = run_dir / "model.pt"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    command = [sys.executable, "src/runner.py", "serve", "--run", str(run_dir), "--port", str(port)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert f"{model} cannot be read" in result.stderr, result.stderr
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # no socket of the failed server holds it


def test_a_file_torch_reads_but_this_project_did_not_write_is_one_line(
    trained_run: Path, tmp_path: Path
) -> None:
    """A model.pt that loads but holds something else, such as a bare tensor another script wrote
    under that name."""
    run_dir = tmp_path / trained_run.name
    shutil.copytree(trained_run, run_dir)
    torch.save(torch.zeros(3), run_dir / "model.pt")
    with pytest.raises(ProjectError) as refused:
        Predictor(run_dir, device="cpu")
    assert f"{run_dir / 'model.pt'} cannot be read" in str(refused.value)


def test_weights_that_do_not_fit_the_runs_config_are_one_line(trained_run: Path, tmp_path: Path) -> None:
    """Another run's model.pt, or a config.json edited after training: the weights' names or shapes
    differ from the model the config describes. Every command that loads the model (predict, serve,
    check) gets this one line."""
    run_dir = tmp_path / trained_run.name
    shutil.copytree(trained_run, run_dir)
    saved = torch.load(run_dir / "model.pt", weights_only=True)
    name = next(iter(saved["model"]))
    saved["model"][f"{name}_of_another_model"] = saved["model"].pop(name)
    torch.save(saved, run_dir / "model.pt")
    with pytest.raises(ProjectError) as refused:
        Predictor(run_dir, device="cpu")
    assert "does not fit the model" in str(refused.value) and name in str(refused.value)
    assert "\n" not in str(refused.value)


def test_predicting_and_serving_start_without_datasets() -> None:
    """`datasets` (most of a second to import) builds the training data; `predict` and `serve`
    load a saved model and need it only when asked for validation examples."""
    code = "import sys, predictor, server; print('datasets' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT / "src", capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.strip() == "False", result.stdout + result.stderr
