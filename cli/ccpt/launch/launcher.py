"""`ccpt train` end to end: pick the nodes, check them, sync, plan, run, record.

Local: one node on this machine. Remote: resolve every host's address (ssh -G), open one master
per host and probe them all in parallel, judge the findings (abort on any problem), rsync the
project if asked, build the plan and run it. Progress is reported through `on_event`; the
command renders it. Each run leaves `RUN_DIR/JOB_ID/` with `plan.json`, the logs and
`summary.json`.
"""

from __future__ import annotations

import importlib.util
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


def local_plan(request: TrainRequest, gpus: int, port: int) -> LaunchPlan:
    nproc = request.nproc or max(gpus, 1)
    if gpus and nproc > gpus:
        raise CcptError(f"--nproc-per-node {nproc} but this machine has {gpus} GPUs", exit_code=2)
    return build_plan(request.job, [NodeTarget(None, "127.0.0.1", nproc)], request.rdzv_port or port)


def run_local(request: TrainRequest, console: Console, on_event: EventSink) -> JobResult:
    from ccpt.launch.local import LocalTransport, free_port
    from ccpt.launch.probe import count_gpus

    check_entry(request.job)
    if request.job.torchrun and importlib.util.find_spec("torch") is None:
        raise CcptError("torch is not installed here", hint="pip install 'ccpt[ml]'")
    plan = local_plan(request, count_gpus(), free_port())
    router = LogRouter(request.job_dir, console.stream, console.colour, console_ranks={0}, show_host=False)
    return _run(
        request,
        plan,
        LocalTransport(request.job.python, request.job.job_id, request.job.grace),
        router,
        on_event,
    )


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
        return build_plan(request.job, remote_targets(request, addresses, nprocs), port, session.options)


def run_remote(request: TrainRequest, console: Console, on_event: EventSink) -> JobResult:
    from ccpt.launch.ssh import SshSession

    assert request.hosts is not None
    check_entry(request.job)
    names = [host.name for host in request.hosts]
    slots = _slots(request)
    with SshSession(request.ssh_config, request.connect_timeout, request.fanout) as session:
        addresses = session.addresses(names)
        port = request.rdzv_port or rdzv_port_for(request.job.job_id)
        on_event(JobEvent("stage", f"pre-flight on {len(names)} hosts"))
        probes = session.probe(names, request.job.python, request.job.workdir, port)
        report = evaluate(probes, slots, request.job.torchrun, request.sync, port)
        on_event(PreflightEvent("preflight", "pre-flight findings", report=report))
        if not report.ok:
            raise CcptError(
                f"pre-flight failed: {report.problems[0]}"
                + (f" (and {len(report.problems) - 1} more)" if len(report.problems) > 1 else ""),
                hint="fix the hosts above, or leave them out with --exclude",
            )
        if request.sync:
            _sync(request, session, names, on_event)
        plan = build_plan(
            request.job,
            remote_targets(request, addresses, resolved_slots(probes, slots)),
            port,
            session.options,
        )
        router = LogRouter(request.job_dir, console.stream, console.colour, console_ranks=None)
        transport = session.transport(request.job.python, request.job.job_id, request.job.grace)
        result = _run(request, plan, transport, router, on_event)
        retries = session.retries
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
    request: TrainRequest, plan: LaunchPlan, transport: Transport, router: LogRouter, on_event: EventSink
) -> JobResult:
    _record(request, "plan.json", plan.to_dict())
    on_event(JobEvent("plan", f"job {plan.job_id}: {len(plan.nodes)} node(s), world size {plan.world_size}"))
    result = run_job(plan, transport, router, request.job.grace, on_event)
    _record(request, "summary.json", result.to_dict())
    return result


def _record(request: TrainRequest, name: str, data: object) -> None:
    request.job_dir.mkdir(parents=True, exist_ok=True)
    (request.job_dir / name).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def dry_plan(request: TrainRequest) -> LaunchPlan:
    """The plan `--dry-run` shows; starts nothing on any host."""
    if request.hosts is None:
        from ccpt.launch.local import free_port
        from ccpt.launch.probe import count_gpus

        check_entry(request.job)
        return local_plan(request, count_gpus(), free_port())
    return remote_dry_plan(request)
