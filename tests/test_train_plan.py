"""The launch plan is a value: exact argv per node, compared here without starting anything."""

from __future__ import annotations

import json
import shlex

import pytest

from ccpt.errors import CcptError
from ccpt.launch.plan import (
    BOOTSTRAP,
    JobSpec,
    NodeTarget,
    SshOptions,
    boot_payload,
    build_plan,
    check_job_id,
    collect_env,
    entry_argv,
    masked_env,
    new_job_id,
    parse_env_file,
    rdzv_port_for,
    wrapper_argv,
)

PY = "/opt/venv/bin/python"
HOSTILE = [
    "; touch /tmp/ccpt-pwned #",
    "$(touch /tmp/ccpt-pwned)",
    "`touch /tmp/ccpt-pwned`",
    "a b\tc",
    "it's",
    '"double"',
    "--flag=x && rm -rf ~",
    "*",
    "~",
    "\\",
    "line\nbreak",
    "",
]


def spec(**changes: object) -> JobSpec:
    base = JobSpec(
        job_id="20261128-101500-ab12",
        python=PY,
        workdir="/srv/project",
        entry=["src/runner.py", "train"],
        script_args=["--max-steps", "20"],
        env={"PYTHONUNBUFFERED": "1"},
    )
    return JobSpec(**{**base.__dict__, **changes})  # type: ignore[arg-type]


def ssh_options() -> SshOptions:
    return SshOptions(control_dir="/tmp/ccpt-ssh-x", config_file="/home/me/.ssh/cluster", connect_timeout=7)


def two_node_plan(job: JobSpec | None = None):  # type: ignore[no-untyped-def]
    targets = [NodeTarget("node0", "10.0.0.1", 8), NodeTarget("node1", "10.0.0.2", 4)]
    return build_plan(job or spec(), targets, 29511, ssh_options())


def flag(argv: list[str], name: str) -> str:
    return argv[argv.index(name) + 1]


def test_one_torchrun_per_host_with_c10d_on_the_first_host() -> None:
    plan = two_node_plan()
    assert plan.rdzv_endpoint == "10.0.0.1:29511"
    assert plan.world_size == 12
    for rank, node in enumerate(plan.nodes):
        command = node.command
        assert command[:3] == [PY, "-m", "torch.distributed.run"]
        assert flag(command, "--nnodes") == "2"
        assert flag(command, "--rdzv-backend") == "c10d"
        assert flag(command, "--rdzv-endpoint") == "10.0.0.1:29511"
        assert flag(command, "--rdzv-id") == "20261128-101500-ab12"
        assert flag(command, "--rdzv-conf") == f"is_host={1 if rank == 0 else 0}"
        assert command[-4:] == ["src/runner.py", "train", "--max-steps", "20"]
    assert [flag(n.command, "--local-addr") for n in plan.nodes] == ["10.0.0.1", "10.0.0.2"]
    assert [flag(n.command, "--nproc-per-node") for n in plan.nodes] == ["8", "4"]


def test_each_node_runs_in_the_wrapper_tagged_with_the_job_and_its_rank() -> None:
    plan = two_node_plan()
    for rank, node in enumerate(plan.nodes):
        wrapper = shlex.split(node.remote_command or "")
        assert wrapper[:3] == [PY, "-c", BOOTSTRAP]
        assert flag(wrapper, "--job") == "20261128-101500-ab12"
        assert flag(wrapper, "--node") == str(rank)
        assert flag(wrapper, "--cwd") == "/srv/project"
        # The command itself is not on the command line: it follows pre-flight, as JSON on stdin.
        assert "torch.distributed.run" not in wrapper
        go = {"command": node.command, "env": node.env, "thread_split": node.nproc}
        assert json.loads(node.go_line()) == go


def test_only_the_first_node_checks_the_rendezvous_port_when_asked() -> None:
    targets = [NodeTarget("node0", "10.0.0.1", 1), NodeTarget("node1", "10.0.0.2", 1)]
    plan = build_plan(spec(), targets, 29511, ssh_options(), check_port=True)
    assert flag(shlex.split(plan.nodes[0].remote_command or ""), "--port") == "29511"
    assert "--port" not in shlex.split(plan.nodes[1].remote_command or "")
    assert "--port" not in shlex.split(two_node_plan().nodes[0].remote_command or "")


def test_ssh_is_the_system_client_in_batch_mode_with_one_master_per_host() -> None:
    node = two_node_plan().nodes[1]
    argv = node.argv
    assert argv[0] == "ssh"
    assert flag(argv, "-F") == "/home/me/.ssh/cluster"
    options = [argv[i + 1] for i, word in enumerate(argv) if word == "-o"]
    assert "BatchMode=yes" in options
    assert "ConnectTimeout=7" in options
    assert "ControlMaster=auto" in options
    assert "ControlPath=/tmp/ccpt-ssh-x/%C" in options
    # The host comes after `--`, so a name can never be read as an ssh option.
    assert argv[-3:-1] == ["--", "node1"]
    assert argv[-1] == node.remote_command


def test_host_keys_are_never_blanket_ignored() -> None:
    options = ssh_options()
    every_argv = [
        *(n.argv for n in two_node_plan().nodes),
        options.close_master("node0"),
        options.rsync("node0", "/srv/project"),
        options.resolve("node0"),
    ]
    text = " ".join(" ".join(argv) for argv in every_argv)
    assert "StrictHostKeyChecking" not in text
    assert "UserKnownHostsFile" not in text


@pytest.mark.parametrize("hostile", HOSTILE)
def test_hostile_arguments_survive_the_remote_shell_unchanged(hostile: str) -> None:
    job = spec(
        script_args=["--name", hostile],
        entry=[f"src/{hostile or 'x'}.py"],
        workdir=f"/srv/{hostile or 'p'}",
        job_id="job-1",
    )
    for node in two_node_plan(job).nodes:
        # The one string ssh hands the remote shell parses back into exactly the argv we meant...
        expected = wrapper_argv(PY, job.job_id, node.node_rank, job.workdir, job.grace)
        assert shlex.split(node.argv[-1]) == expected
        assert node.argv[-1] == node.remote_command
        # ...and the command, sent as JSON, reaches the node's exec untouched by any shell.
        command = json.loads(node.go_line())["command"]
        assert command[-2:] == ["--name", hostile]
        assert f"src/{hostile or 'x'}.py" in command


def test_ipv6_rendezvous_endpoint_is_bracketed() -> None:
    plan = build_plan(
        spec(), [NodeTarget("a", "fd00::1", 1), NodeTarget("b", "fd00::2", 1)], 29400, ssh_options()
    )
    assert plan.rdzv_endpoint == "[fd00::1]:29400"


def test_a_local_plan_has_no_ssh_and_uses_loopback() -> None:
    plan = build_plan(spec(), [NodeTarget(None, "127.0.0.1", 2)], 40000)
    (node,) = plan.nodes
    assert node.label == "local"
    assert node.remote_command is None
    assert node.argv[:3] == [PY, "-c", BOOTSTRAP]
    assert flag(node.command, "--rdzv-endpoint") == "127.0.0.1:40000"
    assert node.env["TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"] == "[rank${rank}]:"


def test_no_torchrun_runs_the_entry_once_per_node_with_rendezvous_facts() -> None:
    plan = two_node_plan(spec(torchrun=False))
    assert plan.world_size == 2
    for node in plan.nodes:
        assert node.command == [PY, "src/runner.py", "train", "--max-steps", "20"]
        assert node.env["MASTER_ADDR"] == "10.0.0.1"
        assert node.env["MASTER_PORT"] == "29511"
        assert node.env["CCPT_NUM_NODES"] == "2"
        assert json.loads(node.go_line())["thread_split"] == 0  # its threads are the script's business


def test_module_entries_become_torchrun_module_launches() -> None:
    assert entry_argv("-m pkg.train --fast") == ["-m", "pkg.train", "--fast"]
    plan = build_plan(spec(entry=["-m", "pkg.train"]), [NodeTarget(None, "127.0.0.1", 1)], 1)
    assert plan.nodes[0].command[-4:] == ["-m", "pkg.train", "--max-steps", "20"]
    with pytest.raises(CcptError, match="empty training entry"):
        entry_argv("  ")


def test_environment_precedence_and_propagated_prefixes() -> None:
    caller = {
        "NCCL_DEBUG": "INFO",
        "HF_HOME": "/data/hf",
        "PYTHONPATH": "/x",
        "WANDB_PROJECT": "p",
        "HOME": "/root",
        "AWS_SECRET_ACCESS_KEY": "never-sent",
    }
    env = collect_env(
        caller, {"HF_HOME": "/shared/hf", "OMP_NUM_THREADS": "4"}, ["OMP_NUM_THREADS=1"], remote=True
    )
    assert env == {
        "PYTHONUNBUFFERED": "1",
        "NCCL_DEBUG": "INFO",
        "HF_HOME": "/shared/hf",
        "PYTHONPATH": "/x",
        "WANDB_PROJECT": "p",
        "OMP_NUM_THREADS": "1",
    }
    # Locally the whole environment is inherited anyway; only the file and flags are added.
    assert collect_env(caller, {}, [], remote=False) == {"PYTHONUNBUFFERED": "1"}


def test_env_file_format_and_its_errors() -> None:
    text = (
        "# shared settings\nexport NCCL_DEBUG=WARN\nHF_TOKEN='hf_abcdefgh1234'\n\nEMPTY=\nSPACED = \"a b\"\n"
    )
    assert parse_env_file(text) == {
        "NCCL_DEBUG": "WARN",
        "HF_TOKEN": "hf_abcdefgh1234",
        "EMPTY": "",
        "SPACED": "a b",
    }
    with pytest.raises(CcptError, match=r"\.ccpt_env:2: expected NAME=VALUE"):
        parse_env_file("A=1\nnot an assignment\n")
    with pytest.raises(CcptError, match="--env: expected NAME=VALUE"):
        collect_env({}, {}, ["1BAD=x"], remote=True)


def test_secrets_are_masked_wherever_the_plan_is_shown() -> None:
    env = {"HF_TOKEN": "hf_abcdefgh1234", "WANDB_API_KEY": "0123456789abcdef", "NCCL_DEBUG": "INFO"}
    assert masked_env(env) == {"HF_TOKEN": "****1234", "WANDB_API_KEY": "****cdef", "NCCL_DEBUG": "INFO"}
    plan = two_node_plan(spec(env=env))
    shown = str(plan.to_dict())
    assert "hf_abcdefgh1234" not in shown and "0123456789abcdef" not in shown
    # ...and secrets never ride on a command line: they go on the wrapper's stdin.
    assert all("hf_abcdefgh1234" not in " ".join(node.argv) for node in plan.nodes)


def test_the_node_wrapper_travels_as_ascii_with_a_length_header() -> None:
    payload = boot_payload()
    assert payload.isascii()
    header, _, rest = payload.partition(b"\n")
    assert len(rest) == int(header)
    assert rest.startswith(b'"""ccpt\'s node wrapper')


def test_job_ids_and_rendezvous_ports() -> None:
    job = new_job_id()
    assert check_job_id(job) == job
    assert 29400 <= rdzv_port_for(job) < 29900
    assert rdzv_port_for("a") == rdzv_port_for("a")
    for bad in ("", "-x", "a b", "../up", "x" * 65):
        with pytest.raises(CcptError, match="bad job id"):
            check_job_id(bad)
