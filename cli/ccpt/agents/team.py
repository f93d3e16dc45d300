"""`ccpt ask`: the Supervisor routes a question, the chosen roles answer, the Supervisor merges.

One exchange is one conversation in the history, with an entry for the routing, one per role
and one for the synthesis. Roles whose answers do not depend on each other run at the same
time through the SDK's async client; a role that needs others' answers waits for them and
reads them. With a project directory the roles may read it through `ProjectTools`. A budget,
when given, is checked before every request with the token-count endpoint, and the exchange
stops before it would go over. A role that fails is reported, and the synthesis says what is
missing. The core reports progress through an observer callback and never prints.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ccpt.agents import client as claude
from ccpt.agents.consult import choose_model, history_of
from ccpt.agents.history import Entry, new_conversation_id
from ccpt.agents.models import Usage, cost_usd, model_card
from ccpt.agents.project_tools import TOOL_SCHEMAS, ProjectTools
from ccpt.agents.prompt import Attachment, ConsultRequest, system_blocks, user_content
from ccpt.agents.roster import Role, Roster
from ccpt.agents.router import (
    Plan,
    Step,
    finalize,
    mentioned_roles,
    parse_plan,
    plan_from_roles,
    routing_request,
)
from ccpt.config import Settings
from ccpt.errors import CcptError

MAX_TOOL_ROUNDS = 6
MAX_PARALLEL = 4
READ_TOOLS = {"Read", "Grep", "Glob"}
PROJECT_TOOL_NAMES = frozenset(tool["name"] for tool in TOOL_SCHEMAS)


# -- events the command renders ----------------------------------------------------------------
@dataclass(frozen=True)
class PlanReady:
    plan: Plan


@dataclass(frozen=True)
class RoleUpdate:
    role: str
    state: str  # waiting | working | done | failed | skipped
    usage: Usage
    cost_usd: float | None
    note: str = ""


@dataclass(frozen=True)
class ToolUsed:
    role: str
    name: str
    arguments: dict[str, Any]
    ok: bool
    summary: str


@dataclass(frozen=True)
class SynthesisText:
    text: str


Observer = Callable[[Any], None]


# -- results -----------------------------------------------------------------------------------
@dataclass
class Outcome:
    """One call's result: a role's answer, the routing or the synthesis."""

    role: str
    question: str
    needs: list[str] = field(default_factory=list)
    state: str = "waiting"
    answer: str = ""
    model: str = ""
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    note: str = ""
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    entry_id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["usage"] = self.usage.to_dict()
        return data


@dataclass
class AskResult:
    question: str
    conversation_id: str
    plan: Plan
    routing: Outcome | None
    outcomes: list[Outcome]
    synthesis: Outcome
    budget_usd: float | None
    budget_stopped: bool

    @property
    def calls(self) -> list[Outcome]:
        return [o for o in [self.routing, *self.outcomes, self.synthesis] if o is not None]

    @property
    def total_usage(self) -> Usage:
        total = Usage()
        for outcome in self.calls:
            total = total + outcome.usage
        return total

    @property
    def total_cost(self) -> float:
        return round(sum(o.cost_usd or 0.0 for o in self.calls), 6)

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "conversation_id": self.conversation_id,
            "plan": self.plan.to_dict(),
            "routing": self.routing.to_dict() if self.routing else None,
            "consultations": [o.to_dict() for o in self.outcomes],
            "synthesis": self.synthesis.to_dict(),
            "totals": {"usage": self.total_usage.to_dict(), "cost_usd": self.total_cost},
            "budget_usd": self.budget_usd,
            "budget_stopped": self.budget_stopped,
        }


# -- setup -------------------------------------------------------------------------------------
@dataclass
class AskSetup:
    """Everything decided before any request: roles chosen directly, context, models, tools."""

    roster: Roster
    question: str
    attachments: list[Attachment]
    spec_text: str
    lead_role: str | None
    direct_plan: Plan | None  # from --agents or @agent mentions; None: the Supervisor routes
    max_agents: int
    model_flag: str | None
    default_model: str
    max_tokens: int
    project: Path | None
    conversation_id: str = field(default_factory=new_conversation_id)

    @property
    def supervisor_model(self) -> str:
        return choose_model(self.model_flag, self.roster.get("Supervisor"), self.default_model)

    def routing_request(self) -> ConsultRequest:
        attached = [f"{a.label} ({len(a.text.splitlines())} lines)" for a in self.attachments]
        context = [self.spec_text, f"Attached to the question: {', '.join(attached)}" if attached else ""]
        return routing_request(self.roster, self.question, self.supervisor_model, context, self.max_agents)

    def role_request(self, step: Step, answers: dict[str, Outcome]) -> ConsultRequest:
        role = self.roster.get(step.role)
        team_note = (
            "You are consulted as one specialist in a team answer to the engineer's question below. "
            "Answer your sub-question from your seat, concretely; the Supervisor merges the answers.\n\n"
            f"The engineer's question: {self.question}"
        )
        before = [
            Attachment(label=name, text=_answer_or_gap(answers[name]), kind="answer")
            for name in step.needs
            if name in answers
        ]
        content = user_content(step.question, [*self.attachments, *before])
        tools = TOOL_SCHEMAS if self.project and _may_read(role) else []
        return ConsultRequest(
            model=choose_model(self.model_flag, role, self.default_model),
            max_tokens=self.max_tokens,
            system=system_blocks(self.roster.charter, role, [team_note, self.spec_text]),
            messages=[{"role": "user", "content": content}],
            tools=list(tools),
        )

    def synthesis_request(self, plan: Plan, outcomes: Sequence[Outcome]) -> ConsultRequest:
        instructions = (
            "Merge the specialists' answers below into one plan for the engineer. Decide where they "
            "conflict and say why. Give numbered steps, each with an owner from the team map; then the "
            "open questions, each with who will answer it. If an answer is missing (a role failed or "
            "was skipped), say what is missing and what that leaves undecided. Do not repeat the answers."
        )
        parts = [Attachment(o.role, _answer_or_gap(o), kind="answer") for o in outcomes]
        question = f"The engineer asked: {self.question}\n\nRouting: {plan.summary or 'direct'}"
        return ConsultRequest(
            model=self.supervisor_model,
            max_tokens=self.max_tokens,
            system=system_blocks(
                self.roster.charter, self.roster.get("Supervisor"), [instructions, self.spec_text]
            ),
            messages=[{"role": "user", "content": user_content(question, parts)}],
        )


def _may_read(role: Role) -> bool:
    """Claude Code semantics: no `tools` line means every tool; otherwise it must list a reader."""
    return not role.tools or bool(READ_TOOLS & set(role.tools))


def _answer_or_gap(outcome: Outcome) -> str:
    if outcome.state == "done":
        return outcome.answer
    return f"(no answer from {outcome.role}: {outcome.state}{': ' + outcome.note if outcome.note else ''})"


def prepare_ask(
    roster: Roster,
    question: str,
    settings: Settings,
    *,
    attachments: Sequence[Attachment] = (),
    spec_text: str = "",
    lead_role: str | None = None,
    agents: Sequence[str] = (),
    max_agents: int = 4,
    model: str | None = None,
    max_tokens: int | None = None,
    project: Path | None = None,
) -> AskSetup:
    mentioned, question = mentioned_roles(question, roster)
    if not question.strip():
        raise CcptError("no question given", hint='ccpt ask "your question"', exit_code=2)
    direct: Plan | None = None
    if agents:
        direct = plan_from_roles([roster.get(name) for name in agents], question, "--agents")
    elif mentioned:
        direct = plan_from_roles(mentioned, question, "@mention")
    setup = AskSetup(
        roster=roster,
        question=question,
        attachments=list(attachments),
        spec_text=spec_text,
        lead_role=roster.get(lead_role).title if lead_role else None,
        direct_plan=direct,
        max_agents=max(1, max_agents),
        model_flag=model,
        default_model=settings.model,
        max_tokens=max_tokens or settings.max_tokens,
        project=project,
    )
    if direct is not None:
        finalize(direct, roster, question, setup.lead_role, setup.max_agents)
    return setup


# -- running -----------------------------------------------------------------------------------
class BudgetStop(Exception):
    """The next request would take the exchange over --budget-usd."""


class Budget:
    """Spent dollars plus reservations for requests in flight, against an optional limit."""

    def __init__(self, limit: float | None) -> None:
        self.limit = limit
        self.committed = 0.0
        self.reserved = 0.0
        self.stopped = False

    async def reserve(self, api: Any, request: ConsultRequest) -> float:
        """Reserve the worst case of `request` (its counted input, `max_tokens` of output)."""
        if self.limit is None:
            return 0.0
        if self.stopped:
            raise BudgetStop("an earlier request was stopped by the budget")
        card = model_card(request.model)
        prices = card.prices
        if prices is None:
            raise BudgetStop(f"{request.model} has no price in the table, so the budget cannot be checked")
        params: dict[str, Any] = {
            "model": request.model,
            "system": request.system,
            "messages": request.messages,
        }
        if request.tools:
            params["tools"] = request.tools
        try:
            counted = (await api.messages.count_tokens(**params)).input_tokens
        except Exception as exc:
            raise claude.api_error(exc, None, 0) from exc
        estimate = (counted * prices.input + request.max_tokens * prices.output) / 1_000_000
        if self.committed + self.reserved + estimate > self.limit:
            self.stopped = True
            left = self.limit - self.committed - self.reserved
            raise BudgetStop(f"needs up to ${estimate:.4f}, ${max(left, 0):.4f} of the budget is left")
        self.reserved += estimate
        return estimate

    def settle(self, reserved: float, actual: float | None) -> None:
        self.reserved -= reserved
        self.committed += actual or 0.0


class Exchange:
    """One `ccpt ask` run: routing, the consultations, the synthesis, and their history entries."""

    def __init__(
        self, setup: AskSetup, settings: Settings, observe: Observer, budget_usd: float | None, log: bool
    ):
        self.setup = setup
        self.settings = settings
        self.observe = observe
        self.budget = Budget(budget_usd)
        self.history = history_of(settings) if log and settings.history else None
        self.tools = ProjectTools(setup.project) if setup.project else None
        self.timeout = settings.timeout
        self.base_url = settings.anthropic_base_url

    async def run(self) -> AskResult:
        api = claude.make_async_client(self.settings.anthropic_api_key, self.base_url, self.timeout)
        try:
            routing, plan = await self._plan(api)
            self.observe(PlanReady(plan))
            outcomes = await self._consult_all(api, plan)
            synthesis = await self._synthesize(api, plan, outcomes)
        finally:
            await api.close()
        return AskResult(
            question=self.setup.question,
            conversation_id=self.setup.conversation_id,
            plan=plan,
            routing=routing,
            outcomes=outcomes,
            synthesis=synthesis,
            budget_usd=self.budget.limit,
            budget_stopped=self.budget.stopped,
        )

    # one request (with the tool loop for roles) --------------------------------------------
    async def _ask(
        self,
        api: Any,
        outcome: Outcome,
        request: ConsultRequest,
        stream_text: bool,
        received: list[str],
    ) -> claude.Completion:
        """Send `request` (and tool rounds); fill `outcome` with the answer, usage and cost.
        `received` collects the current round's text as it streams in (kept if cancelled)."""
        outcome.model = request.model
        messages = list(request.messages)
        completion: claude.Completion | None = None
        for round_number in range(1, MAX_TOOL_ROUNDS + 1):
            last_round = round_number == MAX_TOOL_ROUNDS
            current = dataclasses.replace(request, messages=messages)
            if last_round and request.tools:
                current.tool_choice = {"type": "none"}  # a final answer, not another tool call
            reserved = await self.budget.reserve(api, current)
            completion = None
            received.clear()
            try:
                async for event in claude.astream_message(api, current, self.base_url, self.timeout):
                    if isinstance(event, claude.TextDelta):
                        received.append(event.text)
                        if stream_text:
                            self.observe(SynthesisText(event.text))
                    else:
                        completion = event
            finally:
                cost = cost_usd(completion.model, completion.usage) if completion else None
                self.budget.settle(reserved, cost)
            assert completion is not None
            outcome.usage = outcome.usage + completion.usage
            outcome.cost_usd = round((outcome.cost_usd or 0.0) + (cost or 0.0), 6)
            self.observe(RoleUpdate(outcome.role, "working", outcome.usage, outcome.cost_usd))
            if completion.stop_reason != "tool_use" or not self._serves_tools(request):
                break
            results = [self._use_tool(outcome, call) for call in completion.tool_calls]
            messages = [*messages, {"role": "assistant", "content": completion.content}]
            messages.append({"role": "user", "content": results})
        assert completion is not None
        outcome.answer = completion.text
        return completion

    def _serves_tools(self, request: ConsultRequest) -> bool:
        """Whether `request` offered the project tools (the routing tool is answered by parsing)."""
        offered = {tool["name"] for tool in request.tools}
        return self.tools is not None and bool(offered & PROJECT_TOOL_NAMES)

    def _use_tool(self, outcome: Outcome, call: dict[str, Any]) -> dict[str, Any]:
        assert self.tools is not None
        arguments = call.get("input") or {}
        result = self.tools.run(call["name"], arguments)
        outcome.tool_calls.append(
            {"name": call["name"], "input": arguments, "ok": result.ok, "summary": result.summary}
        )
        self.observe(ToolUsed(outcome.role, call["name"], arguments, result.ok, result.summary))
        return {
            "type": "tool_result",
            "tool_use_id": call["id"],
            "content": result.text,
            "is_error": not result.ok,
        }

    def _record(self, outcome: Outcome, kind: str, request: ConsultRequest, started: float) -> None:
        if self.history is None:
            return
        outcome.entry_id = self.history.record(
            Entry(
                conversation_id=self.setup.conversation_id,
                role=outcome.role,
                model=outcome.model or request.model,
                question=outcome.question,
                user_content=request.messages[0]["content"],
                answer=outcome.answer,
                status={"done": "complete"}.get(outcome.state, outcome.state),
                usage=outcome.usage,
                cost_usd=outcome.cost_usd,
                attachments=[a.label for a in self.setup.attachments],
                tool_calls=outcome.tool_calls,
                kind=kind,
                duration_s=round(time.monotonic() - started, 3),
            )
        )

    async def _run_call(
        self, api: Any, outcome: Outcome, request: ConsultRequest, kind: str, stream_text: bool = False
    ) -> claude.Completion | None:
        """One call with its failure handling: a failure or budget stop is an outcome, not a crash."""
        started = time.monotonic()
        outcome.state = "working"
        self.observe(RoleUpdate(outcome.role, "working", outcome.usage, outcome.cost_usd))
        completion = None
        received: list[str] = []
        try:
            completion = await self._ask(api, outcome, request, stream_text, received)
            outcome.state = "done"
            if not outcome.answer and completion.tool_calls:  # the routing answer is its tool call
                outcome.answer = json.dumps([call.get("input") for call in completion.tool_calls])
        except BudgetStop as exc:
            outcome.state, outcome.note = "skipped", f"budget: {exc}"
        except claude.IncompleteAnswer as exc:
            outcome.state, outcome.note, outcome.answer = "failed", exc.message, exc.partial
        except CcptError as exc:
            outcome.state, outcome.note = "failed", exc.message
        except asyncio.CancelledError:  # Ctrl-C: keep what this call had said so far, then stop
            outcome.state, outcome.note, outcome.answer = "interrupted", "interrupted", "".join(received)
            if outcome.answer:
                self._record(outcome, kind, request, started)
            raise
        self.observe(RoleUpdate(outcome.role, outcome.state, outcome.usage, outcome.cost_usd, outcome.note))
        if outcome.state != "skipped":
            self._record(outcome, kind, request, started)
        return completion

    # the three stages ------------------------------------------------------------------------
    async def _plan(self, api: Any) -> tuple[Outcome | None, Plan]:
        if self.setup.direct_plan is not None:
            return None, self.setup.direct_plan
        routing = Outcome(role="Supervisor", question=self.setup.question)
        completion = await self._run_call(api, routing, self.setup.routing_request(), "ask-route")
        if completion is None or routing.state != "done":
            raise CcptError(f"routing failed: {routing.note}", hint="pass --agents A,B to skip routing")
        plan = parse_plan(completion.tool_calls, self.setup.roster)
        finalize(plan, self.setup.roster, self.setup.question, self.setup.lead_role, self.setup.max_agents)
        return routing, plan

    async def _consult_all(self, api: Any, plan: Plan) -> list[Outcome]:
        outcomes = {step.role: Outcome(step.role, step.question, list(step.needs)) for step in plan.steps}
        finished = {role: asyncio.Event() for role in outcomes}
        gate = asyncio.Semaphore(MAX_PARALLEL)
        for outcome in outcomes.values():
            self.observe(RoleUpdate(outcome.role, "waiting", outcome.usage, None))

        async def consult(step: Step) -> None:
            outcome = outcomes[step.role]
            try:
                for need in step.needs:
                    await finished[need].wait()
                async with gate:
                    request = self.setup.role_request(step, outcomes)
                    await self._run_call(api, outcome, request, "ask-role")
            finally:
                finished[step.role].set()

        await asyncio.gather(*(consult(step) for step in plan.steps))
        return list(outcomes.values())

    async def _synthesize(self, api: Any, plan: Plan, outcomes: list[Outcome]) -> Outcome:
        synthesis = Outcome(role="Supervisor", question=self.setup.question)
        request = self.setup.synthesis_request(plan, outcomes)
        await self._run_call(api, synthesis, request, "ask-synthesis", stream_text=True)
        return synthesis


def run_ask(
    setup: AskSetup,
    settings: Settings,
    observe: Observer,
    *,
    budget_usd: float | None = None,
    log: bool = True,
) -> AskResult:
    """Run the whole exchange (blocking); progress goes to `observe`."""
    claude.require_api_key(settings.anthropic_api_key)
    return asyncio.run(Exchange(setup, settings, observe, budget_usd, log).run())
