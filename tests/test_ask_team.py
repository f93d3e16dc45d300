"""`ccpt ask` consultations: parallel roles, dependency order, project tools, failures, the
budget, and the exchange as one conversation in the history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ccpt.agents.project_tools import MAX_READ_BYTES, ProjectTools
from tests.messages_api import (
    MessagesApiServer,
    Reply,
    TeamScript,
    api_env,
    ccpt_against,
    run_ccpt_in_process,
)

PARALLEL_PLAN = {
    "summary": "three seats",
    "consultations": [
        {"role": "DatasetCurator", "question": "Which dataset?"},
        {"role": "DataEngineer", "question": "Which loader settings?"},
        {"role": "ModelArchitect", "question": "Which model?", "needs": ["DatasetCurator"]},
    ],
}


def tool_results(request) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        block
        for message in request.body["messages"]
        if isinstance(message["content"], list)
        for block in message["content"]
        if block.get("type") == "tool_result"
    ]


def test_independent_roles_are_in_flight_at_once_and_dependents_wait(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    script = TeamScript(plan=PARALLEL_PLAN, delay=0.03)
    messages_api.responder = script
    result = ccpt_against(messages_api, tmp_path, "ask", "fine-tune BERT with limited GPU memory")
    assert result.returncode == 0, result.stderr

    (curator,) = script.role_requests(messages_api, "DatasetCurator")
    (engineer,) = script.role_requests(messages_api, "DataEngineer")
    (architect,) = script.role_requests(messages_api, "ModelArchitect")
    assert messages_api.max_in_flight >= 2
    assert curator.started < engineer.finished and engineer.started < curator.finished  # overlapping
    assert architect.started >= curator.finished  # waited for the answer it needs
    blocks = architect.body["messages"][-1]["content"]
    assert blocks[0]["text"] == '<answer from="DatasetCurator">\nDatasetCurator: my answer.\n</answer>'
    assert blocks[-1]["text"] == "Which model?"


def test_a_role_reads_a_project_file_and_a_path_leaving_the_project_is_refused(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "data.py").write_text("loader = DataLoader(ds, num_workers=0)\n")
    script = TeamScript(
        replies={
            "DataEngineer": [
                Reply(
                    tool_calls=[
                        ("read_file", {"path": "src/data.py"}),
                        ("read_file", {"path": "../../etc/passwd"}),
                    ]
                ),
                Reply(text="Raise num_workers to 8 and pin memory."),
            ]
        }
    )
    messages_api.responder = script
    result = ccpt_against(
        messages_api, tmp_path, "ask", "--project", str(project), "--agents", "DataEngineer", "why slow?"
    )
    assert result.returncode == 0, result.stderr

    first, second = script.role_requests(messages_api, "DataEngineer")
    assert {tool["name"] for tool in first.body["tools"]} == {"read_file", "list_files", "grep"}
    granted, refused = tool_results(second)
    assert "loader = DataLoader(ds, num_workers=0)" in granted["content"] and not granted["is_error"]
    assert refused["is_error"] and "outside the project directory" in refused["content"]
    assert "root:" not in json.dumps(second.body)
    assert "✓ read_file(path='src/data.py')" in result.stderr
    assert "✗ read_file(path='../../etc/passwd') refused" in result.stderr

    entries = json.loads(run_ccpt_in_process("agent", "log", "--json", cwd=tmp_path).stdout)
    (role_entry,) = [e for e in entries if e["kind"] == "ask-role"]
    assert [(c["name"], c["ok"]) for c in role_entry["tool_calls"]] == [
        ("read_file", True),
        ("read_file", False),
    ]
    assert role_entry["answer"] == "Raise num_workers to 8 and pin memory."


def test_without_a_project_the_roles_get_no_tools(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    script = TeamScript()
    messages_api.responder = script
    assert ccpt_against(messages_api, tmp_path, "ask", "--agents", "network", "q").returncode == 0
    (request,) = script.role_requests(messages_api, "NetworkArchitect")
    assert "tools" not in request.body


def test_a_failing_role_is_reported_and_the_synthesis_says_what_is_missing(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    failure = Reply(status=500, error_type="api_error", retry_after=0.01)
    messages_api.responder = TeamScript(plan=PARALLEL_PLAN, replies={"DataEngineer": failure})
    result = ccpt_against(messages_api, tmp_path, "ask", "--json", "fine-tune BERT")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    states = {c["role"]: (c["state"], c["note"]) for c in data["consultations"]}
    assert states["DataEngineer"] == ("failed", "the API failed (500) after 3 retries")
    assert states["DatasetCurator"][0] == states["ModelArchitect"][0] == "done"
    synthesis = messages_api.message_requests()[-1]
    assert "(no answer from DataEngineer: failed: the API failed (500)" in synthesis.last_user_text
    assert data["synthesis"]["state"] == "done"


def test_the_budget_stops_the_exchange_before_it_would_go_over(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.responder = TeamScript()
    args = (
        "--agents",
        "dataset,data",
        "--max-tokens",
        "1000",
        "--budget-usd",
        "0.025",
        "--json",
        "which data?",
    )
    result = ccpt_against(messages_api, tmp_path, "ask", *args)
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    states = {c["role"]: c["state"] for c in data["consultations"]}
    assert states == {"DatasetCurator": "done", "DataEngineer": "skipped"}
    assert data["synthesis"]["state"] == "skipped" and data["budget_stopped"] is True
    assert 0 < data["totals"]["cost_usd"] <= 0.025
    sent = [r.path for r in messages_api.requests]
    assert sent.count("/v1/messages") == 1  # nothing was sent that the budget could not pay for
    assert sent.count("/v1/messages/count_tokens") == 2  # the synthesis is not even estimated


def test_the_exchange_is_one_conversation_in_history_with_per_role_entries_and_totals(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.responder = TeamScript(plan=PARALLEL_PLAN)
    result = ccpt_against(messages_api, tmp_path, "ask", "--json", "fine-tune BERT")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)

    entries = json.loads(run_ccpt_in_process("agent", "log", "--json", cwd=tmp_path).stdout)
    assert {e["conversation_id"] for e in entries} == {data["conversation_id"]}
    assert sorted(e["kind"] for e in entries) == ["ask-role"] * 3 + ["ask-route", "ask-synthesis"]
    assert sorted(e["role"] for e in entries if e["kind"] == "ask-role") == [
        "DataEngineer",
        "DatasetCurator",
        "ModelArchitect",
    ]
    assert data["totals"]["cost_usd"] == pytest.approx(sum(e["cost_usd"] for e in entries), abs=1e-6)
    assert data["synthesis"]["answer"].startswith("## Merged plan")


def test_piped_output_is_the_merged_plan_with_costs_on_stderr(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.responder = TeamScript(plan=PARALLEL_PLAN)
    result = ccpt_against(messages_api, tmp_path, "ask", "fine-tune BERT")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "## Merged plan\n\n1. Do the first thing (DataEngineer)\n"
    for call in (
        "Supervisor (routing)",
        "DatasetCurator",
        "DataEngineer",
        "ModelArchitect",
        "Supervisor (synthesis)",
    ):
        assert call in result.stderr
    assert "total" in result.stderr and "$" in result.stderr


def test_ctrl_c_during_an_exchange_is_one_line_and_answers_so_far_stay_in_history(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    slow = Reply(text="word " * 300, chunk_delay=0.02)
    messages_api.responder = TeamScript(replies={"DataEngineer": slow})
    env = {**os.environ, **api_env(messages_api), "HOME": str(tmp_path), "NO_COLOR": "1"}
    argv = [sys.executable, "-m", "ccpt", "ask", "--agents", "dataset,data", "which data?"]
    proc = subprocess.Popen(
        argv, cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 60
    while not any("You are DataEngineer" in r.system_text for r in messages_api.message_requests()):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.05)
    time.sleep(0.6)  # DataEngineer is part-way through its 6 s answer
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    lines = stderr.strip().splitlines()
    assert lines[-1].startswith("error: interrupted; the answers so far, partial ones too, are in"), stderr
    assert "Traceback" not in stderr
    entries = json.loads(run_ccpt_in_process("agent", "log", "--json", cwd=tmp_path).stdout)
    statuses = [(e["role"], e["status"]) for e in entries]
    assert statuses == [("DataEngineer", "interrupted"), ("DatasetCurator", "complete")]  # newest first
    cut = entries[0]["answer"]  # what the interrupted role had streamed before Ctrl-C
    assert cut.startswith("word word") and len(cut) < len(slow.text)


# -- the project tools on their own --------------------------------------------------------------
def test_project_tools_stay_inside_the_project(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    (project / "src").mkdir(parents=True)
    (project / "src" / "model.py").write_text("class Net:\n    pass\n")
    (project / ".env").write_text("ANTHROPIC_API_KEY=sk-ant-secret\n")
    (tmp_path / "outside.txt").write_text("private\n")
    os.symlink(tmp_path / "outside.txt", project / "link.txt")
    tools = ProjectTools(project)

    assert tools.run("read_file", {"path": "src/model.py", "start_line": 1, "end_line": 1}).text.endswith(
        "1  class Net:"
    )
    for path in ("../outside.txt", str(tmp_path / "outside.txt"), "link.txt", "src/../../outside.txt"):
        outcome = tools.run("read_file", {"path": path})
        assert not outcome.ok and "outside the project directory" in outcome.text, path
    secret = tools.run("read_file", {"path": ".env"})
    assert not secret.ok and "not shared" in secret.text
    listing = tools.run("list_files", {})
    assert "src/model.py" in listing.text and ".env" not in listing.text and "link.txt" not in listing.text
    assert tools.run("grep", {"pattern": "class \\w+"}).text == "1 matches\nsrc/model.py:1: class Net:"
    assert not tools.run("grep", {"pattern": "("}).ok
    assert not tools.run("write_file", {"path": "x"}).ok


def test_project_tools_cap_what_they_return(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("x" * 100 + "\n" * 2 + ("line\n" * (MAX_READ_BYTES // 5 + 100)))
    outcome = ProjectTools(tmp_path).run("read_file", {"path": "big.txt"})
    assert outcome.ok and "cut at 64 KiB" in outcome.text.splitlines()[0]
    assert len(outcome.text) < MAX_READ_BYTES * 1.3
