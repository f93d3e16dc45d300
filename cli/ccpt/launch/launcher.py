"""`ccpt train` end to end: pick the nodes, check them, sync, plan, run, record.

Local: one node on this machine. Remote: resolve every host's address (ssh -G), open one master
per host and probe them all in parallel, judge the findings (abort on any problem), rsync the
project if asked, build the plan and run it. Progress is reported through `on_event`; the
command renders it. Each run leaves `RUN_DIR/JOB_ID/` with `plan.json`, the logs and
`summary.json`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from ccpt.errors import CcptError
from ccpt.launch.hostfile import HostEntry
from ccpt.launch.job import JobEvent, JobResult, run_job
from ccpt.launch.logs import LogRouter
from ccpt.launch.plan import JobSpec, LaunchPlan, NodeTarget, build_plan, rdzv_port_for
from ccpt.launch.preflight import PreflightReport, describe_failure, evaluate, resolved_slots
from ccpt.launch.sessions import NodeSession, close_sessions, open_sessions

if TYPE_CHECKING:
    from ccpt.launch.job import Transport
    from ccpt.launch.ssh import SshSession


@dataclass
class TrainRequest:
    """A launch as the user asked for it; `hosts=None` means this machine only."""

    job: JobSpec
    run_dir: Path
    hosts: list[HostEntry] | None = None
    nproc: int | None = None  # None: one per GPU, else one
    rdzv_port: int | None = None
    ssh_config: str | None = None
    connect_timeout: int = 10
    fanout: int = 8
    sync: bool = False
    sync_excludes: list[str] = field(default_factory=list)

    @property
    def job_dir(self) -> Path:
        return self.run_dir / self.job.job_id


@dataclass
class PreflightEvent(JobEvent):
    report: PreflightReport | None = None


@dataclass
class Console:
    """Where node output goes: a text stream, with or without colour."""

    stream: TextIO
    colour: bool = False


EventSink = Callable[[JobEvent], None]


def check_entry(job: JobSpec) -> None:
    """The training script must exist in the project (remote nodes run the same path)."""
    if job.entry[0] == "-m":
        return
    script = Path(job.workdir) / job.entry[0]
    if not script.is_file():
        raise CcptError(
            f"training entry {job.entry[0]} not found in {job.workdir}",
            hint="run from the project root, or set --entry / train_entry",
            exit_code=2,
        )


def run_local(request: TrainRequest, console: Console, on_event: EventSink) -> JobResult:
    """One node on this machine: probe it (torch, GPUs), then run torchrun there."""
    from ccpt.launch.local import LocalTransport, free_port

    check_entry(request.job)
    job = request.job
    transport = LocalTransport(job.python, job.job_id, job.grace)
    port = request.rdzv_port or free_port()
    waiting = build_plan(job, [NodeTarget(None, "127.0.0.1", request.nproc or 1)], port)
    sessions = open_sessions(waiting.nodes, transport, window=1, timeout=60)
    probe = sessions[0].probe
    report = evaluate([probe], {"local": request.nproc}, job.torchrun, sync=False, port=None)
    if not report.ok:
        close_sessions(sessions)
        problem = report.problems[0].removeprefix("local: ")
        raise CcptError(problem, hint="install torch (pip install 'ccpt[ml]') or lower --nproc-per-node")
    plan = build_plan(job, [NodeTarget(None, "127.0.0.1", request.nproc or max(probe.gpus, 1))], port)
    router = LogRouter(request.job_dir, console.stream, console.colour, console_ranks={0}, show_host=False)
    return _run(request, plan, sessions, transport, router, on_event)


def _slots(request: TrainRequest) -> dict[str, int | None]:
    assert request.hosts is not None
    return {host.name: request.nproc or host.slots for host in request.hosts}


def remote_targets(
    request: TrainRequest, addresses: dict[str, str], nprocs: dict[str, int]
) -> list[NodeTarget]:
    assert request.hosts is not None
    return [NodeTarget(host.name, addresses[host.name], nprocs[host.name]) for host in request.hosts]


def remote_dry_plan(request: TrainRequest) -> LaunchPlan:
    """The remote plan without connecting: addresses from `ssh -G`; `auto` counts as one process."""
    from ccpt.launch.ssh import SshSession

    assert request.hosts is not None
    with SshSession(request.ssh_config, request.connect_timeout, request.fanout) as session:
        addresses = session.addresses([host.name for host in request.hosts])
        nprocs = {host: slots or 1 for host, slots in _slots(request).items()}
        port = request.rdzv_port or rdzv_port_for(request.job.job_id)
        targets = remote_targets(request, addresses, nprocs)
        return build_plan(request.job, targets, port, session.options, check_port=True)


def run_remote(request: TrainRequest, console: Console, on_event: EventSink) -> JobResult:
    """Resolve, open one session per host and probe it, judge, sync, then run the job."""
    from ccpt.launch.ssh import SshSession

    assert request.hosts is not None
    check_entry(request.job)
    job = request.job
    names = [host.name for host in request.hosts]
    slots = _slots(request)
    port = request.rdzv_port or rdzv_port_for(job.job_id)
    with SshSession(request.ssh_config, request.connect_timeout, request.fanout) as session:
        addresses = session.addresses(names)
        transport = session.transport(job.python, job.job_id, job.grace)
        # Process counts are not known yet (auto), but a session's argv does not depend on them.
        unsized = remote_targets(request, addresses, dict.fromkeys(names, 1))
        waiting = build_plan(job, unsized, port, session.options, check_port=True)
        on_event(JobEvent("stage", f"pre-flight on {len(names)} host{'s' if len(names) != 1 else ''}"))
        sessions = open_sessions(
            waiting.nodes, transport, request.fanout, timeout=request.connect_timeout + 50
        )
        probes = [s.probe for s in sessions]
        report = evaluate(probes, slots, job.torchrun, request.sync, port)
        on_event(PreflightEvent("preflight", "pre-flight findings", report=report))
        if not report.ok:
            close_sessions(sessions)
            more = f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""
            raise CcptError(
                f"pre-flight failed: {report.problems[0]}{more}",
                hint="fix the hosts above, or leave them out with --exclude",
            )
        if request.sync:
            try:
                _sync(request, session, names, on_event)
            except BaseException:
                close_sessions(sessions)
                raise
        sized = remote_targets(request, addresses, resolved_slots(probes, slots))
        plan = build_plan(job, sized, port, session.options, check_port=True)
        router = LogRouter(request.job_dir, console.stream, console.colour, console_ranks=None)
        result = _run(request, plan, sessions, transport, router, on_event)
    retries = sum(probe.retries for probe in probes)
    _record(request, "ssh.json", {"hosts": names, "addresses": addresses, "handshake_retries": retries})
    return result


def _sync(request: TrainRequest, session: SshSession, names: Sequence[str], on_event: EventSink) -> None:
    on_event(JobEvent("stage", f"syncing {request.job.workdir} to {len(names)} hosts"))
    results = session.sync(names, request.job.workdir, request.sync_excludes)
    failed = [(host, result) for host, result in results.items() if not result.ok]
    if failed:
        host, result = failed[0]
        raise CcptError(
            f"--sync failed on {host}: {describe_failure(result.returncode, result.stderr)}",
            hint="check rsync on that host and its disk space",
        )


def _run(
    request: TrainRequest,
    plan: LaunchPlan,
    sessions: Sequence[NodeSession],
    transport: Transport,
    router: LogRouter,
    on_event: EventSink,
) -> JobResult:
    _record(request, "plan.json", plan.to_dict())
    on_event(JobEvent("plan", f"job {plan.job_id}: {len(plan.nodes)} node(s), world size {plan.world_size}"))
    result = run_job(plan, sessions, transport, router, request.job.grace, on_event)
    _record(request, "summary.json", result.to_dict())
    return result


def _record(request: TrainRequest, name: str, data: object) -> None:
    request.job_dir.mkdir(parents=True, exist_ok=True)
    (request.job_dir / name).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def dry_plan(request: TrainRequest) -> LaunchPlan:
    """The plan `--dry-run` shows; starts nothing on any host (`auto` shown as one process)."""
    if request.hosts is None:
        from ccpt.launch.local import free_port

        check_entry(request.job)
        target = NodeTarget(None, "127.0.0.1", request.nproc or 1)
        return build_plan(request.job, [target], request.rdzv_port or free_port())
    return remote_dry_plan(request)
