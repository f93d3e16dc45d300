"""A real OpenSSH server on loopback, for multi-node launch tests and benchmarks.

`LoopbackSshd` makes host and client keys in a temp dir, writes an `sshd_config` listening on
127.0.0.1 and on one more loopback address per node (127.0.0.2, 127.0.0.3 ...) on a free port,
with its own `AuthorizedKeysFile` and `PidFile`, and runs `/usr/sbin/sshd -D -e -f CONFIG`.
It writes an ssh client config with host aliases node0, node1 ... and a known_hosts file holding
the server's real host key: host keys are checked (`StrictHostKeyChecking yes`), never ignored.

`private_dir` starts the server in its own mount namespace with a fresh tmpfs over that path,
so commands run through it see a different filesystem there: a second "machine" for --sync.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SSHD = "/usr/sbin/sshd"
MAX_LISTEN = 16  # sshd's MAX_LISTEN_SOCKS


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def node_address(index: int) -> str:
    """node0 -> 127.0.0.2, node1 -> 127.0.0.3 ... (all loopback on Linux)."""
    return f"127.0.0.{index + 2}"


class LoopbackSshd:
    """One sshd answering for `nodes` loopback host aliases; use as a context manager."""

    def __init__(self, nodes: int = 2, private_dir: Path | None = None, max_startups: str | None = None):
        self.nodes = nodes
        self.private_dir = private_dir
        self.max_startups = max_startups
        self.dir = Path(tempfile.mkdtemp(prefix="ccpt-sshd-"))
        self.port = free_port()
        self.client_config = self.dir / "ssh_config"
        self.known_hosts = self.dir / "known_hosts"
        self.client_key = self.dir / "client_key"
        self.log_path = self.dir / "sshd.log"
        self._procs: list[subprocess.Popen[bytes]] = []

    @property
    def hosts(self) -> list[str]:
        return [f"node{i}" for i in range(self.nodes)]

    def _keygen(self, path: Path) -> str:
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ccpt-test", "-f", str(path)], check=True
        )
        return Path(f"{path}.pub").read_text().strip()

    @property
    def addresses(self) -> list[str]:
        return ["127.0.0.1", *(node_address(i) for i in range(self.nodes))]

    def _write_configs(self) -> list[Path]:
        """Keys, authorized_keys, known_hosts, the client config, and one sshd_config per 16 addresses."""
        host_key = self.dir / "host_key"
        host_pub = self._keygen(host_key).split()[:2]
        client_pub = self._keygen(self.client_key)
        authorized = self.dir / "authorized_keys"
        authorized.write_text(client_pub)
        authorized.chmod(0o600)
        common = [
            f"Port {self.port}",
            f"HostKey {host_key}",
            f"AuthorizedKeysFile {authorized}",
            "PasswordAuthentication no",
            "KbdInteractiveAuthentication no",
            "PubkeyAuthentication yes",
            "PermitRootLogin prohibit-password",
            "UsePAM no",
            "StrictModes no",
            "PrintMotd no",
            "LogLevel ERROR",
            "Subsystem sftp internal-sftp",
        ]
        if self.max_startups:
            common.append(f"MaxStartups {self.max_startups}")
        configs = []
        # sshd listens on at most 16 sockets, so larger clusters get more sshd processes (same port).
        for index in range(0, len(self.addresses), MAX_LISTEN):
            config = self.dir / f"sshd_config.{index // MAX_LISTEN}"
            listen = [f"ListenAddress {address}" for address in self.addresses[index : index + MAX_LISTEN]]
            pid_file = f"PidFile {self.dir / f'sshd.{index // MAX_LISTEN}.pid'}"
            config.write_text("\n".join([*common, *listen, pid_file]) + "\n")
            configs.append(config)
        self.known_hosts.write_text(
            "".join(f"[{address}]:{self.port} {' '.join(host_pub)}\n" for address in self.addresses)
        )
        client = []
        for index, host in enumerate(self.hosts):
            client += [f"Host {host}", f"  HostName {node_address(index)}"]
        client += [
            "Host *",
            f"  Port {self.port}",
            "  User root",
            f"  IdentityFile {self.client_key}",
            "  IdentitiesOnly yes",
            f"  UserKnownHostsFile {self.known_hosts}",
            "  GlobalKnownHostsFile /dev/null",
            "  StrictHostKeyChecking yes",
            "  LogLevel ERROR",
        ]
        self.client_config.write_text("\n".join(client) + "\n")
        return configs

    def start(self) -> LoopbackSshd:
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # sshd's privilege separation dir
        log = self.log_path.open("wb")
        for config in self._write_configs():
            argv = [SSHD, "-D", "-e", "-f", str(config)]
            if self.private_dir is not None:
                # A private mount namespace: a fresh tmpfs hides what the launcher sees at this path.
                script = 'mount -t tmpfs ccpt-test "$1" && shift && exec "$@"'
                argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
                        str(self.private_dir), *argv]  # fmt: skip
            self._procs.append(
                subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
            )
        self._wait_ready()
        return self

    def _wait_ready(self, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        pending = set(self.addresses)
        while pending and time.monotonic() < deadline:
            if any(proc.poll() is not None for proc in self._procs):
                raise RuntimeError(f"sshd exited: {self.log_path.read_text()}")
            for address in list(pending):
                with socket.socket() as sock:
                    if sock.connect_ex((address, self.port)) == 0:
                        pending.discard(address)
            time.sleep(0.05)
        if pending:
            raise RuntimeError(f"sshd did not listen on {sorted(pending)}: {self.log_path.read_text()}")

    def ssh(self, host: str, *command: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """Run a command on a node through the real client and config (for test assertions)."""
        return subprocess.run(
            ["ssh", "-F", str(self.client_config), "-o", "BatchMode=yes", host, *command],
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def stop(self) -> None:
        for proc in self._procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self._procs:
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> LoopbackSshd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.fixture
def sshd() -> Iterator[LoopbackSshd]:
    """Two loopback hosts, node0 and node1, behind one real sshd."""
    with LoopbackSshd(nodes=2) as server:
        yield server
