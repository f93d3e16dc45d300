"""`ccpt train`: the project's training entry under torchrun, here or over SSH on many hosts."""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ccpt.commands.common import AWS_ENDPOINT, AWS_PROFILE, AWS_REGION, load_settings
from ccpt.commands.output import console, err_console, make_table, print_json, styled_status
from ccpt.errors import CcptError

if TYPE_CHECKING:
    from ccpt.config import Settings
    from ccpt.launch.hostfile import HostEntry
    from ccpt.launch.job import JobEvent, JobResult
    from ccpt.launch.launcher import TrainRequest
    from ccpt.launch.plan import JobSpec, LaunchPlan
    from ccpt.launch.preflight import PreflightReport


def train(
    script_args: list[str] = typer.Argument(
        None, metavar="[-- SCRIPT_ARGS...]", help="Arguments for the training script, after `--`."
    ),
    nproc_per_node: str = typer.Option(
        "auto", "--nproc-per-node", help="Processes per node: a number, or auto (one per GPU, else 1)."
    ),
    hosts: str = typer.Option(
        None, "--hosts", help="Comma-separated hosts: names, IPs or ssh config aliases."
    ),
    hostfile: Path = typer.Option(
        None, "--hostfile", help="DeepSpeed-style hostfile: `HOST slots=N` a line."
    ),
    ec2_tag: str = typer.Option(None, "--ec2-tag", help="Use the running EC2 instances tagged KEY=VALUE."),
    ec2_address: str = typer.Option(
        "private", "--ec2-address", help="With --ec2-tag: private or public IPs."
    ),
    nodes: int = typer.Option(None, "--nodes", help="Use only the first N hosts."),
    include: str = typer.Option(None, "--include", help="Use only these hosts (comma-separated)."),
    exclude: str = typer.Option(None, "--exclude", help="Leave these hosts out (comma-separated)."),
    ssh_config: str = typer.Option(
        None, "--ssh-config", help="ssh client config file (default: ~/.ssh/config)."
    ),
    connect_timeout: int = typer.Option(
        10, "--connect-timeout", help="Seconds to wait for each ssh connection."
    ),
    fanout: int = typer.Option(8, "--fanout", help="Hosts contacted at once when connecting."),
    python: str = typer.Option(
        None, "--python", help="Python on the nodes (default: this ccpt's interpreter)."
    ),
    sync: bool = typer.Option(
        False, "--sync", help="rsync the project (minus .gitignore'd files) to every host."
    ),
    env: list[str] = typer.Option(None, "--env", "-e", help="NAME=VALUE for every process; repeatable."),
    max_restarts: int = typer.Option(0, "--max-restarts", help="torchrun restarts of a failed worker group."),
    rdzv_port: int = typer.Option(
        None, "--rdzv-port", help="Rendezvous port on the first node (default: free)."
    ),
    entry: str = typer.Option(
        None, "--entry", help="Training script and its fixed args (setting train_entry)."
    ),
    run_dir: str = typer.Option(
        None, "--run-dir", help="Where run logs go (setting run_dir; default runs/)."
    ),
    job_id: str = typer.Option(None, "--job-id", help="Name this run (default: time stamp + random)."),
    no_torchrun: bool = typer.Option(
        False,
        "--no-torchrun",
        help="Run the entry once per node with plain python (scripts with own workers).",
    ),
    grace: float = typer.Option(5.0, "--grace", help="Seconds between SIGTERM and SIGKILL at teardown."),
    dry_run: bool = typer.Option(
        False, "--dry-run", help="Print the exact command for every node; start nothing."
    ),
    json_output: bool = typer.Option(False, "--json", help="With --dry-run: print the plan as JSON."),
    region: str = AWS_REGION,
    profile: str = AWS_PROFILE,
    endpoint_url: str = AWS_ENDPOINT,
) -> None:
    """Run the project's training entry (`train_entry`, e.g. `src/runner.py train`) under torchrun.

    Locally by default; with --hosts, --hostfile or --ec2-tag, one torchrun per host over SSH
    after a parallel pre-flight. Logs of every rank go to RUN_DIR/JOB_ID/; rank 0 (locally) or
    every rank with a host:rank prefix (multi-node) is shown here. Ctrl-C or any failing node
    ends the job everywhere; the exit code is the job's.
    """
    settings = load_settings(
        train_entry=entry,
        run_dir=run_dir,
        ssh_config=ssh_config,
        region=region,
        profile=profile,
        endpoint_url=endpoint_url,
    )
    if json_output and not dry_run:
        raise CcptError("--json works with --dry-run only", exit_code=2)
    host_list = _hosts(settings, hosts, hostfile, ec2_tag, ec2_address, nodes, include, exclude)
    if host_list is None and sync:
        raise CcptError("--sync needs --hosts, --hostfile or --ec2-tag", exit_code=2)
    job = _job(settings, host_list is not None, script_args or [], python, env or [], job_id)
    job = replace(job, max_restarts=max_restarts, torchrun=not no_torchrun, grace=grace)
    request = _request(settings, job, host_list, nproc_per_node)
    request = replace(request, rdzv_port=rdzv_port, connect_timeout=connect_timeout, fanout=fanout, sync=sync)
    if dry_run:
        from ccpt.launch.launcher import dry_plan

        plan = dry_plan(request)
        print_json(plan.to_dict()) if json_output else _print_plan(plan)
        return
    result = _launch(request)
    _print_summary(request, result)
    raise typer.Exit(result.exit_code)


def _hosts(
    settings: Settings,
    hosts: str | None,
    hostfile: Path | None,
    ec2_tag: str | None,
    ec2_address: str,
    nodes: int | None,
    include: str | None,
    exclude: str | None,
) -> list[HostEntry] | None:
    """The hosts to use, or None for a local run."""
    from ccpt.launch import hostfile as hostfiles

    given = [
        flag
        for flag, value in (("--hosts", hosts), ("--hostfile", hostfile), ("--ec2-tag", ec2_tag))
        if value
    ]
    if len(given) > 1:
        raise CcptError(
            f"{' and '.join(given)} cannot be combined", hint="pick one source of hosts", exit_code=2
        )
    if ec2_address != "private" and not ec2_tag:
        raise CcptError("--ec2-address needs --ec2-tag", exit_code=2)
    if not given:
        if nodes is not None or include or exclude:
            raise CcptError("--nodes/--include/--exclude need --hosts, --hostfile or --ec2-tag", exit_code=2)
        return None
    if hosts:
        entries = hostfiles.parse_hosts_flag(hosts)
    elif hostfile:
        entries = hostfiles.read_hostfile(hostfile)
    else:
        from ccpt.launch.ec2 import Ec2, parse_tag

        assert ec2_tag is not None  # the one source of hosts left in `given`
        client = Ec2(settings.region, settings.profile, settings.endpoint_url)
        entries = [
            hostfiles.HostEntry(address)
            for address in client.addresses_by_tag(parse_tag(ec2_tag), ec2_address)
        ]
    return hostfiles.select_hosts(
        entries,
        nodes,
        hostfiles.split_names(include, "--include") if include else (),
        hostfiles.split_names(exclude, "--exclude") if exclude else (),
    )


def _job(
    settings: Settings,
    remote: bool,
    script_args: list[str],
    python: str | None,
    env_flags: list[str],
    job_id: str | None,
) -> JobSpec:
    from ccpt.launch.plan import (
        ENV_FILE,
        JobSpec,
        check_job_id,
        collect_env,
        entry_argv,
        new_job_id,
        parse_env_file,
    )

    workdir = _workdir(settings)
    env_path = workdir / ENV_FILE
    env_file = parse_env_file(_read_env_file(env_path), str(env_path)) if env_path.is_file() else {}
    return JobSpec(
        job_id=check_job_id(job_id) if job_id else new_job_id(),
        python=python or sys.executable,
        workdir=str(workdir),
        entry=entry_argv(settings.train_entry),
        script_args=script_args,
        env=collect_env(os.environ, env_file, env_flags, remote=remote),
    )


def _read_env_file(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CcptError(f"cannot read {path}: {exc.strerror}", exit_code=2) from exc
    except UnicodeDecodeError as exc:
        raise CcptError(f"cannot read {path}: not UTF-8 text", exit_code=2) from exc


def _workdir(settings: Settings) -> Path:
    """The project root: where the settings file was found, else the current directory."""
    return (settings.project_root or Path.cwd()).resolve()


def _request(
    settings: Settings, job: JobSpec, hosts: list[HostEntry] | None, nproc_per_node: str
) -> TrainRequest:
    from ccpt.launch.launcher import TrainRequest

    run_root = Path(settings.run_dir)
    return TrainRequest(
        job=job,
        run_dir=run_root if run_root.is_absolute() else _workdir(settings) / run_root,
        hosts=hosts,
        nproc=_nproc(nproc_per_node),
        ssh_config=settings.ssh_config,
        sync_excludes=[] if run_root.is_absolute() else [settings.run_dir],
    )


def _nproc(value: str) -> int | None:
    if value == "auto":
        return None
    if not value.isdigit() or int(value) < 1:
        raise CcptError(f"--nproc-per-node must be auto or a positive number, got {value!r}", exit_code=2)
    return int(value)


def _launch(request: TrainRequest) -> JobResult:
    from ccpt.launch.launcher import Console, run_local, run_remote

    colour = sys.stdout.isatty() and "NO_COLOR" not in os.environ
    output = Console(sys.stdout, colour)
    err_console.print(
        f"[dim]job {request.job.job_id} · logs in {request.job_dir}[/dim]", highlight=False, soft_wrap=True
    )
    if (Path(request.job.workdir) / "src" / "server.py").is_file():  # a project from `ccpt new`
        err_console.print(
            "[dim]dashboard: run `python src/runner.py serve --port 8000` in another terminal, "
            "then open http://127.0.0.1:8000/runs[/dim]",
            highlight=False,
            soft_wrap=True,
        )
    if request.hosts is None:
        return run_local(request, output, _show_event)
    return run_remote(request, output, _show_event)


def _show_event(event: JobEvent) -> None:
    from ccpt.launch.launcher import PreflightEvent

    if isinstance(event, PreflightEvent) and event.report is not None:
        _show_preflight(event.report)
        return
    style = {"stopping": "yellow", "forcing": "red"}.get(event.kind, "dim")
    err_console.print(f"[{style}]· {event.message}[/{style}]", highlight=False, markup=True)


def _show_preflight(report: PreflightReport) -> None:
    """What each host offers, in a table without the columns no host could fill (an unreachable
    host tells nothing), then each problem as a line of its own: a sentence squeezed into a
    table column reads as a few letters a line."""
    from rich.markup import escape

    columns = ["host", "status", "python", "torch", "cuda", "gpus", "procs", "workdir", "port"]
    rows = [
        [
            f.host,
            styled_status("OK" if f.ok else "FAIL"),
            f.python,
            f.torch,
            f.cuda,
            f.gpus,
            f.slots,
            f.workdir,
            f.port,
        ]
        for f in report.findings
    ]
    shown = [i for i in range(len(columns)) if i < 2 or any(row[i] != "-" for row in rows)]
    table = make_table("pre-flight", [columns[i] for i in shown], [[row[i] for i in shown] for row in rows])
    err_console.print(table)
    for problem in report.problems:
        err_console.print(f"[red]✗[/red] {escape(problem)}", highlight=False)


def _print_plan(plan: LaunchPlan) -> None:
    from ccpt.launch.plan import masked_env

    _plain(
        f"job {plan.job_id} · {len(plan.nodes)} node(s) · world size {plan.world_size} · "
        f"rendezvous {plan.rdzv_endpoint}"
    )
    for node in plan.nodes:
        where = f"node rank {node.node_rank}, address {node.address}, {node.nproc} process(es)"
        _plain(f"\n# {node.label}: {where}")
        _plain(shlex.join(node.argv))
        if node.remote_command:
            _plain(f"# remote command: {node.remote_command}")
        _plain(f"# after pre-flight, on stdin, the command: {shlex.join(node.command)}")
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in masked_env(node.env).items())
        _plain(f"# and its environment: {env}")


def _plain(text: str) -> None:
    """A line printed as is: commands hold brackets that rich would read as markup."""
    console.print(text, highlight=False, markup=False, soft_wrap=True)


def _print_summary(request: TrainRequest, result: JobResult) -> None:
    where = request.job_dir
    if result.exit_code == 0:
        err_console.print(
            f"[green]✓[/green] job {result.job_id} finished in {result.duration_s:.1f} s · logs: {where}",
            highlight=False,
            soft_wrap=True,
        )
        return
    if result.interrupted:
        head = f"[yellow]interrupted[/yellow]: job {result.job_id} stopped on every node"
    elif result.failure is not None:
        head = f"[red]✗ job {result.job_id} failed[/red]: {result.failure.where} {result.failure.reason}"
    else:
        head = f"[red]✗ job {result.job_id} failed[/red] (exit code {result.exit_code})"
    if result.teardown_s is not None:
        head += f" · teardown {result.teardown_s:.1f} s"
    err_console.print(head, highlight=False, soft_wrap=True)
    if result.failure is not None and result.failure.last_lines:
        err_console.print(f"[dim]last lines of {result.failure.lines_of}:[/dim]", highlight=False)
        for line in result.failure.last_lines:
            err_console.print(f"  {line}", highlight=False, markup=False, soft_wrap=True)
    err_console.print(f"[dim]logs: {where}[/dim]", highlight=False, soft_wrap=True)
