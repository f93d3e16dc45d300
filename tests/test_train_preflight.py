"""Pre-flight: the probe run for real, and the judgement of every host's findings."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

from ccpt.launch.node_wrapper import PROBE_PREFIX
from ccpt.launch.plan import boot_payload, wrapper_argv
from ccpt.launch.preflight import Probe, describe_failure, evaluate, resolved_slots


def run_probe(workdir: str, port: int | None) -> Probe:
    """Start the node wrapper exactly as a node does, read its probe line, then call it off."""
    argv = wrapper_argv(sys.executable, "probe-test", 0, workdir, 5.0, port)
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdin is not None and proc.stdout is not None
    proc.stdin.write(boot_payload())
    proc.stdin.flush()
    line = proc.stdout.readline().decode()
    proc.stdin.close()  # no go line: the wrapper must exit without starting anything
    assert proc.wait(timeout=30) == 0
    assert line.startswith(PROBE_PREFIX)
    return Probe.from_json("here", json.loads(line[len(PROBE_PREFIX) :]))


def test_the_probe_reports_this_python_torch_and_working_directory(tmp_path: Path) -> None:
    import torch

    probe = run_probe(str(tmp_path), None)
    assert probe.error is None
    assert probe.python == ".".join(map(str, sys.version_info[:3]))
    assert probe.executable == sys.executable
    assert probe.torch == torch.__version__
    assert probe.cuda == torch.version.cuda
    assert probe.cwd_exists is True
    assert probe.port_free is None


def test_the_probe_sees_a_missing_directory_and_a_taken_port(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("", 0))
        busy.listen()
        probe = run_probe(str(tmp_path / "absent"), busy.getsockname()[1])
    assert probe.cwd_exists is False
    assert probe.port_free is False


def test_a_failed_session_keeps_what_ssh_said() -> None:
    refused = describe_failure(255, "ssh: connect to host 10.0.0.9 port 22: Connection refused\n")
    assert refused == "ssh failed: ssh: connect to host 10.0.0.9 port 22: Connection refused"
    missing = describe_failure(127, "bash: /opt/py/bin/python: No such file or directory\n")
    assert missing.startswith("command not found: ")


def good(host: str, **changes: object) -> Probe:
    values: dict[str, object] = dict(
        host=host,
        python="3.11.7",
        executable="/v/bin/python",
        torch="2.13.0",
        cuda="12.8",
        gpus=8,
        cwd_exists=True,
    )
    values.update(changes)
    return Probe(**values)  # type: ignore[arg-type]


def test_matching_hosts_pass_and_the_first_one_checks_the_port() -> None:
    report = evaluate(
        [good("a", port_free=True), good("b")], {"a": None, "b": 8}, needs_torch=True, sync=False, port=29400
    )
    assert report.ok
    assert [f.port for f in report.findings] == ["29400 free", "-"]
    assert [f.slots for f in report.findings] == ["auto (8)", "8"]


def test_every_mismatch_is_named_with_its_host() -> None:
    probes = [
        good("a", port_free=False),
        good("b", torch="2.12.1"),
        good("c", python="3.10.14", cwd_exists=False),
        good("d", gpus=4),
        good("e", cuda=None, gpus=0),
        Probe("f", error="ssh failed: Permission denied (publickey)."),
    ]
    slots = {"a": None, "b": None, "c": None, "d": 8, "e": None, "f": None}
    report = evaluate(probes, slots, needs_torch=True, sync=False, port=29400)
    assert not report.ok
    assert report.problems == [
        "a: rendezvous port 29400 is in use (pass --rdzv-port)",
        "b: torch 2.12.1 differs from a's 2.13.0",
        "c: python 3.10.14 differs from a's 3.11.7",
        "c: working directory missing (pass --sync, or use a shared filesystem)",
        "d: 8 processes asked for but only 4 GPUs",
        "e: CUDA none differs from a's 12.8",
        "f: ssh failed: Permission denied (publickey).",
    ]


def test_sync_replaces_the_directory_check_but_needs_rsync() -> None:
    probes = [
        good("a", port_free=True, cwd_exists=False, rsync=True),
        good("b", cwd_exists=False, rsync=False),
    ]
    report = evaluate(probes, {"a": None, "b": None}, needs_torch=True, sync=True, port=29400)
    assert report.problems == ["b: rsync is not installed (needed by --sync)"]
    assert report.findings[0].workdir == "synced"


def test_torch_is_only_required_under_torchrun() -> None:
    probes = [good("a", torch=None, cuda=None, port_free=True)]
    assert not evaluate(probes, {"a": None}, needs_torch=True, sync=False, port=29400).ok
    assert evaluate(probes, {"a": None}, needs_torch=False, sync=False, port=29400).ok


def test_auto_slots_become_one_per_gpu_or_one_on_cpu() -> None:
    probes = [good("a", gpus=8), good("b", gpus=0)]
    assert resolved_slots(probes, {"a": None, "b": None}) == {"a": 8, "b": 1}
    assert resolved_slots(probes, {"a": 2, "b": 3}) == {"a": 2, "b": 3}
