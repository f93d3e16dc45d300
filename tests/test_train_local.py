"""`ccpt train` on this machine: real torchrun, two gloo processes, a tiny real model."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import run_ccpt
from tests.train_support import (
    TEARDOWN_BOUND_S,
    interrupt,
    job_processes,
    make_project,
    read_until,
    start_ccpt,
    wait_until_gone,
)

pytestmark = pytest.mark.slow


def launch(project: Path, job: str, *script_args: str) -> subprocess.Popen[str]:
    return start_ccpt(["train", "--nproc-per-node", "2", "--job-id", job, "--", *script_args], project)


def test_two_local_jobs_at_once_train_with_rank_zero_on_the_console_and_every_rank_logged(
    tmp_path: Path,
) -> None:
    # Two jobs started together each pick their own free rendezvous port: neither clashes.
    projects = [make_project(tmp_path / name) for name in ("a", "b")]
    procs = [launch(p, f"both-{p.name}", "--max-steps", "3", "--save", "model.pt") for p in projects]
    outputs = [proc.communicate(timeout=240)[0] for proc in procs]
    for project, proc, output in zip(projects, procs, outputs, strict=True):
        assert proc.returncode == 0, output
        job_dir = project / "runs" / f"both-{project.name}"
        assert "step 3 loss" in output
        assert "rank 1" not in output  # only rank 0 is echoed locally...
        assert "step 3 loss" in (job_dir / "rank-1.log").read_text()  # ...every rank is kept
        assert "rank 0 done" in (job_dir / "rank-0.log").read_text()
        summary = json.loads((job_dir / "summary.json").read_text())
        assert summary["exit_code"] == 0 and summary["failure"] is None
        plan = json.loads((job_dir / "plan.json").read_text())
        assert plan["world_size"] == 2
        assert (project / "model.pt").is_file()
    ports = [
        json.loads((p / "runs" / f"both-{p.name}" / "plan.json").read_text())["rdzv_endpoint"]
        for p in projects
    ]
    assert ports[0] != ports[1]
    assert job_processes("both-a") == [] and job_processes("both-b") == []


def test_torchrun_processes_share_the_node_s_cpus_unless_omp_num_threads_is_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)  # the test runner's own (tests/conftest.py)
    cpus = len(os.sched_getaffinity(0))
    project = make_project(tmp_path / "p", entry="echo_args.py", env_file="")
    for nproc, env_file, expected in (
        (1, "", cpus),
        (2, "", max(1, cpus // 2)),
        (2, "OMP_NUM_THREADS=3\n", 3),  # the user's setting wins
    ):
        (project / ".ccpt_env").write_text(env_file)
        job = f"omp-{nproc}-{len(env_file)}"
        result = run_ccpt("train", "--nproc-per-node", str(nproc), "--job-id", job, cwd=project, timeout=240)
        assert result.returncode == 0, result.stderr
        assert "Setting OMP_NUM_THREADS" not in result.stdout + result.stderr  # torchrun's banner
        seen = [
            json.loads(line)["omp_num_threads"]
            for log in sorted((project / "runs" / job).glob("rank-*.log"))
            for line in log.read_text().splitlines()
            if line.startswith("{")
        ]
        assert seen == [str(expected)] * nproc, (nproc, env_file)


def test_a_failing_rank_ends_the_job_with_a_summary_naming_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    result = run_ccpt(
        "train",
        "--nproc-per-node",
        "2",
        "--job-id",
        "fails",
        "--",
        "--max-steps",
        "50",
        "--sleep",
        "0.05",
        "--fail-rank",
        "1",
        "--fail-step",
        "3",
        cwd=project,
        timeout=240,
    )
    assert result.returncode != 0
    assert "failed: local:1 rank 1 exited with code 3" in result.stderr
    assert "rank 1 fails on purpose at step 3" in result.stderr  # its last lines
    # torchrun's own traceback and failure report stay in the host's log, off the console.
    console = result.stdout + result.stderr
    assert "ChildFailedError" not in console and "Root Cause" not in console
    assert "Root Cause (first observed failure)" in (project / "runs" / "fails" / "local.log").read_text()
    summary = json.loads((project / "runs" / "fails" / "summary.json").read_text())
    assert summary["failure"]["rank"] == 1
    assert summary["exit_code"] == result.returncode
    assert wait_until_gone("fails", timeout=2) == []


def test_max_restarts_lets_torchrun_restart_a_failed_worker_group(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    marker = tmp_path / "failed-once"
    # Every rank fails once before the process group forms. (torch's restart after a gloo
    # failure mid-training, or after a peer had joined gloo's store, can hang or fail on CPU,
    # with or without ccpt.)
    args = ["--max-steps", "3", "--fail-rank", "-2", "--fail-step", "0", "--fail-once", str(marker)]
    without = run_ccpt("train", "--nproc-per-node", "2", "--", *args, cwd=project, timeout=300)
    assert without.returncode != 0 and "fails on purpose at step 0" in without.stdout + without.stderr
    for rank in (0, 1):
        Path(f"{marker}.{rank}").unlink()
    result = run_ccpt(
        "train", "--nproc-per-node", "2", "--max-restarts", "1", "--", *args, cwd=project, timeout=300
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert Path(f"{marker}.0").exists() and Path(f"{marker}.1").exists()
    assert "step 3 loss" in result.stdout


def test_ctrl_c_ends_every_process_of_the_job(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    proc = launch(project, "ctrl-c", "--max-steps", "100000", "--sleep", "0.1")
    read_until(proc, "step 2 loss")
    assert len(job_processes("ctrl-c")) >= 3  # wrapper, torchrun, two workers (at least)
    code, rest, _ = interrupt(proc)
    stopped = time.monotonic()
    assert code == 130, rest
    assert "interrupted: job ctrl-c stopped on every node" in rest
    assert wait_until_gone("ctrl-c") == []
    assert time.monotonic() - stopped < TEARDOWN_BOUND_S


def test_dry_run_prints_the_exact_local_command_and_starts_nothing(tmp_path: Path) -> None:
    project = make_project(tmp_path / "p")
    result = run_ccpt(
        "train",
        "--dry-run",
        "--json",
        "--nproc-per-node",
        "2",
        "--job-id",
        "dry",
        "--",
        "--lr",
        "0.1",
        cwd=project,
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    (node,) = plan["nodes"]
    assert node["argv"][0] == sys.executable
    assert node["command"][-3:] == ["tiny_ddp.py", "--lr", "0.1"]
    assert node["env"]["OMP_NUM_THREADS"] == "1"  # from .ccpt_env
    assert not (project / "runs").exists()
    human = run_ccpt("train", "--dry-run", "--job-id", "dry", cwd=project)
    assert "torch.distributed.run --nnodes 1 --nproc-per-node 1" in human.stdout
