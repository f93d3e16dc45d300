"""`ccpt train` over SSH: a real sshd on loopback answering for node0, node1 ... (127.0.0.2 ...)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_ccpt
from tests.sshd import LoopbackSshd, sshd  # noqa: F401 - the fixture
from tests.train_support import (
    TEARDOWN_BOUND_S,
    interrupt,
    job_processes,
    make_project,
    read_until,
    ssh_masters,
    start_ccpt,
    wait_until_gone,
)

HOSTILE = [
    "; touch {pwned}/semicolon #",
    "$(touch {pwned}/dollar)",
    "`touch {pwned}/backtick`",
    "it's a 'quote'",
    'say "hi" && touch {pwned}/and',
    "a  b\tc",
    "*",
    "--looks=like-an-option",
    "",
]


def ssh_args(server: LoopbackSshd, *hosts: str) -> list[str]:
    return ["--hosts", ",".join(hosts or server.hosts), "--ssh-config", str(server.client_config)]


@pytest.mark.slow
def test_two_hosts_train_a_tiny_model_and_leave_nothing_running(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj")
    args = ["train", *ssh_args(sshd), "--nproc-per-node", "1", "--job-id", "two-hosts"]
    result = run_ccpt(*args, "--", "--max-steps", "3", cwd=project, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    # One merged stream: every rank's lines, prefixed with the host and the rank.
    for host in ("node0", "node1"):
        assert any(line.startswith(f"{host}:") and "step 3 loss" in line for line in lines), result.stdout
    assert "pre-flight" in result.stderr and "29" in result.stderr  # the table, with the port checked
    job_dir = project / "runs" / "two-hosts"
    assert "step 3 loss" in (job_dir / "node0.log").read_text()
    assert "step 3 loss" in (job_dir / "node1.log").read_text()
    plan = json.loads((job_dir / "plan.json").read_text())
    assert [node["address"] for node in plan["nodes"]] == ["127.0.0.2", "127.0.0.3"]
    assert plan["rdzv_endpoint"].startswith("127.0.0.2:")
    assert job_processes("two-hosts") == []
    assert ssh_masters(sshd.client_config) == []


@pytest.mark.slow
def test_a_failing_rank_on_one_host_ends_the_job_on_every_host(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj")
    script = ["--max-steps", "1000", "--sleep", "1", "--fail-rank", "1", "--fail-step", "3"]
    args = ["train", *ssh_args(sshd), "--nproc-per-node", "1", "--job-id", "one-fails", "--", *script]
    result = run_ccpt(*args, cwd=project, timeout=300)
    assert result.returncode == 1, result.stdout + result.stderr
    summary = json.loads((project / "runs" / "one-fails" / "summary.json").read_text())
    failure = summary["failure"]
    assert failure["rank"] == 1
    assert f"failed: {failure['host']}:1 rank 1 exited with code 3" in result.stderr
    assert "rank 1 fails on purpose at step 3" in result.stderr
    others = [node for node in summary["nodes"] if node["label"] != failure["host"]]
    assert [node["stopped_by_launcher"] for node in others] == [True]
    assert summary["teardown_s"] < TEARDOWN_BOUND_S
    assert wait_until_gone("one-fails", timeout=1) == []


@pytest.mark.slow
def test_killing_one_nodes_torchrun_ends_the_job_and_names_that_node(
    tmp_path: Path,
    sshd: LoopbackSshd,  # noqa: F811
) -> None:
    project = make_project(tmp_path / "proj")
    args = ["train", *ssh_args(sshd), "--nproc-per-node", "1", "--job-id", "kill-one"]
    proc = start_ccpt([*args, "--", "--max-steps", "100000", "--sleep", "0.2"], project)
    read_until(proc, "node1:")
    read_until(proc, "step 2 loss")
    agent = next(
        int(line.split()[0])
        for line in job_processes("kill-one")
        if "torch.distributed.run" in line and "--rdzv-conf is_host=0" in line
    )
    os.kill(agent, signal.SIGKILL)
    killed_at = time.monotonic()
    output, _ = proc.communicate(timeout=60)
    assert proc.returncode != 0
    assert "failed: node1 torchrun killed by SIGKILL" in output
    assert wait_until_gone("kill-one") == []
    assert time.monotonic() - killed_at < TEARDOWN_BOUND_S


@pytest.mark.slow
def test_ctrl_c_ends_the_job_on_every_host(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj")
    args = ["train", *ssh_args(sshd), "--nproc-per-node", "1", "--job-id", "ssh-ctrl-c"]
    proc = start_ccpt([*args, "--", "--max-steps", "100000", "--sleep", "0.2"], project)
    read_until(proc, "step 2 loss")
    assert len(job_processes("ssh-ctrl-c")) >= 4
    assert ssh_masters(sshd.client_config)  # what the check after Ctrl-C looks for, there while the job runs
    code, rest, _ = interrupt(proc)
    stopped = time.monotonic()
    assert code == 130, rest
    assert "interrupted: job ssh-ctrl-c stopped on every node" in rest
    assert wait_until_gone("ssh-ctrl-c") == []
    assert time.monotonic() - stopped < TEARDOWN_BOUND_S
    assert ssh_masters(sshd.client_config) == []


def test_hostile_arguments_reach_the_script_verbatim_and_run_nothing(
    tmp_path: Path,
    sshd: LoopbackSshd,  # noqa: F811
) -> None:
    pwned = tmp_path / "pwned"
    pwned.mkdir()
    project = make_project(tmp_path / "it's a (project) dir", entry="echo_args.py")
    hostile = [text.format(pwned=pwned) for text in HOSTILE]
    env_value = f"$(touch {pwned}/env) `touch {pwned}/env2`"
    args = ["train", *ssh_args(sshd), "--no-torchrun", "--job-id", "quoting", "--env", f"HOSTILE={env_value}"]
    result = run_ccpt(*args, "--", *hostile, cwd=project)
    assert result.returncode == 0, result.stderr
    reports = [json.loads(line.split(" | ", 1)[1]) for line in result.stdout.splitlines() if " | {" in line]
    assert sorted(report["node"] for report in reports) == ["0", "1"]
    for report in reports:
        assert report["argv"] == hostile
        assert report["hostile"] == env_value
        assert report["job"] == "quoting"
        assert report["cwd"] == str(project)
    assert list(pwned.iterdir()) == []


def test_host_keys_are_checked_and_a_wrong_key_stops_the_launch(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj", entry="echo_args.py")
    impostor = tmp_path / "impostor"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(impostor)], check=True)
    wrong = " ".join(Path(f"{impostor}.pub").read_text().split()[:2])
    # node1's entry now holds another key, as after a man-in-the-middle or a reinstalled host.
    lines = sshd.known_hosts.read_text().splitlines()
    node1 = f"[127.0.0.3]:{sshd.port}"
    sshd.known_hosts.write_text(
        "".join(f"{node1} {wrong}\n" if line.startswith(node1) else f"{line}\n" for line in lines)
    )
    result = run_ccpt("train", *ssh_args(sshd), "--no-torchrun", cwd=project)
    assert result.returncode == 1
    assert "pre-flight failed: node1: ssh failed:" in result.stderr
    assert "Host key verification failed" in result.stderr
    assert not list((project / "runs").glob("*/plan.json"))  # nothing was launched


def test_an_unreachable_host_fails_pre_flight_with_one_clear_line(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj", entry="echo_args.py")
    config = sshd.client_config.read_text()
    sshd.client_config.write_text(f"Host dead\n  HostName 127.0.0.9\n  Port 1\n{config}")
    result = run_ccpt(
        "train", *ssh_args(sshd, "node0", "dead"), "--no-torchrun", "--connect-timeout", "3", cwd=project
    )
    assert result.returncode == 1
    error = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(error) == 1 and "pre-flight failed: dead: ssh failed:" in error[0]
    assert "Connection refused" in error[0]
    assert "Traceback" not in result.stderr
    # Above it, the table of what each host offers, and the problem on a line of its own.
    lines = result.stderr.splitlines()
    assert any(line.startswith("✗ dead: ssh failed:") for line in lines), result.stderr
    assert any("node0" in line and "OK" in line for line in lines) and "problems" not in result.stderr


def test_dry_run_shows_every_hosts_ssh_command_and_starts_nothing(tmp_path: Path, sshd: LoopbackSshd) -> None:  # noqa: F811
    project = make_project(tmp_path / "proj")
    args = ["train", *ssh_args(sshd), "--job-id", "dry", "--rdzv-port", "29999", "--dry-run"]
    result = run_ccpt(*args, "--json", "--", "--epochs", "1", cwd=project)
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)
    assert plan["rdzv_endpoint"] == "127.0.0.2:29999"
    for node, host, address in zip(
        plan["nodes"], ("node0", "node1"), ("127.0.0.2", "127.0.0.3"), strict=True
    ):
        assert node["argv"][0] == "ssh" and node["argv"][-2] == host
        assert node["command"][node["command"].index("--local-addr") + 1] == address
        assert f"--node {node['node_rank']}" in node["remote_command"]
        assert node["command"][-3:] == ["tiny_ddp.py", "--epochs", "1"]
    human = run_ccpt(*args, cwd=project)
    assert human.stdout.count("# remote command:") == 2
    assert not (project / "runs").exists()
    assert job_processes("dry") == []


def test_sync_copies_the_project_minus_ignored_files_to_a_host_that_lacks_it(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", entry="echo_args.py")
    (project / ".gitignore").write_text("secret.bin\ndata/\n")
    (project / "secret.bin").write_text("not for the cluster")
    (project / "data").mkdir()
    (project / "data" / "big.txt").write_text("x")
    with LoopbackSshd(nodes=1, private_dir=tmp_path) as server:
        assert server.ssh("node0", "test", "-d", str(project)).returncode == 1  # another "machine"
        without = run_ccpt("train", *ssh_args(server), "--no-torchrun", cwd=project)
        assert without.returncode == 1
        assert "working directory missing (pass --sync" in without.stderr
        synced = run_ccpt(
            "train", *ssh_args(server), "--no-torchrun", "--sync", "--job-id", "synced", cwd=project
        )
        assert synced.returncode == 0, synced.stderr
        assert '"node": "0"' in synced.stdout
        remote = server.ssh("node0", "ls", "-A", str(project)).stdout.split()
    assert "echo_args.py" in remote and ".ccpt_env" in remote
    assert "secret.bin" not in remote and "data" not in remote and "runs" not in remote


def test_dropped_handshakes_are_retried_so_no_connection_fails(tmp_path: Path) -> None:
    project = make_project(tmp_path / "proj", entry="echo_args.py")
    # sshd drops every unauthenticated connection beyond the first: the fan-out must retry.
    with LoopbackSshd(nodes=4, max_startups="1:100:1") as server:
        args = ["train", *ssh_args(server), "--no-torchrun", "--fanout", "4", "--job-id", "retry"]
        result = run_ccpt(*args, cwd=project)
    assert result.returncode == 0, result.stderr
    assert sorted(json.loads(line.split(" | ", 1)[1])["node"] for line in result.stdout.splitlines()) == [
        "0",
        "1",
        "2",
        "3",
    ]
    retries = json.loads((project / "runs" / "retry" / "ssh.json").read_text())["handshake_retries"]
    assert retries > 0
