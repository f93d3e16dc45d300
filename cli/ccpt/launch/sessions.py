"""Opening node sessions: a bounded window of handshakes, retries, and each node's probe line.

Every node gets one session for the whole job (see plan.py). Sessions are started at most
`window` at a time; a session holds its place in the window until its probe line arrives. When
ssh reports that the server dropped the connection during the handshake (sshd's MaxStartups
under load), the session is started again after a short backoff, as pdsh does: nothing ran on
the node yet, so a retry is safe. The processes themselves are started by the transport
(local.py or ssh.py); this module only reads their output.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import selectors
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

from ccpt.launch.node_wrapper import PROBE_PREFIX
from ccpt.launch.plan import NodePlan
from ccpt.launch.preflight import Probe, describe_failure

MAX_STDERR_BYTES = 16 * 1024


class SessionStarter(Protocol):
    def start(self, node: NodePlan) -> subprocess.Popen[bytes]: ...

    def retryable(self, returncode: int, stderr: str) -> bool: ...


@dataclass
class NodeSession:
    """A node's open session (or why there is none) and what it printed after its probe."""

    node: NodePlan
    probe: Probe
    proc: subprocess.Popen[bytes] | None = None
    stdout_rest: bytes = b""
    stderr_rest: bytes = b""


@dataclass
class _Opening:
    node: NodePlan
    proc: subprocess.Popen[bytes]
    attempt: int
    started: float
    out: bytearray = field(default_factory=bytearray)
    err: bytearray = field(default_factory=bytearray)
    open_streams: int = 2


def _probe_from(host: str, out: bytearray, retries: int) -> tuple[Probe, bytes] | None:
    """The probe line, if it has arrived, and whatever followed it (lines before it are kept too)."""
    marker = PROBE_PREFIX.encode()
    if out.startswith(marker):
        start = 0
    else:
        index = out.find(b"\n" + marker)
        if index < 0:
            return None
        start = index + 1
    end = out.find(b"\n", start)
    if end < 0:
        return None
    try:
        data = json.loads(out[start + len(marker) : end])
    except json.JSONDecodeError:
        return Probe(host, error="the node wrapper sent an unreadable probe", retries=retries), b""
    return Probe.from_json(host, data, retries), bytes(out[:start]) + bytes(out[end + 1 :])


def open_sessions(
    nodes: Sequence[NodePlan],
    starter: SessionStarter,
    window: int,
    retries: int = 4,
    timeout: float = 60.0,
) -> list[NodeSession]:
    """Start every node's session and wait for its probe; returns one NodeSession per node, in order."""
    waiting = [(node, 0, 0.0) for node in nodes]  # (node, attempt, not before)
    opening: dict[str, _Opening] = {}
    done: dict[str, NodeSession] = {}
    selector = selectors.DefaultSelector()

    def finish(item: _Opening, session: NodeSession) -> None:
        for pipe in (item.proc.stdout, item.proc.stderr):
            with contextlib.suppress(KeyError, ValueError):
                selector.unregister(pipe)  # type: ignore[arg-type]
        del opening[item.node.label]
        done[item.node.label] = session

    try:
        while waiting or opening:
            now = time.monotonic()
            for entry in [e for e in waiting if e[2] <= now][: max(window - len(opening), 0)]:
                waiting.remove(entry)
                node, attempt, _ = entry
                proc = starter.start(node)
                item = _Opening(node, proc, attempt, now)
                opening[node.label] = item
                for name, pipe in (("out", proc.stdout), ("err", proc.stderr)):
                    assert pipe is not None
                    os.set_blocking(pipe.fileno(), False)
                    selector.register(pipe, selectors.EVENT_READ, (item, name))
            if selector.get_map():
                events = selector.select(timeout=0.05)
            else:
                events = []
                time.sleep(0.02)
            for key, _ in events:
                item, name = key.data
                try:
                    chunk = os.read(key.fd, 65536)
                except BlockingIOError:
                    continue
                if not chunk:
                    selector.unregister(key.fileobj)
                    item.open_streams -= 1
                elif name == "err":
                    item.err += chunk[: max(MAX_STDERR_BYTES - len(item.err), 0)]
                else:
                    item.out += chunk
                    found = _probe_from(item.node.label, item.out, item.attempt)
                    if found is not None:
                        probe, rest = found
                        finish(item, NodeSession(item.node, probe, item.proc, rest, bytes(item.err)))
            for item in list(opening.values()):
                code = item.proc.poll()
                if code is not None and item.open_streams == 0:
                    stderr = item.err.decode("utf-8", errors="replace")
                    if starter.retryable(code, stderr) and item.attempt < retries:
                        del opening[item.node.label]
                        backoff = 0.2 * 2**item.attempt * (0.5 + random.random())
                        waiting.append((item.node, item.attempt + 1, time.monotonic() + backoff))
                        continue
                    probe = Probe(item.node.label, error=describe_failure(code, stderr), retries=item.attempt)
                    finish(item, NodeSession(item.node, probe))
                elif time.monotonic() - item.started > timeout:
                    item.proc.kill()
                    item.proc.wait()
                    probe = Probe(
                        item.node.label, error=f"no answer within {timeout:g} s", retries=item.attempt
                    )
                    finish(item, NodeSession(item.node, probe))
            if waiting and not opening:  # only retries left, each waiting out its backoff
                time.sleep(max(min(e[2] for e in waiting) - time.monotonic(), 0))
    except BaseException:
        for item in opening.values():
            item.proc.kill()
        close_sessions(list(done.values()))
        raise
    finally:
        selector.close()
    return [done[node.label] for node in nodes]


def close_sessions(sessions: Sequence[NodeSession], timeout: float = 10.0) -> None:
    """Call the launch off: each waiting wrapper sees stdin close and exits without starting."""
    for session in sessions:
        if session.proc is not None and session.proc.stdin is not None:
            with contextlib.suppress(OSError):
                session.proc.stdin.close()
    deadline = time.monotonic() + timeout
    for session in sessions:
        if session.proc is None:
            continue
        try:
            session.proc.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            session.proc.kill()
            session.proc.wait()
        for pipe in (session.proc.stdout, session.proc.stderr):
            if pipe is not None:
                pipe.close()
