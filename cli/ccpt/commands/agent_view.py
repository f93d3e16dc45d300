"""Rendering of consultations, shared by `ccpt agent` and `ccpt ask`.

Answers stream as rendered Markdown in a terminal (rich Live) and as plain text when the
output is piped, so `ccpt agent X "..." > answer.md` writes clean Markdown. The usage footer
goes to stderr for the same reason.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any

from ccpt.commands.output import console, err_console

LIVE_REFRESH_S = 0.08


def read_piped_stdin() -> str | None:
    """Standard input when something is piped or redirected in; None for a terminal or nothing."""
    stream = sys.stdin
    if stream is None or stream.closed:
        return None
    try:
        mode = os.fstat(stream.fileno()).st_mode
    except (OSError, ValueError):  # an in-memory stream (tests): read it unless it is a terminal
        return None if stream.isatty() else stream.read()
    if stat.S_ISFIFO(mode) or stat.S_ISREG(mode):
        return stream.read()
    return None


def format_cost(cost: float | None) -> str:
    if cost is None:
        return "cost n/a (model not in the price table)"
    return f"${cost:,.4f}"


def usage_line(model: str, usage: Any, cost: float | None) -> str:
    """`model · input N · output N · cache write N · cache read N · $X`."""
    tokens = (
        f"input {usage.input_tokens:,} · output {usage.output_tokens:,} · "
        f"cache write {usage.cache_write_tokens:,} · cache read {usage.cache_read_tokens:,}"
    )
    return f"{model} · {tokens} · {format_cost(cost)}"


def print_footer(text: str) -> None:
    err_console.print(f"[dim]{text}[/dim]", highlight=False, soft_wrap=True)


def print_notice(text: str) -> None:
    err_console.print(f"[yellow]note:[/yellow] {text}", highlight=False, soft_wrap=True)


def render_stream(deltas: Iterable[str], markdown: bool) -> str:
    """Show text as it arrives; return all of it. Markdown is re-rendered at most every 80 ms."""
    received: list[str] = []
    if not markdown:
        for text in deltas:
            received.append(text)
            sys.stdout.write(text)
            sys.stdout.flush()
        if received and not received[-1].endswith("\n"):
            sys.stdout.write("\n")
        return "".join(received)

    from rich.live import Live
    from rich.markdown import Markdown

    last = 0.0
    with Live(Markdown(""), console=console, refresh_per_second=12, vertical_overflow="visible") as live:
        for text in deltas:
            received.append(text)
            now = time.monotonic()
            if now - last >= LIVE_REFRESH_S:
                live.update(Markdown("".join(received)))
                last = now
        live.update(Markdown("".join(received)))
    return "".join(received)


def print_answer(text: str, markdown: bool) -> None:
    if markdown:
        from rich.markdown import Markdown

        console.print(Markdown(text))
    else:
        sys.stdout.write(text if text.endswith("\n") else text + "\n")


def split_events(events: Iterable[Any], result_type: type) -> tuple[Iterator[str], list[Any]]:
    """Text deltas as an iterator, and a list that receives the final result when it is reached."""
    results: list[Any] = []

    def texts() -> Iterator[str]:
        for event in events:
            if isinstance(event, result_type):
                results.append(event)
            else:
                yield event.text

    return texts(), results
