"""`ccpt ask` routing: the Supervisor's forced tool call, direct picks, the spec's lead role,
and the plan printed before anyone is consulted."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ccpt.agents.roster import load_roster
from ccpt.agents.router import Plan, Step, finalize, parse_plan
from tests.conftest import run_ccpt
from tests.messages_api import MessagesApiServer, TeamScript, api_env, ccpt_against

PLAN = {
    "summary": "data first, then the model",
    "consultations": [
        {"role": "DatasetCurator", "question": "Which labelled dataset fits?"},
        {"role": "ModelArchitect", "question": "Which BERT size fits 16 GB?", "needs": ["DatasetCurator"]},
        {"role": "DataEngineer", "question": "How should batches be built?"},
    ],
}


@pytest.fixture
def roster():  # type: ignore[no-untyped-def]
    return load_roster(user_dir=Path("/nonexistent"))


def test_the_routing_call_is_parsed_and_the_plan_printed_before_anyone_is_consulted(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.responder = TeamScript(plan=PLAN)
    result = ccpt_against(
        messages_api, tmp_path, "ask", "fine-tune BERT on my dataset with limited GPU memory"
    )
    assert result.returncode == 0, result.stderr

    routing = messages_api.message_requests()[0]
    assert routing.body["tool_choice"] == {"type": "tool", "name": "plan_consultation"}
    (tool,) = routing.body["tools"]
    names = tool["input_schema"]["properties"]["consultations"]["items"]["properties"]["role"]["enum"]
    assert len(names) == 14 and "Supervisor" not in names and "NetworkArchitect" in names
    assert routing.body["model"] == "claude-opus-5-5"
    assert "- DataEngineer: Use for the input pipeline" in routing.system_text
    assert routing.last_user_text == "fine-tune BERT on my dataset with limited GPU memory"

    stderr = result.stderr
    assert "Plan (supervisor): data first, then the model" in stderr
    for consultation in PLAN["consultations"]:
        assert consultation["question"] in stderr
    assert stderr.index("Which BERT size fits 16 GB?") < stderr.index("DatasetCurator working")
    assert result.stdout.startswith("## Merged plan")


def test_each_role_gets_its_sub_question_and_the_original_question(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    script = TeamScript(plan=PLAN)
    messages_api.responder = script
    assert (
        ccpt_against(messages_api, tmp_path, "ask", "fine-tune BERT with limited GPU memory").returncode == 0
    )
    (request,) = script.role_requests(messages_api, "DataEngineer")
    assert request.last_user_text == "How should batches be built?"
    assert "The engineer's question: fine-tune BERT with limited GPU memory" in request.system_text
    assert request.body["system"][0]["cache_control"] == {"type": "ephemeral"}


def test_an_agent_mention_skips_routing(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    script = TeamScript()
    messages_api.responder = script
    result = ccpt_against(
        messages_api, tmp_path, "ask", "@agent-NetworkArchitect design a patch embedding for 224px images"
    )
    assert result.returncode == 0, result.stderr
    assert not any(r.body.get("tools") for r in messages_api.message_requests())
    (request,) = script.role_requests(messages_api, "NetworkArchitect")
    assert request.last_user_text == "design a patch embedding for 224px images"
    assert "Plan (@mention)" in result.stderr


def test_agents_flag_skips_routing_and_orders_by_the_team_map(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    script = TeamScript()
    messages_api.responder = script
    result = ccpt_against(
        messages_api, tmp_path, "ask", "--agents", "data,dataset", "--json", "why is loading slow?"
    )
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert plan["routed_by"] == "--agents"
    assert plan["steps"] == [
        {"role": "DataEngineer", "question": "why is loading slow?", "needs": ["DatasetCurator"]},
        {"role": "DatasetCurator", "question": "why is loading slow?", "needs": []},
    ]


def test_the_spec_lead_role_is_always_consulted(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    script = TeamScript(plan={"consultations": [{"role": "DataEngineer", "question": "loader?"}]})
    messages_api.responder = script
    result = ccpt_against(messages_api, tmp_path, "ask", "--spec", "causal-lm", "--json", "how do we start?")
    assert result.returncode == 0, result.stderr
    plan = json.loads(result.stdout)["plan"]
    assert [s["role"] for s in plan["steps"]] == ["NetworkArchitect", "DataEngineer"]
    assert "NetworkArchitect added: it is the task spec's lead role" in plan["notes"]
    (request,) = script.role_requests(messages_api, "NetworkArchitect")
    assert "Task spec: Small GPT" in request.system_text


def test_dry_run_shows_the_routing_request_without_a_key(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    env = {**api_env(messages_api, key=None), "HOME": str(tmp_path)}
    result = run_ccpt(
        "ask", "--dry-run", "fine-tune BERT with limited GPU memory", cwd=tmp_path, env=env, input=""
    )
    assert result.returncode == 0, result.stderr
    printed = json.loads(result.stdout)
    (routing,) = printed["requests"]
    assert routing["purpose"] == "routing"
    assert routing["body"]["tool_choice"]["name"] == "plan_consultation"
    assert routing["body"]["messages"] == [
        {"role": "user", "content": "fine-tune BERT with limited GPU memory"}
    ]
    assert messages_api.requests == []


def test_ask_without_a_key_fails_in_one_line(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    result = ccpt_against(messages_api, tmp_path, "ask", "q", key=None)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: ANTHROPIC_API_KEY is not set")
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_plan_with_unknown_roles_cycles_and_too_many_steps_is_made_valid(roster) -> None:  # type: ignore[no-untyped-def]
    calls = [
        {
            "name": "plan_consultation",
            "input": {
                "consultations": [
                    {"role": "DataEngineer", "question": "a", "needs": ["ModelArchitect"]},
                    {"role": "ModelArchitect", "question": "b", "needs": ["DataEngineer", "Wizard"]},
                    {"role": "Wizard", "question": "c"},
                    {"role": "MetricsArchitect", "question": ""},
                    {"role": "CloudEngineer", "question": "d"},
                ]
            },
        }
    ]
    plan = finalize(parse_plan(calls, roster), roster, "the question", lead_role=None, max_agents=3)
    assert [s.role for s in plan.steps] == ["DataEngineer", "ModelArchitect", "MetricsArchitect"]
    assert plan.steps[0].needs == ["ModelArchitect"] and plan.steps[1].needs == []
    assert plan.steps[2].question == "the question"
    assert any("Wizard" in note for note in plan.notes)
    assert any("cycle" in note for note in plan.notes)
    assert any("--max-agents 3" in note for note in plan.notes)


def test_the_lead_role_survives_the_max_agents_cap(roster) -> None:  # type: ignore[no-untyped-def]
    plan = Plan([Step("DataEngineer", "a"), Step("ModelArchitect", "b")])
    finalize(plan, roster, "q", lead_role="TestArchitect", max_agents=2)
    assert [s.role for s in plan.steps] == ["TestArchitect", "DataEngineer"]
