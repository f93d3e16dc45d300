"""Starting processes on this machine: a local torchrun job, and the helpers it needs.

With `ssh.py`, the only module that starts processes. A local node runs exactly like a remote
one minus ssh: the plan's wrapper argv with the wrapper's source on stdin, in a session of its
own, so a Ctrl-C in the terminal reaches only the launcher, which then ends the job in order.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess

from ccpt.launch.plan import NodePlan, boot_payload, kill_argv


def free_port() -> int:
    """A TCP port nobody listens on now; the kernel hands out a different one to each caller."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_with_payload(argv: list[str], payload: bytes, capture: bool = True) -> subprocess.Popen[bytes]:
    """Start `argv` in its own session; write `payload` to its stdin and keep stdin open."""
    output = subprocess.PIPE if capture else subprocess.DEVNULL
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=output, stderr=output, start_new_session=True)
    assert proc.stdin is not None
    with contextlib.suppress(BrokenPipeError):
        proc.stdin.write(payload)
        proc.stdin.flush()
    return proc


class LocalTransport:
    """Runs nodes as local processes (no ssh)."""

    remote = False

    def __init__(self, python: str, job_id: str, grace: float) -> None:
        self.python, self.job_id, self.grace = python, job_id, grace

    def start(self, node: NodePlan) -> subprocess.Popen[bytes]:
        return start_with_payload(node.argv, boot_payload())

    def retryable(self, returncode: int, stderr: str) -> bool:
        return False

    def force_stop(self, node: NodePlan) -> subprocess.Popen[bytes] | None:
        argv = kill_argv(self.python, self.job_id, node.node_rank, self.grace)
        proc = start_with_payload(argv, boot_payload(), capture=False)
        assert proc.stdin is not None
        proc.stdin.close()
        return proc
