"""Routing for `ccpt ask`: which roles to consult, on what, and in which order.

The Supervisor routes by answering through a forced tool call (`plan_consultation`) whose
schema only admits role names from the roster, so its answer parses into a `Plan` without
guessing. `--agents` and `@agent-Name` mentions skip that call; their order comes from the
team map (a role waits for the roles that hand work to it). Every plan is then made valid:
unknown names and self-references dropped, cycles broken, the spec's lead role added, the size
capped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ccpt.agents.prompt import CACHE_CONTROL, ConsultRequest, system_blocks
from ccpt.agents.roster import Role, Roster
from ccpt.errors import CcptError

PLAN_TOOL = "plan_consultation"
MENTION = re.compile(r"@agent-([A-Za-z][A-Za-z0-9-]*)")


@dataclass
class Step:
    role: str
    question: str
    needs: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "question": self.question, "needs": list(self.needs)}


@dataclass
class Plan:
    steps: list[Step]
    summary: str = ""
    routed_by: str = "supervisor"  # supervisor | --agents | @mention
    notes: list[str] = field(default_factory=list)

    def roles(self) -> list[str]:
        return [step.role for step in self.steps]

    def to_dict(self) -> dict[str, Any]:
        return {
            "summary": self.summary,
            "routed_by": self.routed_by,
            "steps": [step.to_dict() for step in self.steps],
            "notes": list(self.notes),
        }


def mentioned_roles(question: str, roster: Roster) -> tuple[list[Role], str]:
    """Roles addressed as `@agent-Name` in `question`, and the question without the mentions."""
    roles: list[Role] = []
    for name in MENTION.findall(question):
        role = roster.get(name)
        if role not in roles:
            roles.append(role)
    return roles, " ".join(MENTION.sub("", question).split())


def plan_from_roles(roles: Sequence[Role], question: str, routed_by: str) -> Plan:
    """Each role answers the whole question; a role waits for chosen roles that hand work to it."""
    chosen = {role.title for role in roles}
    steps = [
        Step(
            role.title,
            question,
            [other.title for other in roles if role.title in other.hands_to and other.title in chosen],
        )
        for role in roles
    ]
    return Plan(steps, routed_by=routed_by)


def roster_text(roster: Roster) -> str:
    lines = ["Roles you can route to (name: when to use; team; owns; hands work to):"]
    for role in roster.roles:
        if role.title == "Supervisor":
            continue
        extras = [f"team {role.team}" if role.team else "", f"owns {role.owns}" if role.owns else ""]
        extras.append(f"hands work to {', '.join(role.hands_to)}" if role.hands_to else "")
        details = "; ".join(part for part in extras if part)
        lines.append(f"- {role.title}: {role.description}" + (f" ({details})" if details else ""))
    return "\n".join(lines)


def routing_instructions(max_agents: int) -> str:
    return (
        "You are routing an engineer's question to the team. Choose the specialists whose seats the "
        f"question really touches (at most {max_agents}; fewer is better when fewer suffice). Give each a "
        "focused sub-question that stays inside that role's seat and says what the answer will be used "
        "for. In `needs`, list the chosen roles whose answers that role must read first; follow the team "
        "map (a role needs the roles that hand work to it) and leave independent roles free so they run "
        f"in parallel. Answer only by calling `{PLAN_TOOL}`."
    )


def plan_tool(roster: Roster) -> dict[str, Any]:
    names = [role.title for role in roster.roles if role.title != "Supervisor"]
    return {
        "name": PLAN_TOOL,
        "description": "The specialists to consult, each with a focused sub-question, and their order.",
        "input_schema": {
            "type": "object",
            "properties": {
                "summary": {"type": "string", "description": "One sentence: the plan and why these roles."},
                "consultations": {
                    "type": "array",
                    "minItems": 1,
                    "items": {
                        "type": "object",
                        "properties": {
                            "role": {"type": "string", "enum": names},
                            "question": {"type": "string"},
                            "needs": {"type": "array", "items": {"type": "string", "enum": names}},
                        },
                        "required": ["role", "question"],
                    },
                },
            },
            "required": ["consultations"],
        },
    }


def routing_request(
    roster: Roster, question: str, model: str, context: Sequence[str], max_agents: int, max_tokens: int = 2048
) -> ConsultRequest:
    """The Supervisor's routing call: charter + Supervisor (cached), roster, a forced tool call."""
    supervisor = roster.get("Supervisor")
    system = system_blocks(roster.charter, supervisor)
    system.append({"type": "text", "text": roster_text(roster), "cache_control": dict(CACHE_CONTROL)})
    system.append(
        {"type": "text", "text": "\n\n".join([routing_instructions(max_agents), *filter(None, context)])}
    )
    return ConsultRequest(
        model=model,
        max_tokens=max_tokens,
        system=system,
        messages=[{"role": "user", "content": question}],
        tools=[plan_tool(roster)],
        tool_choice={"type": "tool", "name": PLAN_TOOL},
    )


def parse_plan(tool_calls: Sequence[dict[str, Any]], roster: Roster) -> Plan:
    """The plan from the Supervisor's `plan_consultation` call."""
    call = next((c for c in tool_calls if c.get("name") == PLAN_TOOL), None)
    if call is None:
        raise CcptError(
            "the Supervisor did not return a routing plan", hint="try again, or pass --agents A,B"
        )
    data = call.get("input") or {}
    if isinstance(data, str):
        data = json.loads(data or "{}")
    plan = Plan(steps=[], summary=str(data.get("summary", "")))
    for item in data.get("consultations") or []:
        if not isinstance(item, dict):
            continue
        role = roster.find(str(item.get("role", "")))
        if role is None or role.title == "Supervisor":
            plan.notes.append(f"ignored an unknown role `{item.get('role')}` in the routing plan")
            continue
        if role.title in plan.roles():
            continue
        needs = [str(n) for n in item.get("needs") or [] if isinstance(n, str)]
        plan.steps.append(Step(role.title, str(item.get("question") or "").strip(), needs))
    if not plan.steps:
        raise CcptError("the Supervisor's routing plan named no specialist", hint="pass --agents A,B")
    return plan


def finalize(plan: Plan, roster: Roster, question: str, lead_role: str | None, max_agents: int) -> Plan:
    """A valid plan: the lead role in, at most `max_agents` steps, needs inside the plan, no cycles."""
    if lead_role:
        lead = roster.get(lead_role)
        if lead.title not in plan.roles():
            plan.steps.insert(0, Step(lead.title, question))
            plan.notes.append(f"{lead.title} added: it is the task spec's lead role")
    if len(plan.steps) > max_agents:
        keep = [s for s in plan.steps if s.role == (roster.get(lead_role).title if lead_role else None)]
        keep += [s for s in plan.steps if s not in keep][: max_agents - len(keep)]
        dropped = [s.role for s in plan.steps if s not in keep]
        plan.notes.append(f"--max-agents {max_agents}: not consulting {', '.join(dropped)}")
        plan.steps = [s for s in plan.steps if s in keep]
    names = set(plan.roles())
    for step in plan.steps:
        step.question = step.question or question
        resolved = [roster.find(n) for n in step.needs]
        step.needs = list(
            dict.fromkeys(r.title for r in resolved if r and r.title in names and r.title != step.role)
        )
    _break_cycles(plan)
    return plan


def _break_cycles(plan: Plan) -> None:
    """Drop the `needs` edges that close a cycle (depth-first, in plan order)."""
    by_role = {step.role: step for step in plan.steps}
    state: dict[str, str] = {}

    def visit(role: str) -> None:
        state[role] = "open"
        step = by_role[role]
        for need in list(step.needs):
            if state.get(need) == "open":
                step.needs.remove(need)
                plan.notes.append(f"{role} no longer waits for {need} (that would be a cycle)")
            elif need not in state:
                visit(need)
        state[role] = "done"

    for step in plan.steps:
        if step.role not in state:
            visit(step.role)
