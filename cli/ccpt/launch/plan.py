"""The launch plan: hosts, ranks, rendezvous and environment turned into an argv per node.

Everything here is pure: a `LaunchPlan` is a value that tests compare and `--dry-run` prints,
and nothing is started. Only `local.py` and `ssh.py` run what a plan says.

How one node runs: ssh (or, locally, nothing) starts `PYTHON -c BOOTSTRAP --job ... --cwd ...`,
one session per node for the whole job. The bootstrap reads ccpt's node wrapper from stdin; the
wrapper prints its pre-flight probe and waits for the "go" line, JSON holding the node's command
(torchrun, normally) and environment, which it then runs in a session of its own tagged with
the job id. The session's command line is built from an argv list with `shlex.join`, never
pasted together; the command itself travels as JSON, so no shell ever parses it.
"""

from __future__ import annotations

import json
import re
import secrets
import shlex
import time
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ccpt.config import mask_secret
from ccpt.errors import CcptError

BOOTSTRAP = "import sys;exec(sys.stdin.read(int(sys.stdin.readline())))"
# Caller variables that travel to remote nodes (a local run inherits the whole environment).
PROPAGATED_PREFIXES = ("NCCL_", "HF_", "PYTHON", "WANDB_")
ENV_FILE = ".ccpt_env"
# torchrun prefixes each tee'd worker line with this; the launcher reads the rank back from it.
RANK_PREFIX_TEMPLATE = "[rank${rank}]:"
RDZV_PORT_BASE, RDZV_PORT_SPAN = 29400, 500
NODE_STATE_ROOT = "/tmp"
SSH_CONTROL_PERSIST_S = 60
SSH_FAILED = 255  # ssh's own exit status when the connection fails (the remote command's otherwise)
_SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "CREDENTIAL")
_ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_JOB_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


def new_job_id() -> str:
    """Sortable and unique enough across concurrent launches: time plus 16 random bits."""
    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(2)


def check_job_id(job_id: str) -> str:
    if not _JOB_ID_RE.match(job_id):
        raise CcptError(
            f"bad job id {job_id!r}",
            hint="1-64 letters, digits, '.', '_' or '-', starting with a letter or digit",
            exit_code=2,
        )
    return job_id


def rdzv_port_for(job_id: str) -> int:
    """A rendezvous port derived from the job id, so concurrent jobs rarely pick the same one.

    Pre-flight checks it is free on the first host; `--rdzv-port` picks another.
    """
    return RDZV_PORT_BASE + zlib.crc32(job_id.encode()) % RDZV_PORT_SPAN


# ---------------------------------------------------------------- environment


def parse_env_assignment(text: str, where: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    name = name.strip()
    if not sep or not _ENV_NAME_RE.match(name):
        raise CcptError(f"{where}: expected NAME=VALUE, got {text!r}", exit_code=2)
    return name, value


def parse_env_file(text: str, source: str = ENV_FILE) -> dict[str, str]:
    """`.ccpt_env`: NAME=VALUE lines (optionally `export NAME=VALUE`), # comments, blank lines.

    A value may be wrapped in single or double quotes, which are removed; nothing is expanded.
    """
    env: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        name, value = parse_env_assignment(line, f"{source}:{number}")
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        env[name] = value
    return env


def collect_env(
    caller_env: Mapping[str, str],
    env_file: Mapping[str, str],
    overrides: Sequence[str],
    remote: bool,
) -> dict[str, str]:
    """The variables a job's nodes get on top of their own environment.

    Lowest to highest: (remote only) the caller's NCCL_*, HF_*, PYTHON*, WANDB_* variables, then
    `.ccpt_env`, then `--env NAME=VALUE`. Output is unbuffered unless the user says otherwise, so
    log lines arrive as they are printed.
    """
    env: dict[str, str] = {"PYTHONUNBUFFERED": "1"}
    if remote:
        env.update({k: v for k, v in caller_env.items() if k.startswith(PROPAGATED_PREFIXES)})
    env.update(env_file)
    for text in overrides:
        name, value = parse_env_assignment(text, "--env")
        env[name] = value
    return env


def is_secret_name(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in _SECRET_WORDS)


def masked_env(env: Mapping[str, str]) -> dict[str, str]:
    """The environment as it may be shown or saved: secret-looking values keep 4 characters."""
    return {k: mask_secret(v) if is_secret_name(k) else v for k, v in env.items()}


# ---------------------------------------------------------------- ssh and rsync argv


@dataclass(frozen=True)
class SshOptions:
    """How the system OpenSSH client is called: the user's config, batch mode, one master per host."""

    control_dir: str
    config_file: str | None = None
    connect_timeout: int = 10

    def base_argv(self, control_master: str = "auto") -> list[str]:
        argv = ["ssh"]
        if self.config_file:
            argv += ["-F", self.config_file]
        for option in (
            "BatchMode=yes",
            f"ConnectTimeout={self.connect_timeout}",
            f"ControlMaster={control_master}",
            f"ControlPath={self.control_dir}/%C",
            f"ControlPersist={SSH_CONTROL_PERSIST_S}",
            "ServerAliveInterval=15",
            "ServerAliveCountMax=4",
        ):
            argv += ["-o", option]
        return argv

    def command(self, host: str, remote_argv: Sequence[str]) -> list[str]:
        """ssh argv running `remote_argv` on `host`; `--` keeps the host from reading as an option."""
        return [*self.base_argv(), "-T", "--", host, shlex.join(remote_argv)]

    def close_master(self, host: str) -> list[str]:
        return [*self.base_argv("no"), "-O", "exit", "--", host]

    def resolve(self, host: str) -> list[str]:
        """`ssh -G`: the configuration ssh would use for `host` (no connection is made)."""
        argv = ["ssh", "-G"]
        if self.config_file:
            argv += ["-F", self.config_file]
        return [*argv, "--", host]

    def rsync(self, host: str, workdir: str, excludes: Sequence[str] = ()) -> list[str]:
        """rsync the project to the same path on `host`, skipping what .gitignore files exclude."""
        argv = ["rsync", "-a", "-s", "--filter=:- .gitignore", "--exclude=/.git/"]
        argv += [f"--exclude=/{pattern.strip('/')}/" for pattern in excludes]
        transport = shlex.join(self.base_argv())
        return [*argv, "-e", transport, f"{workdir.rstrip('/')}/", f"{host}:{workdir.rstrip('/')}/"]


# ---------------------------------------------------------------- node commands


def _script_source(name: str) -> str:
    return Path(__file__).with_name(name).read_text(encoding="ascii")


def boot_payload(module_file: str = "node_wrapper.py") -> bytes:
    """What a node's stdin gets first: the length line and source that BOOTSTRAP executes."""
    source = _script_source(module_file)
    return f"{len(source)}\n{source}".encode("ascii")


def node_state_dir(job_id: str, node_rank: int) -> str:
    return f"{NODE_STATE_ROOT}/ccpt-{job_id}-node{node_rank}"


def wrapper_argv(
    python: str, job_id: str, node_rank: int, workdir: str, grace: float, port: int | None = None
) -> list[str]:
    """The node wrapper's command line; `port` asks its probe to check the rendezvous port."""
    argv = [python, "-c", BOOTSTRAP, "--job", job_id, "--node", str(node_rank)]
    argv += ["--state-dir", node_state_dir(job_id, node_rank), "--cwd", workdir, "--grace", f"{grace:g}"]
    return [*argv, "--port", str(port)] if port else argv


def kill_argv(python: str, job_id: str, node_rank: int, grace: float) -> list[str]:
    """The wrapper in kill mode: ends node `node_rank`'s tree through its pidfile."""
    state = node_state_dir(job_id, node_rank)
    head = [python, "-c", BOOTSTRAP, "--kill", "--job", job_id, "--node", str(node_rank)]
    return [*head, "--state-dir", state, "--grace", f"{grace:g}"]


def entry_argv(entry: str) -> list[str]:
    """The training entry from settings (`src/runner.py train`, or `-m pkg.train ...`) as argv."""
    try:
        argv = shlex.split(entry)
    except ValueError as exc:
        raise CcptError(f"cannot read the training entry {entry!r}: {exc}", exit_code=2) from exc
    if not argv or (argv[0] == "-m" and len(argv) < 2):
        raise CcptError(
            f"empty training entry {entry!r}", hint="set train_entry, e.g. 'src/runner.py train'", exit_code=2
        )
    return argv


def host_port(address: str, port: int) -> str:
    return f"[{address}]:{port}" if ":" in address else f"{address}:{port}"


@dataclass(frozen=True)
class JobSpec:
    """What the user asked for, independent of where it runs."""

    job_id: str
    python: str
    workdir: str
    entry: list[str]
    script_args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    max_restarts: int = 0
    torchrun: bool = True
    grace: float = 5.0


@dataclass(frozen=True)
class NodeTarget:
    """One place a node runs: `host` for ssh (None locally), the address others reach it at."""

    host: str | None
    address: str
    nproc: int


def torchrun_argv(
    spec: JobSpec, nnodes: int, node_rank: int, nproc: int, endpoint: str, local_addr: str
) -> list[str]:
    return [
        spec.python,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(nnodes),
        "--nproc-per-node",
        str(nproc),
        "--rdzv-backend",
        "c10d",
        "--rdzv-endpoint",
        endpoint,
        "--rdzv-id",
        spec.job_id,
        # The first node hosts the rendezvous store; saying so beats torch's guess, which treats
        # every loopback address as "this machine".
        "--rdzv-conf",
        f"is_host={1 if node_rank == 0 else 0}",
        "--local-addr",
        local_addr,
        "--max-restarts",
        str(spec.max_restarts),
        "--log-dir",
        f"{node_state_dir(spec.job_id, node_rank)}/torchrun",
        "--tee",
        "3",
        *spec.entry,
        *spec.script_args,
    ]


@dataclass(frozen=True)
class NodePlan:
    """One node of a launch: where, which rank, the session's exact argv, and what it will run."""

    label: str
    host: str | None
    address: str
    node_rank: int
    nproc: int
    argv: list[str]
    command: list[str]
    env: dict[str, str]
    remote_command: str | None = None
    torchrun: bool = False  # the command is torchrun (not a script that starts its own workers)

    def go_line(self) -> bytes:
        """The line that tells the node's wrapper to start: its command and environment, and
        among how many processes to split the node's CPUs (OMP_NUM_THREADS, unless set): torchrun's
        nproc, or 0 for a script that starts its own workers."""
        go = {"command": self.command, "env": self.env, "thread_split": self.nproc if self.torchrun else 0}
        return (json.dumps(go) + "\n").encode()

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        data["env"] = masked_env(self.env)
        return data


@dataclass(frozen=True)
class LaunchPlan:
    job_id: str
    workdir: str
    rdzv_endpoint: str
    nodes: list[NodePlan]
    torchrun: bool

    @property
    def world_size(self) -> int:
        return sum(node.nproc for node in self.nodes) if self.torchrun else len(self.nodes)

    def to_dict(self) -> dict[str, object]:
        return {
            "job_id": self.job_id,
            "workdir": self.workdir,
            "rdzv_endpoint": self.rdzv_endpoint,
            "torchrun": self.torchrun,
            "world_size": self.world_size,
            "nodes": [node.to_dict() for node in self.nodes],
        }


def build_plan(
    spec: JobSpec,
    targets: Sequence[NodeTarget],
    rdzv_port: int,
    ssh: SshOptions | None = None,
    check_port: bool = False,
) -> LaunchPlan:
    """Turn a job and its nodes into exact argv lists: one torchrun per node, c10d on the first.

    A node's session argv does not depend on its process count, so sessions can start (and
    probe) before `auto` counts are known, and the plan built afterwards names the same argv.
    """
    if not targets:
        raise CcptError("no nodes to launch on", exit_code=2)
    if any(target.host is not None for target in targets) and ssh is None:
        raise ValueError("remote nodes need SshOptions")
    endpoint = host_port(targets[0].address, rdzv_port)
    nodes = []
    for rank, target in enumerate(targets):
        env = dict(spec.env)
        if spec.torchrun:
            env["TORCHELASTIC_LOG_LINE_PREFIX_TEMPLATE"] = RANK_PREFIX_TEMPLATE
            command = torchrun_argv(spec, len(targets), rank, target.nproc, endpoint, target.address)
        else:
            # Scripts that start their own workers get the same facts torchrun would give them.
            env.update(
                CCPT_NUM_NODES=str(len(targets)),
                MASTER_ADDR=targets[0].address,
                MASTER_PORT=str(rdzv_port),
            )
            command = [spec.python, *spec.entry, *spec.script_args]
        port = rdzv_port if check_port and rank == 0 else None
        session = wrapper_argv(spec.python, spec.job_id, rank, spec.workdir, spec.grace, port)
        if target.host is None:
            label, argv, remote = "local", session, None
        else:
            assert ssh is not None
            label, argv, remote = target.host, ssh.command(target.host, session), shlex.join(session)
        nodes.append(
            NodePlan(
                label, target.host, target.address, rank, target.nproc, argv, command, env, remote,
                torchrun=spec.torchrun,
            )
        )  # fmt: skip
    return LaunchPlan(spec.job_id, spec.workdir, endpoint, nodes, spec.torchrun)
