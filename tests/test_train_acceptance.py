"""Acceptance: a project from `ccpt new` trains on two loopback hosts over a real sshd."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import run_ccpt
from tests.sshd import LoopbackSshd, sshd  # noqa: F401 - the fixture
from tests.train_support import job_processes, ssh_masters

pytestmark = pytest.mark.slow


def test_a_generated_project_trains_on_two_hosts_and_leaves_nothing_running(
    tmp_path: Path,
    sshd: LoopbackSshd,  # noqa: F811
) -> None:
    made = run_ccpt("new", "demo", "--defaults", "--no-git", cwd=tmp_path, timeout=300)
    assert made.returncode == 0, made.stderr
    project = tmp_path / "demo"
    (project / ".ccpt_env").write_text("OMP_NUM_THREADS=1\n")  # two cores on this machine
    args = ["--hosts", "node0,node1", "--ssh-config", str(sshd.client_config), "--nproc-per-node", "1"]
    result = run_ccpt(
        "train", *args, "--job-id", "accept", "--", "--max-steps", "20", cwd=project, timeout=600
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "✓ job accept finished" in result.stderr
    # One world of two processes, one a host; rank 0 (the runner prints on rank 0 only) reports it.
    node0 = [line for line in result.stdout.splitlines() if line.startswith("node0:0 | ")]
    assert any("on 2 x cpu" in line for line in node0)
    assert any("20/20" in line for line in node0)
    assert any("world_size" in line and line.rstrip(" │").endswith("2") for line in node0)
    summary = json.loads((project / "runs" / "accept" / "summary.json").read_text())
    assert [node["exit_code"] for node in summary["nodes"]] == [0, 0]
    assert job_processes("accept") == []
    assert ssh_masters(sshd.client_config) == []
