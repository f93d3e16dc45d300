"""`ccpt agent ROLE "..."` end to end: the real CLI and the real SDK against a local Messages API.

Tests that depend on the process boundary (piped stdout and stdin, warnings, the exact request
of a fresh process) run `ccpt` in a subprocess; the others run the same app in-process, which
skips a fresh interpreter and SDK import per call.
"""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import pytest

from ccpt.agents.models import Usage, cost_usd
from tests.conftest import deprecated_model, run_ccpt
from tests.messages_api import FAKE_API_KEY, MessagesApiServer, ccpt_against, run_ccpt_in_process

FOOTER = re.compile(
    r"(?P<role>\w+) · (?P<model>[\w-]+) · input (?P<input>[\d,]+) · output (?P<output>[\d,]+) · "
    r"cache write (?P<write>[\d,]+) · cache read (?P<read>[\d,]+) · \$(?P<cost>[\d.]+)"
)


def agent(
    server: MessagesApiServer, cwd: Path, *args: str, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`ccpt agent ...` in a fresh process."""
    return ccpt_against(server, cwd, "agent", *args, fresh_process=True, **options)


def agent_here(
    server: MessagesApiServer, cwd: Path, *args: str, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`ccpt agent ...` in this process."""
    return ccpt_against(server, cwd, "agent", *args, **options)


def footer(stderr: str) -> dict[str, str]:
    match = FOOTER.search(stderr)
    assert match, stderr
    return match.groupdict()


def tokens(value: str) -> int:
    return int(value.replace(",", ""))


def test_a_consultation_streams_the_answer_and_prints_usage_and_cost(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    answer = "## Recommendation\n\nUse a **fused QKV** projection: one matmul instead of three.\n"
    messages_api.reply(answer)
    result = agent(messages_api, tmp_path, "NetworkArchitect", "fused QKV or separate projections?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == answer  # piped: plain Markdown text, nothing else on stdout

    info = footer(result.stderr)
    assert info["role"] == "NetworkArchitect" and info["model"] == "claude-opus-5-5"
    usage = Usage(tokens(info["input"]), tokens(info["output"]), tokens(info["write"]), tokens(info["read"]))
    assert usage.output_tokens > 0 and usage.cache_write_tokens > 0
    assert float(info["cost"]) == pytest.approx(cost_usd("claude-opus-5-5", usage), abs=1e-4)

    (request,) = messages_api.message_requests()
    assert request.headers["authorization"] == f"Bearer {FAKE_API_KEY}"
    assert request.body["stream"] is True
    assert request.body["model"] == "claude-opus-5-5"
    assert request.last_user_text == "fused QKV or separate projections?"


def test_the_system_prompt_is_charter_then_role_with_cache_control_on_the_prefix(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent(
        messages_api, tmp_path, "data", "--system", "Answer in under 100 words.", "why is it slow?"
    )
    assert result.returncode == 0, result.stderr
    charter, role, extra = messages_api.message_requests()[0].body["system"]
    assert charter["text"].startswith("# Team charter") and charter["cache_control"] == {"type": "ephemeral"}
    assert "You are DataEngineer" in role["text"] and role["cache_control"] == {"type": "ephemeral"}
    assert extra == {"type": "text", "text": "Answer in under 100 words."}


def test_a_repeat_question_reads_the_prefix_from_the_cache_and_costs_less(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    first = footer(agent_here(messages_api, tmp_path, "network", "first question").stderr)
    second = footer(agent_here(messages_api, tmp_path, "network", "second question").stderr)
    assert tokens(first["write"]) > 1024 and tokens(first["read"]) == 0
    assert tokens(second["write"]) == 0 and tokens(second["read"]) == tokens(first["write"])
    assert float(second["cost"]) < float(first["cost"]) / 3


def test_json_output_has_answer_model_usage_cost_and_ids(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("Use bf16 autocast.")
    result = agent_here(messages_api, tmp_path, "training", "--json", "fp16 or bf16?")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["answer"] == "Use bf16 autocast."
    assert data["role"] == "TrainingOrchestrator" and data["model"] == "claude-opus-5-5"
    assert set(data["usage"]) == {"input_tokens", "output_tokens", "cache_write_tokens", "cache_read_tokens"}
    assert data["cost_usd"] == pytest.approx(cost_usd(data["model"], Usage(**data["usage"])))
    assert data["ids"]["message"].startswith("msg_") and data["ids"]["request"]
    assert data["ids"]["history_entry"] == 1 and len(data["ids"]["conversation"]) == 12


def test_dry_run_needs_no_key_and_prints_the_exact_request_that_is_later_sent(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    args = ("model", "-f", "README.md", "--max-tokens", "900", "which BERT fits 16 GB?")
    (tmp_path / "README.md").write_text("# My project\n")
    dry = agent(messages_api, tmp_path, *args, "--dry-run", key=None)
    assert dry.returncode == 0, dry.stderr
    assert messages_api.requests == []  # nothing left the machine
    printed = json.loads(dry.stdout)
    assert printed["method"] == "POST" and printed["url"] == f"{messages_api.url}/v1/messages"
    assert printed["headers"]["authorization"] == "(ANTHROPIC_API_KEY not set)"
    assert "estimated" in dry.stderr and "over claude-sonnet-5-5's minimum" in dry.stderr

    sent = agent_here(messages_api, tmp_path, *args)
    assert sent.returncode == 0, sent.stderr
    (request,) = messages_api.message_requests()
    assert request.body == printed["body"]
    assert request.headers["anthropic-version"] == printed["headers"]["anthropic-version"]


def test_dry_run_with_a_key_counts_the_prefix_with_the_token_count_endpoint(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "network", "--dry-run", "--json", "q")
    assert result.returncode == 0, result.stderr
    assert [r.path for r in messages_api.requests] == ["/v1/messages/count_tokens"]
    cache = json.loads(result.stdout)["cache"]
    assert cache["counted"] is True and cache["reaches_minimum"] is True
    assert "counted" in result.stderr


def test_dry_run_says_when_the_prefix_is_under_the_models_cache_floor(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "network", "--model", "haiku", "--dry-run", "q", key=None)
    assert result.returncode == 0, result.stderr
    assert "will NOT be cached" in result.stderr and "claude-haiku-5-5" in result.stderr


def test_attached_files_and_standard_input_are_sent_with_their_paths(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "data.py").write_text("loader = DataLoader(ds, num_workers=0)\n")
    (tmp_path / "config.yaml").write_text("batch_size: 64\n")
    result = agent(
        messages_api,
        tmp_path,
        "DataEngineer",
        "-f",
        "src/data.py",
        "--file",
        "config.yaml",
        "why is the GPU idle?",
        input="step 10 | data wait 0.82s | compute 0.11s\n",
    )
    assert result.returncode == 0, result.stderr
    content = messages_api.message_requests()[0].body["messages"][-1]["content"]
    texts = [block["text"] for block in content]
    assert texts[0] == '<file path="src/data.py">\nloader = DataLoader(ds, num_workers=0)\n\n</file>'
    assert texts[1].startswith('<file path="config.yaml">\nbatch_size: 64')
    assert texts[2] == "<stdin>\nstep 10 | data wait 0.82s | compute 0.11s\n\n</stdin>"
    assert texts[3] == "why is the GPU idle?"


def test_piped_input_without_a_question_asks_for_a_review(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "DataEngineer", input="Traceback: CUDA out of memory\n")
    assert result.returncode == 0, result.stderr
    assert "Review the attached input" in messages_api.message_requests()[0].last_user_text


def test_a_missing_or_binary_file_is_refused_before_anything_is_sent(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    (tmp_path / "weights.bin").write_bytes(b"\x00\x01\x02")
    missing = agent_here(messages_api, tmp_path, "network", "-f", "nope.py", "q")
    binary = agent_here(messages_api, tmp_path, "network", "-f", "weights.bin", "q")
    assert missing.returncode == 2 and "--file nope.py: no such file" in missing.stderr
    assert binary.returncode == 2 and "looks binary" in binary.stderr
    assert messages_api.requests == []


def test_continue_sends_the_earlier_turns_of_the_last_conversation_with_that_role(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("Use LoRA with rank 16.")
    messages_api.reply("Then QLoRA with 4-bit NF4 weights.")
    messages_api.reply("Unrelated answer.")
    assert agent_here(messages_api, tmp_path, "ModelArchitect", "fine-tune a 7B model?").returncode == 0
    assert agent_here(messages_api, tmp_path, "TestArchitect", "tests for it?").returncode == 0
    result = agent_here(messages_api, tmp_path, "model", "-c", "and with only 16 GB?")
    assert result.returncode == 0, result.stderr

    messages = messages_api.message_requests()[2].body["messages"]
    assert messages == [
        {"role": "user", "content": "fine-tune a 7B model?"},
        {"role": "assistant", "content": "Use LoRA with rank 16."},
        {"role": "user", "content": "and with only 16 GB?"},
    ]
    entries = json.loads(
        run_ccpt_in_process("agent", "log", "--json", "--role", "model", cwd=tmp_path).stdout
    )
    assert [e["question"] for e in entries] == ["and with only 16 GB?", "fine-tune a 7B model?"]
    assert entries[0]["conversation_id"] == entries[1]["conversation_id"]


def test_continue_without_an_earlier_conversation_is_a_clear_error(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "network", "-c", "more?")
    assert result.returncode == 2
    assert "no earlier conversation with NetworkArchitect" in result.stderr
    assert messages_api.requests == []


def test_history_logs_each_consultation_and_log_shows_it(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("Checkpoint every 10 minutes on spot.")
    assert agent_here(messages_api, tmp_path, "compute", "spot or on-demand for 8 hours?").returncode == 0
    assert agent_here(messages_api, tmp_path, "compute", "--no-log", "not logged").returncode == 0

    listing = run_ccpt_in_process("agent", "log", cwd=tmp_path)
    assert listing.returncode == 0
    assert "ComputeOrchestrator" in listing.stdout and "spot or on-demand" in listing.stdout
    assert "not logged" not in listing.stdout
    narrow = run_ccpt("agent", "log", cwd=tmp_path, env={"HOME": str(tmp_path), "COLUMNS": "80"})
    assert "spot or on-demand" in narrow.stdout and "ComputeOrchestrator" in narrow.stdout
    assert max(len(line) for line in narrow.stdout.splitlines()) <= 80

    shown = run_ccpt_in_process("agent", "log", "1", cwd=tmp_path)
    assert "Checkpoint every 10 minutes on spot." in shown.stdout
    assert "claude-sonnet-5-5" in shown.stderr and "$" in shown.stderr
    entry = json.loads(run_ccpt_in_process("agent", "log", "1", "--json", cwd=tmp_path).stdout)
    assert entry["status"] == "complete" and entry["cost_usd"] > 0 and entry["usage"]["output_tokens"] > 0
    assert entry["model"] == "claude-sonnet-5-5" and entry["message_id"].startswith("msg_")


def test_no_secret_reaches_the_history_file(
    messages_api: MessagesApiServer, tmp_path: Path, isolated_env: Path
) -> None:
    (tmp_path / ".env").write_text(
        f"ANTHROPIC_API_KEY={FAKE_API_KEY}\nAWS_ACCESS_KEY_ID=AKIAIOSFODNN7EXAMPLE\n"
        "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n"
    )
    messages_api.reply(f"Never commit {FAKE_API_KEY} or AKIAIOSFODNN7EXAMPLE.")
    result = agent_here(messages_api, tmp_path, "cloud", "-f", ".env", f"is my key {FAKE_API_KEY} safe here?")
    assert result.returncode == 0, result.stderr
    raw = (isolated_env / "history.db").read_bytes()
    for secret in (FAKE_API_KEY, "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"):
        assert secret.encode() not in raw
    with sqlite3.connect(isolated_env / "history.db") as db:
        question, answer = db.execute("SELECT question, answer FROM consultations").fetchone()
    assert question == "is my key [REDACTED] safe here?"
    assert answer == "Never commit [REDACTED] or [REDACTED]."


def test_no_stream_waits_for_one_json_response(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    messages_api.reply("One piece.")
    result = agent_here(messages_api, tmp_path, "metrics", "--no-stream", "macro or micro F1?")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "One piece.\n"
    assert "stream" not in messages_api.message_requests()[0].body
    assert footer(result.stderr)["role"] == "MetricsArchitect"


def test_model_and_max_tokens_options_shape_the_request(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "network", "--model", "sonnet", "--max-tokens", "321", "q")
    assert result.returncode == 0, result.stderr
    body = messages_api.message_requests()[0].body
    assert body["model"] == "claude-sonnet-5-5" and body["max_tokens"] == 321


def test_the_configured_default_model_serves_roles_that_inherit(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    (tmp_path / "ccpt.toml").write_text('model = "claude-opus-4-8"\n')
    assert agent_here(messages_api, tmp_path, "DomainExpert", "q").returncode == 0
    assert messages_api.message_requests()[0].body["model"] == "claude-opus-4-8"


def test_a_deprecated_model_gets_one_notice_line_and_still_answers(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    model, retires = deprecated_model()
    result = agent(messages_api, tmp_path, "network", "--model", model, "q")
    assert result.returncode == 0, result.stderr
    notices = [line for line in result.stderr.splitlines() if "deprecated" in line]
    assert len(notices) == 1 and f" on {retires};" in notices[0]
    assert "DeprecationWarning" not in result.stderr


def test_an_answer_cut_by_max_tokens_says_so(messages_api: MessagesApiServer, tmp_path: Path) -> None:
    def truncated(request):  # type: ignore[no-untyped-def]
        from tests.messages_api import Reply

        return Reply(text="partial plan", stop_reason_override="max_tokens")

    messages_api.responder = truncated
    result = agent_here(messages_api, tmp_path, "network", "--max-tokens", "5", "q")
    assert result.returncode == 0
    assert "cut at 5 tokens" in result.stderr


def test_a_task_spec_travels_in_the_uncached_part_of_the_system_prompt(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    spec = tmp_path / "task.md"
    spec.write_text(
        "## Sentiment for support tickets\n\n**User Story:** As a support lead, I want tickets labelled by "
        "sentiment, so that angry customers are answered first.\n\n**Prompt:** Fine-tune a small encoder.\n\n"
        "### CONSTRAINTS\n- Latency under 50ms per ticket\n\n### REWARDS\n- Macro-F1 of at least 0.85\n"
    )
    result = agent_here(messages_api, tmp_path, "metrics", "--spec", str(spec), "which metric gates this?")
    assert result.returncode == 0, result.stderr
    system = messages_api.message_requests()[0].body["system"]
    assert len(system) == 3 and "cache_control" not in system[2]
    assert "check your answer against it" in system[2]["text"]
    assert "Macro-F1 of at least 0.85" in system[2]["text"] and "Latency under 50ms" in system[2]["text"]


def test_an_unknown_spec_is_one_error_line_and_nothing_is_sent(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent_here(messages_api, tmp_path, "metrics", "--spec", "no-such-spec", "q")
    assert result.returncode != 0
    assert "no-such-spec" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert messages_api.requests == []
