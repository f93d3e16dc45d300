"""One console stream from many nodes, full logs on disk, and memory that stays flat.

Each node's stdout and stderr arrive as byte chunks. `LogRouter` cuts them into lines, reads the
rank from torchrun's `[rankN]:` prefix, writes every line to `HOST.log` and `rank-N.log` under
the run directory, and echoes the lines the console should show with a coloured `host:rank`
prefix. It keeps only a few last lines per rank and host (for the failure summary) and the
fields of torchrun's "Root Cause" report, so a job's memory does not grow with its output.

When a worker fails, torchrun itself dies of an uncaught ChildFailedError: a traceback through
its own code and a report of every failed rank. The console gets neither (the host's log keeps
both); the launcher's summary names the failed rank, its exit code and its last lines instead.
Any other traceback of torchrun's is echoed as it came.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections import deque
from collections.abc import Container, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, TextIO

_RANK_RE = re.compile(rb"^\[rank(\d+)\]:")
_ROOT_CAUSE = "Root Cause (first observed failure)"
_REPORT_RANK_RE = re.compile(r"^\s*rank\s*:\s*(\d+)")
_REPORT_EXIT_RE = re.compile(r"^\s*exitcode\s*:\s*(-?\d+)")
_TRACEBACK = "Traceback (most recent call last):"
_CHILD_FAILED = "torch.distributed.elastic.multiprocessing.errors.ChildFailedError"
_UNSAFE_FILE_CHARS = re.compile(r"[^A-Za-z0-9._-]")
_COLOURS = ("36", "33", "35", "32", "34", "91", "96", "93")
TAIL_LINES = 20
MAX_LINE_BYTES = 64 * 1024  # a line longer than this is cut, so one endless line cannot fill memory


@dataclass
class RootCause:
    """The first failure torchrun reported on one host."""

    rank: int | None = None
    exit_code: int | None = None


@dataclass
class _HostState:
    colour: str
    log: BinaryIO
    partial: dict[str, bytearray]
    tail: deque[str]
    in_report: bool = False
    root_cause: RootCause | None = None
    muted: bool = False
    held: list[str] | None = None  # an unranked traceback, echoed once it is not torchrun's failure
    report_rules_left: int = 0  # inside torchrun's ChildFailedError report: its "=====" rules to come


class LogRouter:
    """Routes node output to files and the console; `console_ranks=None` shows every rank."""

    def __init__(
        self,
        log_dir: Path,
        console: TextIO,
        colour: bool = False,
        console_ranks: Container[int] | None = None,
        show_host: bool = True,
    ) -> None:
        self.log_dir = log_dir
        self.console = console
        self.colour = colour
        self.console_ranks = console_ranks
        self.show_host = show_host
        self.lines = 0
        self._hosts: dict[str, _HostState] = {}
        self._rank_logs: dict[int, BinaryIO] = {}
        self._rank_tails: dict[int, deque[str]] = {}
        self._rank_hosts: dict[int, str] = {}
        log_dir.mkdir(parents=True, exist_ok=True)

    def add_host(self, host: str) -> None:
        if host not in self._hosts:
            path = self.log_dir / f"{_UNSAFE_FILE_CHARS.sub('_', host)}.log"
            self._hosts[host] = _HostState(
                colour=_COLOURS[len(self._hosts) % len(_COLOURS)],
                log=path.open("ab"),
                partial={"out": bytearray(), "err": bytearray()},
                tail=deque(maxlen=TAIL_LINES),
            )

    def feed(self, host: str, stream: str, chunk: bytes) -> None:
        """Take a chunk of a host's stdout ('out') or stderr ('err'); complete lines are routed."""
        state = self._hosts[host]
        buffer = state.partial[stream]
        buffer += chunk
        if b"\n" not in chunk:
            if len(buffer) > MAX_LINE_BYTES:
                self._route(host, state, bytes(buffer))
                buffer.clear()
            return
        *lines, rest = buffer.split(b"\n")
        for line in lines:
            self._route(host, state, line)
        buffer[:] = rest

    def finish(self, host: str, stream: str) -> None:
        """The stream ended: route what is left of its last line."""
        state = self._hosts[host]
        buffer = state.partial[stream]
        if buffer:
            self._route(host, state, bytes(buffer))
            buffer.clear()

    def _route(self, host: str, state: _HostState, raw: bytes | bytearray) -> None:
        self.lines += 1
        raw = raw.rstrip(b"\r")
        match = _RANK_RE.match(raw)
        rank = int(match.group(1)) if match else None
        if match:
            raw = raw[match.end() :]
            raw = raw[1:] if raw.startswith(b" ") else raw
        text = raw.decode("utf-8", errors="replace")
        label = host if rank is None else f"{host}:{rank}"
        state.log.write(f"{label} | ".encode() + raw + b"\n")
        if rank is None:
            self._read_report(state, text)
            if self._launcher_failure(host, state, text):
                return  # kept out of the tail too: the summary shows what the job printed
        state.tail.append(text)
        if rank is not None:
            self._rank_hosts[rank] = host
            self._rank_file(rank).write(raw + b"\n")
            self._rank_tails.setdefault(rank, deque(maxlen=TAIL_LINES)).append(text)
        if state.muted:
            return
        if self.console_ranks is None or rank is None or rank in self.console_ranks:
            self._echo(label, state.colour, text)

    def _launcher_failure(self, host: str, state: _HostState, text: str) -> bool:
        """Whether an unranked line belongs to torchrun's own failure traceback and report (kept
        off the console). A traceback is held until its exception line shows whose it is."""
        if state.held is not None:
            state.held.append(text)
            if not text or text[0].isspace() or text == _TRACEBACK:
                return True
            held, state.held = state.held, None
            if text.startswith(_CHILD_FAILED):
                state.report_rules_left = 2
            elif not state.muted:
                for line in held:
                    self._echo(host, state.colour, line)
            return True
        if text == _TRACEBACK:
            state.held = [text]
            return True
        if text.startswith(_CHILD_FAILED):
            state.report_rules_left = 2
            return True
        if state.report_rules_left:
            # The report opens and closes with a rule of "=" (rules of "-" part its sections).
            if text.startswith("===="):
                state.report_rules_left -= 1
            return True
        return False

    def _echo(self, label: str, colour: str, text: str) -> None:
        if not self.show_host:
            line = text + "\n"
        elif self.colour:
            line = f"\x1b[{colour}m{label}\x1b[0m | {text}\n"
        else:
            line = f"{label} | {text}\n"
        try:
            self.console.write(line)
        except BrokenPipeError:
            # The reader went away (`ccpt train | head`): the job goes on, its logs go to files.
            broken, self.console = self.console, open(os.devnull, "w")  # noqa: SIM115
            if broken is sys.stdout:  # else Python complains when it flushes stdout at exit
                with contextlib.suppress(OSError):
                    os.dup2(self.console.fileno(), sys.stdout.fileno())

    def _rank_file(self, rank: int) -> BinaryIO:
        handle = self._rank_logs.get(rank)
        if handle is None:
            handle = self._rank_logs[rank] = (self.log_dir / f"rank-{rank}.log").open("ab")
        return handle

    def _read_report(self, state: _HostState, text: str) -> None:
        """Pick the rank and exit code out of torchrun's "Root Cause" block."""
        if _ROOT_CAUSE in text:
            state.in_report = True
            state.root_cause = RootCause()
            return
        if not state.in_report or state.root_cause is None:
            return
        if state.root_cause.rank is None and (match := _REPORT_RANK_RE.match(text)):
            state.root_cause.rank = int(match.group(1))
        elif state.root_cause.exit_code is None and (match := _REPORT_EXIT_RE.match(text)):
            state.root_cause.exit_code = int(match.group(1))
        if state.root_cause.rank is not None and state.root_cause.exit_code is not None:
            state.in_report = False

    def mute(self, hosts: Iterable[str]) -> None:
        """Stop echoing these hosts (their files keep everything): e.g. nodes being torn down."""
        for host in hosts:
            self._hosts[host].muted = True

    def root_cause(self, host: str) -> RootCause | None:
        return self._hosts[host].root_cause

    def last_lines(self, host: str, rank: int | None = None, count: int = 10) -> list[str]:
        """The last lines a rank printed, else (see `printed`) the last lines of its host."""
        if rank is not None and self.printed(rank):
            return list(self._rank_tails[rank])[-count:]
        return list(self._hosts[host].tail)[-count:]

    def printed(self, rank: int) -> bool:
        """Whether a rank printed anything (one that fails silently, because rank 0 reports for
        every process, has no lines of its own)."""
        return rank in self._rank_tails

    def ranks_on(self, host: str) -> list[int]:
        return sorted(rank for rank, owner in self._rank_hosts.items() if owner == host)

    def flush(self) -> None:
        with contextlib.suppress(BrokenPipeError):
            self.console.flush()
        for state in self._hosts.values():
            state.log.flush()
        for handle in self._rank_logs.values():
            handle.flush()

    def close(self) -> None:
        for host, state in self._hosts.items():
            for stream in ("out", "err"):
                self.finish(host, stream)
            if state.held and not state.muted:  # the output ended inside a traceback: show it
                for line in state.held:
                    self._echo(host, state.colour, line)
            state.held = None
        self.flush()
        for state in self._hosts.values():
            state.log.close()
        for handle in self._rank_logs.values():
            handle.close()
