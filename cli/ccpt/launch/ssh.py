"""The system OpenSSH client: node sessions, one master connection per host, and fan-out steps.

With `local.py`, the only module that starts processes. The user's ssh config, ProxyJump and
agent all work because this is plain `ssh`; host keys are checked as the config says (nothing
here turns checking off). Each node's session is started with `ControlMaster=auto`, so the
first connection to a host becomes its multiplexing master and every later step (rsync, kill)
rides on it without a new handshake; `SshSession.close` ends the masters. Steps that run one
command per host (`ssh -G`, mkdir, rsync, closing masters) go through `SshFanout`: a bounded
window, with a retry when the server drops a connection during the handshake.
"""

from __future__ import annotations

import contextlib
import random
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ccpt.errors import CcptError
from ccpt.launch.local import start_with_payload
from ccpt.launch.plan import SSH_FAILED, NodePlan, SshOptions, boot_payload, kill_argv
from ccpt.launch.preflight import describe_failure

# What ssh prints when the server drops a connection before authenticating (MaxStartups, load).
RESET_MARKERS = (
    "Connection reset by peer",
    "Connection closed by",
    "kex_exchange_identification",
    "ssh_exchange_identification",
)
DEFAULT_FANOUT = 8
DEFAULT_RETRIES = 4


@dataclass(frozen=True)
class StepResult:
    host: str
    returncode: int
    stdout: str
    stderr: str
    retries: int = 0

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def dropped_handshake(returncode: int, stderr: str) -> bool:
    """Whether ssh says the server dropped the connection before the command could start."""
    return returncode == SSH_FAILED and any(marker in stderr for marker in RESET_MARKERS)


class SshFanout:
    """Runs one command per host, at most `window` at a time, retrying dropped handshakes."""

    def __init__(self, window: int = DEFAULT_FANOUT, retries: int = DEFAULT_RETRIES) -> None:
        if window < 1:
            raise CcptError(f"--fanout must be at least 1, got {window}", exit_code=2)
        self.window, self.retries = window, retries

    def run(
        self,
        commands: Mapping[str, Sequence[str]],
        payload: bytes | None = None,
        timeout: float = 60.0,
    ) -> dict[str, StepResult]:
        if not commands:
            return {}
        with ThreadPoolExecutor(max_workers=min(self.window, len(commands))) as pool:
            futures = {
                host: pool.submit(self._run_one, host, argv, payload, timeout)
                for host, argv in commands.items()
            }
            return {host: future.result() for host, future in futures.items()}

    def _run_one(self, host: str, argv: Sequence[str], payload: bytes | None, timeout: float) -> StepResult:
        attempt = 0
        while True:
            result = _run(host, argv, payload, timeout, attempt)
            if not dropped_handshake(result.returncode, result.stderr) or attempt >= self.retries:
                return result
            attempt += 1
            time.sleep(0.2 * 2**attempt * (0.5 + random.random()))


def _run(host: str, argv: Sequence[str], payload: bytes | None, timeout: float, retries: int) -> StepResult:
    try:
        done = subprocess.run(
            list(argv),
            input=payload if payload is not None else b"",
            capture_output=True,
            timeout=timeout,
        )
    except subprocess.TimeoutExpired:
        return StepResult(host, SSH_FAILED, "", f"timed out after {timeout:g} s", retries)
    except OSError as exc:
        raise CcptError(f"cannot run {argv[0]}: {exc.strerror}", hint="install the OpenSSH client") from exc
    decode = lambda data: data.decode("utf-8", errors="replace")  # noqa: E731
    return StepResult(host, done.returncode, decode(done.stdout), decode(done.stderr), retries)


class SshSession:
    """The masters and control directory of one launch; close() ends the masters."""

    def __init__(
        self,
        config_file: str | None = None,
        connect_timeout: int = 10,
        fanout: int = DEFAULT_FANOUT,
    ) -> None:
        if config_file is not None and not Path(config_file).is_file():
            raise CcptError(f"ssh config {config_file} not found", exit_code=2)
        if shutil.which("ssh") is None:
            raise CcptError(
                "the OpenSSH client (ssh) is not installed", hint="apt-get install openssh-client"
            )
        # A short path: unix socket names are limited to about 100 bytes.
        base = "/tmp" if Path("/tmp").is_dir() else None
        self.control_dir = tempfile.mkdtemp(prefix="ccpt-ssh-", dir=base)
        self.options = SshOptions(self.control_dir, config_file, connect_timeout)
        self.fanout = SshFanout(fanout)
        self.connect_timeout = connect_timeout
        self.transports: list[SshTransport] = []

    def __enter__(self) -> SshSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _step(
        self,
        commands: Mapping[str, Sequence[str]],
        payload: bytes | None = None,
        timeout: float | None = None,
    ) -> dict[str, StepResult]:
        return self.fanout.run(commands, payload, timeout or self.connect_timeout * 2 + 30)

    def addresses(self, hosts: Sequence[str]) -> dict[str, str]:
        """The address each host's connection goes to (ssh -G), for --local-addr and rendezvous."""
        results = self._step({host: self.options.resolve(host) for host in hosts}, timeout=15)
        addresses = {}
        for host in hosts:
            result = results[host]
            hostname = next(
                (
                    line.split(None, 1)[1]
                    for line in result.stdout.splitlines()
                    if line.startswith("hostname ")
                ),
                None,
            )
            if not result.ok or not hostname:
                raise CcptError(
                    f"ssh cannot resolve {host}: {describe_failure(result.returncode, result.stderr)}",
                    hint="check the host name and your ssh config (--ssh-config)",
                )
            addresses[host] = hostname.strip()
        return addresses

    def sync(self, hosts: Sequence[str], workdir: str, excludes: Sequence[str] = ()) -> dict[str, StepResult]:
        """Copy the project to the same path on every host (rsync, honouring .gitignore files)."""
        made = self._step(
            {host: self.options.command(host, ["mkdir", "-p", "--", workdir]) for host in hosts}
        )
        failed = {host: result for host, result in made.items() if not result.ok}
        copies = self._step(
            {host: self.options.rsync(host, workdir, excludes) for host in hosts if host not in failed},
            timeout=3600,
        )
        return {**copies, **failed}

    def transport(self, python: str, job_id: str, grace: float) -> SshTransport:
        """Starts node sessions; the first session to each host becomes its master connection."""
        transport = SshTransport(self.options, python, job_id, grace)
        self.transports.append(transport)
        return transport

    def close(self) -> None:
        """End the master connections the sessions left behind, and the control directory."""
        hosts = sorted({host for transport in self.transports for host in transport.hosts})
        if hosts:
            self._step({host: self.options.close_master(host) for host in hosts}, timeout=10)
        shutil.rmtree(self.control_dir, ignore_errors=True)


class SshTransport:
    """Starts each node's session through ssh; force_stop runs the wrapper's kill mode there."""

    remote = True

    def __init__(self, options: SshOptions, python: str, job_id: str, grace: float) -> None:
        self.options, self.python, self.job_id, self.grace = options, python, job_id, grace
        self.hosts: set[str] = set()

    def start(self, node: NodePlan) -> subprocess.Popen[bytes]:
        assert node.host is not None
        self.hosts.add(node.host)
        return start_with_payload(node.argv, boot_payload())

    def retryable(self, returncode: int, stderr: str) -> bool:
        return dropped_handshake(returncode, stderr)

    def force_stop(self, node: NodePlan) -> subprocess.Popen[bytes] | None:
        assert node.host is not None
        kill = kill_argv(self.python, self.job_id, node.node_rank, self.grace)
        proc = start_with_payload(self.options.command(node.host, kill), boot_payload(), capture=False)
        assert proc.stdin is not None
        with contextlib.suppress(OSError):
            proc.stdin.close()
        return proc
