"""One consultation with one role: build the request, send it, log the answer.

`prepare_consultation` is pure apart from reading files and the history (so `--dry-run` can
print its request without a key or a network); `run_consultation` sends it and yields the
answer as it streams, then a `ConsultResult`. Whatever happens after the first byte (a cut
stream, Ctrl-C) the partial answer is logged before the error reaches the user.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpt.agents import client as claude
from ccpt.agents.history import Entry, History, new_conversation_id
from ccpt.agents.models import INHERIT, Usage, cost_usd, deprecation_notice, resolve_model
from ccpt.agents.prompt import (
    Attachment,
    CachePlan,
    ConsultRequest,
    cache_plan,
    gather_attachments,
    system_blocks,
    user_content,
)
from ccpt.agents.roster import Role, Roster
from ccpt.config import Settings
from ccpt.errors import CcptError

DEFAULT_QUESTION = "Review the attached input and tell me what matters most, and what to do next."


def history_of(settings: Settings) -> History:
    return History(settings.home_dir / "history.db")


def choose_model(flag: str | None, role: Role | None, default: str) -> str:
    """--model, else the role's own `model:` (unless `inherit`), else the configured default."""
    if flag:
        return resolve_model(flag)
    if role is not None and role.model and role.model != INHERIT:
        return resolve_model(role.model)
    return resolve_model(default)


def task_spec(spec_ref: str | None) -> tuple[str, str | None]:
    """(the spec's prompt text for the system prompt, its lead role); empty without --spec."""
    if not spec_ref:
        return "", None
    from ccpt.specs import load_spec, render_prompt

    spec = load_spec(spec_ref)
    text = "The engineer attached this task spec; check your answer against it.\n\n" + render_prompt(spec)
    return text, spec.lead_role or None


@dataclass
class Consultation:
    """A prepared request to one role, and what to log with it."""

    role: Role
    request: ConsultRequest
    conversation_id: str
    question: str
    attachments: list[Attachment]
    continued: bool = False
    notices: list[str] = field(default_factory=list)

    @property
    def user_turn(self) -> Any:
        return self.request.messages[-1]["content"]


@dataclass
class ConsultResult:
    role: str
    model: str
    answer: str
    usage: Usage
    cost_usd: float | None
    conversation_id: str
    entry_id: int | None
    message_id: str | None
    request_id: str | None
    stop_reason: str | None
    duration_s: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "model": self.model,
            "answer": self.answer,
            "usage": self.usage.to_dict(),
            "cost_usd": self.cost_usd,
            "stop_reason": self.stop_reason,
            "ids": {
                "conversation": self.conversation_id,
                "history_entry": self.entry_id,
                "message": self.message_id,
                "request": self.request_id,
            },
            "duration_s": round(self.duration_s, 3),
        }


def prepare_consultation(
    roster: Roster,
    role_query: str,
    question: str,
    settings: Settings,
    *,
    model: str | None = None,
    max_tokens: int | None = None,
    files: Sequence[Path] = (),
    stdin_text: str | None = None,
    spec: str | None = None,
    system: str | None = None,
    continue_last: bool = False,
) -> Consultation:
    role = roster.get(role_query)
    attachments = gather_attachments(files, stdin_text)
    question = question.strip()
    if not question:
        if not attachments:
            raise CcptError(
                "no question given",
                hint=f'ccpt agent {role.title} "your question" (or pipe text in)',
                exit_code=2,
            )
        question = DEFAULT_QUESTION

    conversation_id, earlier = new_conversation_id(), []
    if continue_last:
        history = history_of(settings)
        last = history.last_conversation(role.title)
        if last is None:
            raise CcptError(
                f"no earlier conversation with {role.title} to continue",
                hint="ask without --continue first",
                exit_code=2,
            )
        conversation_id, earlier = last, history.turns(last, role.title)

    chosen = choose_model(model, role, settings.model)
    request = ConsultRequest(
        model=chosen,
        max_tokens=max_tokens or settings.max_tokens,
        system=system_blocks(roster.charter, role, [task_spec(spec)[0], system or ""]),
        messages=[*earlier, {"role": "user", "content": user_content(question, attachments)}],
    )
    notice = deprecation_notice(chosen)
    return Consultation(
        role=role,
        request=request,
        conversation_id=conversation_id,
        question=question,
        attachments=attachments,
        continued=bool(earlier),
        notices=[notice] if notice else [],
    )


def check_cache(consultation: Consultation, settings: Settings) -> CachePlan:
    """The cache check, counted by the API when a key is set (falling back to an offline estimate)."""
    if settings.anthropic_api_key:
        try:
            api = claude.make_client(
                settings.anthropic_api_key, settings.anthropic_base_url, min(settings.timeout, 10)
            )
            prefix = consultation.request.cached_prefix()
            return cache_plan(
                consultation.request, claude.count_tokens(api, consultation.request, system=prefix)
            )
        except Exception:  # no network, a proxy without the endpoint ...: the estimate still answers
            pass
    return cache_plan(consultation.request)


def run_consultation(
    consultation: Consultation,
    settings: Settings,
    *,
    stream: bool = True,
    log: bool = True,
    timeout: float | None = None,
) -> Iterator[claude.TextDelta | ConsultResult]:
    """Send the request; yield text deltas (when streaming) and then the `ConsultResult`."""
    timeout = timeout or settings.timeout
    base_url = settings.anthropic_base_url
    api = claude.make_client(settings.anthropic_api_key, base_url, timeout)
    history = history_of(settings) if log and settings.history else None
    started = time.monotonic()
    received: list[str] = []

    def keep(answer: str, status: str, completion: claude.Completion | None = None) -> int | None:
        if history is None:
            return None
        usage = completion.usage if completion else Usage()
        model = completion.model if completion else consultation.request.model
        return history.record(
            Entry(
                conversation_id=consultation.conversation_id,
                role=consultation.role.title,
                model=model,
                question=consultation.question,
                user_content=consultation.user_turn,
                answer=answer,
                status=status,
                usage=usage,
                cost_usd=cost_usd(model, usage) if completion else None,
                attachments=[a.label for a in consultation.attachments],
                message_id=completion.message_id if completion else None,
                request_id=completion.request_id if completion else None,
                duration_s=round(time.monotonic() - started, 3),
            )
        )

    completion: claude.Completion | None = None
    try:
        if stream:
            for event in claude.stream_message(api, consultation.request, base_url, timeout):
                if isinstance(event, claude.TextDelta):
                    received.append(event.text)
                    yield event
                else:
                    completion = event
        else:
            completion = claude.create_message(api, consultation.request, base_url, timeout)
    except claude.IncompleteAnswer as exc:
        entry_id = keep(exc.partial, "cut")
        where = f"; the partial answer is history entry #{entry_id}" if entry_id else ""
        raise CcptError(exc.message + where, hint="try again (add -c to continue the conversation)") from exc
    except KeyboardInterrupt:
        partial = "".join(received)
        entry_id = keep(partial, "interrupted") if partial else None
        kept = f"; {len(partial):,} characters kept as history entry #{entry_id}" if entry_id else ""
        raise CcptError(f"interrupted{kept}", hint="`ccpt agent log` shows it", exit_code=130) from None

    assert completion is not None
    entry_id = keep(completion.text, "complete", completion)
    yield ConsultResult(
        role=consultation.role.title,
        model=completion.model,
        answer=completion.text,
        usage=completion.usage,
        cost_usd=cost_usd(completion.model, completion.usage),
        conversation_id=consultation.conversation_id,
        entry_id=entry_id,
        message_id=completion.message_id,
        request_id=completion.request_id,
        stop_reason=completion.stop_reason,
        duration_s=time.monotonic() - started,
    )
