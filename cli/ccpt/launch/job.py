"""Running a launch plan: stream every node's output, notice the first failure, end everything.

`run_job` starts each node through a `Transport` (local.py or ssh.py: the only modules that start
processes), multiplexes their output through a `LogRouter`, and waits. When a node exits
non-zero, or on Ctrl-C / SIGTERM, it tears the whole job down:

1. close every node's stdin: its wrapper SIGTERMs its process tree, then SIGKILLs it after
   `grace` seconds and kills anything still tagged with the job;
2. `grace + 2` s later, nodes still running get the wrapper's kill mode through a new command;
3. `grace + 6` s later, the launcher's own transports are SIGKILLed and the loop ends.

So every process of the job is gone within `grace + 1` s in the normal case and the launcher
returns within `grace + 6` s even when a host stops answering (TEARDOWN_BOUND_S for the default).
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Protocol

from ccpt.launch.logs import LogRouter
from ccpt.launch.plan import SSH_FAILED, LaunchPlan, NodePlan
from ccpt.launch.sessions import NodeSession

DEFAULT_GRACE_S = 5.0
FORCE_AFTER_S = 2.0
ABANDON_AFTER_S = 6.0
TEARDOWN_BOUND_S = DEFAULT_GRACE_S + ABANDON_AFTER_S
DRAIN_AFTER_EXIT_S = 2.0


class Transport(Protocol):
    """Starts node sessions and can force-stop a node (local.py, ssh.py)."""

    remote: bool

    def start(self, node: NodePlan) -> subprocess.Popen[bytes]: ...

    def retryable(self, returncode: int, stderr: str) -> bool: ...

    def force_stop(self, node: NodePlan) -> subprocess.Popen[bytes] | None: ...


@dataclass
class NodeOutcome:
    label: str
    node_rank: int
    exit_code: int | None = None
    ended_at: float | None = None
    stopped_by_launcher: bool = False


@dataclass
class Failure:
    """The first node that failed on its own, the rank torchrun blamed, and its last lines."""

    host: str
    rank: int | None
    exit_code: int
    reason: str
    last_lines: list[str]
    lines_of: str  # host:rank, or the host when that rank printed nothing

    @property
    def where(self) -> str:
        return self.host if self.rank is None else f"{self.host}:{self.rank}"


@dataclass
class JobResult:
    job_id: str
    exit_code: int
    nodes: list[NodeOutcome]
    failure: Failure | None = None
    interrupted: bool = False
    duration_s: float = 0.0
    teardown_s: float | None = None
    log_lines: int = 0

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass
class JobEvent:
    """Something the command may show while a job runs (the core never prints)."""

    kind: str  # "started", "node-exit", "stopping", "forcing"
    message: str
    data: dict[str, object] = field(default_factory=dict)


def exit_reason(code: int, remote: bool) -> str:
    if remote and code == SSH_FAILED:
        return "ssh connection failed or was lost"
    if code >= 128:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(code - 128).name}"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Treat SIGTERM (and SIGHUP) to the launcher like Ctrl-C, so it tears the job down too."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


class _Job:
    def __init__(
        self,
        plan: LaunchPlan,
        transport: Transport,
        router: LogRouter,
        grace: float,
        on_event: Callable[[JobEvent], None],
    ) -> None:
        self.plan, self.transport, self.router = plan, transport, router
        self.grace, self.on_event = grace, on_event
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.outcomes = {node.label: NodeOutcome(node.label, node.node_rank) for node in plan.nodes}
        self.selector = selectors.DefaultSelector()
        self.failed_first: str | None = None
        self.interrupted = False
        self.stopping_since: float | None = None
        self.forced = False
        self.abandoned = False
        self.all_exited_at: float | None = None
        self.helpers: list[subprocess.Popen[bytes]] = []

    def start(self, sessions: Sequence[NodeSession]) -> None:
        """Send every waiting node its go line and start streaming its output."""
        for session in sessions:
            node, proc = session.node, session.proc
            assert proc is not None and proc.stdout is not None and proc.stderr is not None
            self.router.add_host(node.label)
            self.procs[node.label] = proc
            for stream, pipe, rest in (
                ("out", proc.stdout, session.stdout_rest),
                ("err", proc.stderr, session.stderr_rest),
            ):
                if rest:
                    self.router.feed(node.label, stream, rest)
                self.selector.register(pipe, selectors.EVENT_READ, (node.label, stream))
        for session in sessions:
            node, proc = session.node, session.proc
            assert proc is not None and proc.stdin is not None
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.write(node.go_line())
                proc.stdin.flush()
            self.on_event(
                JobEvent("started", f"{node.label}: started (pid {proc.pid})", {"node": node.label})
            )

    def pump(self) -> None:
        """Read output and watch exits until every node is done and its streams are drained."""
        while True:
            for key, _ in self.selector.select(timeout=0.1):
                self._read(key)
            self._check_exits()
            self._advance_teardown()
            if self.all_exited_at is not None and (
                not self.selector.get_map() or time.monotonic() - self.all_exited_at > DRAIN_AFTER_EXIT_S
            ):
                return
            if self.abandoned:
                return

    def _read(self, key: selectors.SelectorKey) -> None:
        label, stream = key.data
        try:
            chunk = os.read(key.fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            chunk = b""
        if chunk:
            self.router.feed(label, stream, chunk)
            return
        self.selector.unregister(key.fileobj)
        key.fileobj.close()  # type: ignore[union-attr]
        self.router.finish(label, stream)

    def _check_exits(self) -> None:
        now = time.monotonic()
        for label, proc in self.procs.items():
            outcome = self.outcomes[label]
            if outcome.exit_code is not None:
                continue
            code = proc.poll()
            if code is None:
                continue
            code = 128 - code if code < 0 else code
            outcome.exit_code, outcome.ended_at = code, now
            outcome.stopped_by_launcher = self.stopping_since is not None
            self.on_event(JobEvent("node-exit", f"{label}: {exit_reason(code, self.transport.remote)}"))
            if code != 0 and self.stopping_since is None:
                self.failed_first = label
                self.begin_teardown(f"{label} {exit_reason(code, self.transport.remote)}")
        if self.all_exited_at is None and all(o.exit_code is not None for o in self.outcomes.values()):
            self.all_exited_at = now

    def begin_teardown(self, reason: str) -> None:
        if self.stopping_since is not None:
            return
        self.stopping_since = time.monotonic()
        # The console keeps the failure; what the other nodes print while dying goes to files only.
        self.router.mute(label for label in self.outcomes if label != self.failed_first)
        running = [label for label, o in self.outcomes.items() if o.exit_code is None]
        if running:
            self.on_event(JobEvent("stopping", f"stopping the job on {', '.join(running)}: {reason}"))
        for label in running:
            proc = self.procs[label]
            if proc.stdin is not None and not proc.stdin.closed:
                with contextlib.suppress(OSError):
                    proc.stdin.close()

    def _advance_teardown(self) -> None:
        if self.stopping_since is None:
            return
        elapsed = time.monotonic() - self.stopping_since
        running = [node for node in self.plan.nodes if self.outcomes[node.label].exit_code is None]
        if running and not self.forced and elapsed > self.grace + FORCE_AFTER_S:
            self.force()
        if running and elapsed > self.grace + ABANDON_AFTER_S:
            for node in running:
                with contextlib.suppress(OSError):
                    self.procs[node.label].kill()
            self.abandoned = True

    def force(self) -> None:
        """Run the wrapper's kill mode for every node still running (e.g. after a second Ctrl-C)."""
        self.forced = True
        running = [node for node in self.plan.nodes if self.outcomes[node.label].exit_code is None]
        if running:
            self.on_event(JobEvent("forcing", f"forcing {', '.join(n.label for n in running)} to stop"))
        for node in running:
            helper = self.transport.force_stop(node)
            if helper is not None:
                self.helpers.append(helper)

    def finish(self) -> None:
        for proc in self.procs.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=1)
        for helper in self.helpers:
            try:
                helper.wait(timeout=self.grace + 2)
            except subprocess.TimeoutExpired:
                helper.kill()
                helper.wait()
        for key in list(self.selector.get_map().values()):
            label, stream = key.data
            self.selector.unregister(key.fileobj)
            key.fileobj.close()  # type: ignore[union-attr]
            self.router.finish(label, stream)
        self.selector.close()
        self.router.close()

    def failure(self) -> Failure | None:
        if self.failed_first is None:
            return None
        label = self.failed_first
        code = self.outcomes[label].exit_code or 1
        cause = self.router.root_cause(label)
        rank = cause.rank if cause else None
        reason = exit_reason(code, self.transport.remote)
        if cause and cause.rank is not None:
            rank_code = cause.exit_code if cause.exit_code is not None else code
            reason = f"rank {cause.rank} {exit_reason(rank_code, False)}"
        elif self.plan.torchrun and code != SSH_FAILED:
            reason = f"torchrun {reason}"
        lines_of = f"{label}:{rank}" if rank is not None and self.router.printed(rank) else label
        return Failure(label, rank, code, reason, self.router.last_lines(label, rank), lines_of)


def run_job(
    plan: LaunchPlan,
    sessions: Sequence[NodeSession],
    transport: Transport,
    router: LogRouter,
    grace: float = DEFAULT_GRACE_S,
    on_event: Callable[[JobEvent], None] | None = None,
) -> JobResult:
    """Start every node of `plan` through its open session, run the job to its end (or tear it
    down), and say how it went."""
    job = _Job(plan, transport, router, grace, on_event or (lambda event: None))
    started = time.monotonic()
    with sigterm_as_interrupt():
        try:
            job.start(sessions)
            while True:
                try:
                    job.pump()
                    break
                except KeyboardInterrupt:
                    if job.stopping_since is None:
                        job.interrupted = True
                        job.begin_teardown("interrupted")
                    elif not job.forced:
                        job.force()
        finally:
            if job.stopping_since is None and any(o.exit_code is None for o in job.outcomes.values()):
                job.begin_teardown("launcher error")
                with contextlib.suppress(KeyboardInterrupt):
                    job.pump()
            job.finish()
    failure = job.failure()
    if job.interrupted:
        exit_code = 130
    elif failure is not None:
        exit_code = failure.exit_code
    else:
        exit_code = max((o.exit_code or 0 for o in job.outcomes.values()), default=0)
    ended = [o.ended_at for o in job.outcomes.values() if o.ended_at is not None]
    teardown = max(ended) - job.stopping_since if job.stopping_since is not None and ended else None
    return JobResult(
        job_id=plan.job_id,
        exit_code=exit_code,
        nodes=list(job.outcomes.values()),
        failure=failure,
        interrupted=job.interrupted,
        duration_s=time.monotonic() - started,
        teardown_s=max(teardown, 0.0) if teardown is not None else None,
        log_lines=router.lines,
    )
