"""Pre-flight: judge what every host reported before anything starts.

Every node's wrapper prints a probe before it starts anything (sessions.py collects them, in
parallel); this module turns the answers into a table
of findings and the reasons to abort: an unreachable host, a Python, torch or CUDA version that
differs from the first host's, fewer GPUs than processes, a missing working directory (unless
it is synced), or a rendezvous port already taken on the first host.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Probe:
    """One host's answer, or why there is none (`error`)."""

    host: str
    error: str | None = None
    python: str | None = None
    executable: str | None = None
    torch: str | None = None
    cuda: str | None = None
    gpus: int = 0
    cwd_exists: bool = False
    port_free: bool | None = None
    rsync: bool = False
    retries: int = 0

    @classmethod
    def from_json(cls, host: str, data: dict[str, object], retries: int = 0) -> Probe:
        """A probe from the node wrapper's `CCPT-PROBE {...}` line."""

        def text(key: str) -> str | None:
            value = data.get(key)
            return str(value) if value is not None else None

        return cls(
            host=host,
            python=text("python"),
            executable=text("executable"),
            torch=text("torch"),
            cuda=text("cuda"),
            gpus=int(data.get("gpus") or 0),  # type: ignore[call-overload]
            cwd_exists=bool(data.get("cwd_exists")),
            port_free=None if data.get("port_free") is None else bool(data.get("port_free")),
            rsync=bool(data.get("rsync")),
            retries=retries,
        )


def describe_failure(returncode: int, stderr: str) -> str:
    """One line for a failed remote step: ssh's own complaint, or the command's exit."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    if returncode == 255:
        return f"ssh failed: {last}" if last else "ssh failed (exit 255)"
    if returncode == 127:
        return f"command not found: {last}" if last else "command not found (exit 127)"
    return f"exit {returncode}: {last}" if last else f"exit {returncode}"


@dataclass(frozen=True)
class Finding:
    """One row of the pre-flight table."""

    host: str
    python: str
    torch: str
    cuda: str
    gpus: str
    slots: str
    workdir: str
    port: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass(frozen=True)
class PreflightReport:
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return all(finding.ok for finding in self.findings)

    @property
    def problems(self) -> list[str]:
        return [f"{f.host}: {problem}" for f in self.findings for problem in f.problems]


def evaluate(
    probes: Sequence[Probe],
    slots: Mapping[str, int | None],
    needs_torch: bool,
    sync: bool,
    port: int | None,
) -> PreflightReport:
    """Compare every host with the first reachable one and with what the launch needs.

    `slots[host]` is the number of processes planned there (None: one per GPU, else one).
    """
    reference = next((probe for probe in probes if probe.error is None), None)
    findings = []
    for index, probe in enumerate(probes):
        if probe.error is not None:
            findings.append(Finding(probe.host, "-", "-", "-", "-", "-", "-", "-", [probe.error]))
            continue
        assert reference is not None
        problems: list[str] = []
        if needs_torch and probe.torch is None:
            problems.append(f"torch is not installed for {probe.executable or 'the remote python'}")
        for name, value, expected in (
            ("python", probe.python, reference.python),
            ("torch", probe.torch, reference.torch),
            ("CUDA", probe.cuda, reference.cuda),
        ):
            if value != expected and value and expected:
                problems.append(f"{name} {value} differs from {reference.host}'s {expected}")
            elif value != expected and name == "CUDA":
                problems.append(
                    f"CUDA {value or 'none'} differs from {reference.host}'s {expected or 'none'}"
                )
        wanted = slots.get(probe.host)
        if wanted is not None and probe.gpus and wanted > probe.gpus:
            problems.append(f"{wanted} processes asked for but only {probe.gpus} GPUs")
        if not probe.cwd_exists and not sync:
            problems.append("working directory missing (pass --sync, or use a shared filesystem)")
        if sync and not probe.rsync:
            problems.append("rsync is not installed (needed by --sync)")
        port_text = "-"
        if index == 0 and port is not None:
            port_text = f"{port} {'free' if probe.port_free else 'in use'}"
            if not probe.port_free:
                problems.append(f"rendezvous port {port} is in use (pass --rdzv-port)")
        findings.append(
            Finding(
                host=probe.host,
                python=probe.python or "-",
                torch=probe.torch or "missing",
                cuda=probe.cuda or "cpu",
                gpus=str(probe.gpus),
                slots=str(wanted) if wanted is not None else f"auto ({probe.gpus or 1})",
                workdir="present" if probe.cwd_exists else ("synced" if sync else "missing"),
                port=port_text,
                problems=problems,
            )
        )
    return PreflightReport(findings)


def resolved_slots(probes: Sequence[Probe], slots: Mapping[str, int | None]) -> dict[str, int]:
    """Processes per host once the probes are in: the fixed count, else one per GPU, else one."""
    by_host = {probe.host: probe for probe in probes}
    return {
        host: wanted if wanted is not None else max(by_host[host].gpus, 1) for host, wanted in slots.items()
    }
