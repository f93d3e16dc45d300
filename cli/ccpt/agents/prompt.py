"""Assemble the Messages API request for a consultation.

The system prompt is laid out for the prompt cache: the team charter (identical for every
role), then the role's own prompt, each ending in a `cache_control` breakpoint, then whatever
changes per call (a task spec, `--system` text). So a second question to any role reads the
charter from the cache, and a second question to the same role reads charter and role.
Attached files and standard input travel in the user turn, each labelled with where it came
from.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpt.agents.models import model_card
from ccpt.agents.roster import Role
from ccpt.errors import CcptError

CACHE_CONTROL = {"type": "ephemeral"}
MAX_ATTACHMENT_BYTES = 256 * 1024
# Claude's tokenizer averages a little under four characters of English per token; dividing
# by four slightly undercounts, so an estimate that clears a cache floor really clears it.
CHARS_PER_TOKEN = 4.0


@dataclass(frozen=True)
class Attachment:
    """Text sent with the question: a file (labelled with its path), standard input, or another
    role's answer (labelled with the role) in a team exchange."""

    label: str
    text: str
    kind: str = "file"  # file | stdin | answer

    def render(self) -> str:
        if self.kind == "stdin":
            return f"<stdin>\n{self.text}\n</stdin>"
        if self.kind == "answer":
            return f'<answer from="{self.label}">\n{self.text}\n</answer>'
        return f'<file path="{self.label}">\n{self.text}\n</file>'


def read_attachment(path: Path) -> Attachment:
    """A text file as an attachment; binary, huge or missing files are refused with a clear line."""
    if not path.exists():
        raise CcptError(f"--file {path}: no such file", exit_code=2)
    if not path.is_file():
        raise CcptError(f"--file {path}: not a regular file", hint="attach files one by one", exit_code=2)
    size = path.stat().st_size
    if size > MAX_ATTACHMENT_BYTES:
        raise CcptError(
            f"--file {path}: {size // 1024} KiB is over the {MAX_ATTACHMENT_BYTES // 1024} KiB limit",
            hint="attach the relevant part (e.g. `tail -n 200 log | ccpt agent ...`)",
            exit_code=2,
        )
    data = path.read_bytes()
    if b"\x00" in data:
        raise CcptError(f"--file {path}: looks binary", hint="attach text files only", exit_code=2)
    return Attachment(label=str(path), text=data.decode("utf-8", errors="replace"))


def stdin_attachment(text: str) -> Attachment:
    if len(text.encode()) > MAX_ATTACHMENT_BYTES:
        raise CcptError(
            f"standard input is over the {MAX_ATTACHMENT_BYTES // 1024} KiB limit",
            hint="pipe in the relevant part (e.g. `tail -n 200`)",
            exit_code=2,
        )
    return Attachment(label="stdin", text=text, kind="stdin")


def gather_attachments(files: Iterable[Path], stdin_text: str | None) -> list[Attachment]:
    """The --file attachments, then piped standard input when it holds more than whitespace."""
    attachments = [read_attachment(path) for path in files]
    if stdin_text and stdin_text.strip():
        attachments.append(stdin_attachment(stdin_text))
    return attachments


def estimate_tokens(text: str) -> int:
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def system_blocks(charter: str, role: Role, context: Sequence[str] = ()) -> list[dict[str, Any]]:
    """Charter and role (each a cache breakpoint), then the per-call context (not cached)."""
    role_text = f"You are {role.title}, one of the specialists on the team described above.\n\n{role.prompt}"
    blocks: list[dict[str, Any]] = [
        {"type": "text", "text": charter, "cache_control": dict(CACHE_CONTROL)},
        {"type": "text", "text": role_text, "cache_control": dict(CACHE_CONTROL)},
    ]
    extra = "\n\n".join(part.strip() for part in context if part and part.strip())
    if extra:
        blocks.append({"type": "text", "text": extra})
    return blocks


def user_content(question: str, attachments: Sequence[Attachment] = ()) -> str | list[dict[str, Any]]:
    """The user turn: attachments first (so the question reads last), then the question."""
    if not attachments:
        return question
    blocks = [{"type": "text", "text": attachment.render()} for attachment in attachments]
    blocks.append({"type": "text", "text": question})
    return blocks


@dataclass
class ConsultRequest:
    """Everything `messages.create` needs, kept as plain data so it can be printed and logged."""

    model: str
    max_tokens: int
    system: list[dict[str, Any]]
    messages: list[dict[str, Any]]
    tools: list[dict[str, Any]] = field(default_factory=list)
    tool_choice: dict[str, Any] | None = None

    def params(self) -> dict[str, Any]:
        """Keyword arguments for the SDK's `messages.create` / `messages.stream`."""
        params: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_tokens,
            "system": self.system,
            "messages": self.messages,
        }
        if self.tools:
            params["tools"] = self.tools
        if self.tool_choice:
            params["tool_choice"] = self.tool_choice
        return params

    def body(self, stream: bool) -> dict[str, Any]:
        """The JSON body as it goes on the wire."""
        body = json.loads(json.dumps(self.params()))
        if stream:
            body["stream"] = True
        return body

    def cached_prefix(self) -> list[dict[str, Any]]:
        """The system blocks up to and including the last cache breakpoint."""
        last = max((i for i, block in enumerate(self.system) if block.get("cache_control")), default=-1)
        return self.system[: last + 1]


@dataclass(frozen=True)
class CachePlan:
    """Whether the cached prefix is long enough for `model` to cache it at all."""

    model: str
    prefix_tokens: int
    minimum: int
    counted: bool  # True: measured with the token-count endpoint; False: estimated offline
    minimum_assumed: bool

    @property
    def reaches(self) -> bool:
        return self.prefix_tokens >= self.minimum

    def describe(self) -> str:
        how = "counted" if self.counted else "estimated"
        floor = f"{self.minimum:,}" + (" (assumed)" if self.minimum_assumed else "")
        if self.reaches:
            return (
                f"prompt cache: the charter+role prefix is {self.prefix_tokens:,} tokens ({how}), "
                f"over {self.model}'s minimum of {floor}: repeat questions read it from the cache"
            )
        return (
            f"prompt cache: the charter+role prefix is only {self.prefix_tokens:,} tokens ({how}), under "
            f"{self.model}'s minimum of {floor}: it will NOT be cached and every call pays full input price"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "prefix_tokens": self.prefix_tokens,
            "minimum_tokens": self.minimum,
            "minimum_assumed": self.minimum_assumed,
            "counted": self.counted,
            "reaches_minimum": self.reaches,
        }


def cache_plan(request: ConsultRequest, counted_tokens: int | None = None) -> CachePlan:
    """The cache check for `request`, from a token count when one is given, else an estimate."""
    card = model_card(request.model)
    if counted_tokens is None:
        tokens = estimate_tokens("".join(block["text"] for block in request.cached_prefix()))
    else:
        tokens = counted_tokens
    return CachePlan(
        model=request.model,
        prefix_tokens=tokens,
        minimum=card.min_cacheable_tokens,
        counted=counted_tokens is not None,
        minimum_assumed=card.min_cacheable_assumed,
    )
