"""Hosts for a multi-node launch: DeepSpeed-style hostfiles, `--hosts` lists, and selection.

A hostfile holds one host per line, `HOST [slots=N]`, with `#` comments and blank lines, as
DeepSpeed's launcher reads it. Every host name is checked here, before it reaches ssh, rsync or a
log file name: a name that could be read as an option (`-oProxyCommand=...`) or that carries
shell syntax is refused with the line it came from.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from ccpt.errors import CcptError

# user@host, where host is a DNS name, an IPv4 address or a bracketed IPv6 address.
_HOST_RE = re.compile(
    r"^(?:[A-Za-z0-9._][A-Za-z0-9._~-]*@)?(?:[A-Za-z0-9_][A-Za-z0-9._-]*|\[[0-9A-Fa-f:.%]+\])$"
)
_SLOTS_RE = re.compile(r"^slots=(\d+)$")


@dataclass(frozen=True)
class HostEntry:
    """One host of a launch; `slots` is the number of processes to start there, if fixed."""

    name: str
    slots: int | None = None


def check_host_name(name: str, where: str = "") -> str:
    """Return `name` if it is a plain host name (optionally user@), else raise a clear error."""
    if not _HOST_RE.match(name):
        place = f"{where}: " if where else ""
        raise CcptError(
            f"{place}bad host name {name!r}",
            hint="use a host name, an IP address, user@host, or an alias from your ssh config",
            exit_code=2,
        )
    return name


def parse_hostfile(text: str, source: str = "hostfile") -> list[HostEntry]:
    """Parse DeepSpeed's hostfile format; a bad line is reported with its line number."""
    entries: list[HostEntry] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{source}:{number}"
        name, *rest = line.split()
        check_host_name(name, where)
        slots = None
        for field in rest:
            match = _SLOTS_RE.match(field)
            if not match:
                raise CcptError(
                    f"{where}: cannot read {field!r} in {raw.strip()!r}",
                    hint="each line is `HOST slots=N` (slots optional), e.g. `worker-1 slots=8`",
                    exit_code=2,
                )
            if slots is not None:
                raise CcptError(f"{where}: slots given twice for {name}", exit_code=2)
            slots = int(match.group(1))
            if slots < 1:
                raise CcptError(f"{where}: slots must be at least 1, got {slots}", exit_code=2)
        if name in seen:
            raise CcptError(f"{where}: host {name} is already listed on line {seen[name]}", exit_code=2)
        seen[name] = number
        entries.append(HostEntry(name, slots))
    if not entries:
        raise CcptError(
            f"{source}: no hosts in the file", hint="one line per host: `HOST slots=N`", exit_code=2
        )
    return entries


def read_hostfile(path: Path) -> list[HostEntry]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CcptError(f"cannot read hostfile {path}: {exc.strerror}", exit_code=2) from exc
    except UnicodeDecodeError as exc:
        raise CcptError(f"cannot read hostfile {path}: not UTF-8 text", exit_code=2) from exc
    return parse_hostfile(text, str(path))


def split_names(value: str, flag: str) -> list[str]:
    """A comma-separated list from a flag, each name checked, duplicates refused."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    if not names:
        raise CcptError(f"{flag}: no host names given", hint=f"e.g. {flag} node0,node1", exit_code=2)
    for name in names:
        check_host_name(name, flag)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CcptError(f"{flag}: {', '.join(duplicates)} listed more than once", exit_code=2)
    return names


def parse_hosts_flag(value: str) -> list[HostEntry]:
    return [HostEntry(name) for name in split_names(value, "--hosts")]


def select_hosts(
    hosts: Sequence[HostEntry],
    nodes: int | None = None,
    include: Iterable[str] = (),
    exclude: Iterable[str] = (),
) -> list[HostEntry]:
    """Apply --include, then --exclude, then take the first --nodes hosts (order is kept)."""
    include, exclude = list(include), list(exclude)
    known = {host.name for host in hosts}
    for flag, names in (("--include", include), ("--exclude", exclude)):
        unknown = [name for name in names if name not in known]
        if unknown:
            raise CcptError(
                f"{flag}: {', '.join(unknown)} not among the hosts",
                hint=f"hosts: {', '.join(host.name for host in hosts)}",
                exit_code=2,
            )
    chosen = [h for h in hosts if (not include or h.name in include) and h.name not in exclude]
    if not chosen:
        raise CcptError("no hosts left after --include/--exclude", exit_code=2)
    if nodes is not None:
        if nodes < 1:
            raise CcptError(f"--nodes must be at least 1, got {nodes}", exit_code=2)
        if nodes > len(chosen):
            raise CcptError(f"--nodes {nodes} asks for more hosts than the {len(chosen)} given", exit_code=2)
        chosen = chosen[:nodes]
    return chosen
