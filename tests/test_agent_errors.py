"""Every failure of a consultation is one clear line and a non-zero exit; partial answers are kept."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import run_ccpt
from tests.messages_api import (
    FAKE_API_KEY,
    MessagesApiServer,
    Reply,
    api_env,
    ccpt_against,
    run_ccpt_in_process,
)


def agent(
    server: MessagesApiServer, cwd: Path, *args: str, **options: Any
) -> subprocess.CompletedProcess[str]:
    """`ccpt agent ...` in a fresh process."""
    return ccpt_against(server, cwd, "agent", *args, fresh_process=True, **options)


def agent_here(server: MessagesApiServer, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """`ccpt agent ...` in this process (no fresh interpreter per call)."""
    return ccpt_against(server, cwd, "agent", *args)


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def log_entries(cwd: Path) -> list[dict]:
    return json.loads(run_ccpt_in_process("agent", "log", "--json", cwd=cwd).stdout)


def test_a_missing_api_key_fails_in_one_line_saying_how_to_set_it(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    result = agent(messages_api, tmp_path, "NetworkArchitect", "q", key=None)
    assert result.returncode == 2
    line = one_error_line(result)
    assert "ANTHROPIC_API_KEY is not set" in line and "export ANTHROPIC_API_KEY=" in line
    assert messages_api.requests == []


def test_a_rejected_key_is_401_in_one_line_without_retries(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.fail(401, "authentication_error")
    result = agent_here(messages_api, tmp_path, "network", "q")
    assert result.returncode == 1
    assert "the API key was rejected (401)" in one_error_line(result)
    assert len(messages_api.message_requests()) == 1


@pytest.mark.parametrize(("status", "error_type"), [(429, "rate_limit_error"), (529, "overloaded_error")])
def test_a_busy_api_is_retried_and_then_answers(
    messages_api: MessagesApiServer, tmp_path: Path, status: int, error_type: str
) -> None:
    messages_api.fail(status, error_type, retry_after=0.05)
    messages_api.fail(status, error_type, retry_after=0.05)
    messages_api.reply("Answer after the retries.")
    result = agent_here(messages_api, tmp_path, "network", "q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == "Answer after the retries.\n"
    assert len(messages_api.message_requests()) == 3


@pytest.mark.parametrize(
    ("status", "error_type", "message"),
    [
        (429, "rate_limit_error", "rate limited (429) after 3 retries"),
        (529, "overloaded_error", "Claude is overloaded (529) after 3 retries"),
        (500, "api_error", "the API failed (500) after 3 retries"),
    ],
)
def test_a_busy_api_after_all_retries_is_one_line(
    messages_api: MessagesApiServer, tmp_path: Path, status: int, error_type: str, message: str
) -> None:
    for _ in range(4):
        messages_api.fail(status, error_type, retry_after=0.02)
    result = agent_here(messages_api, tmp_path, "network", "q")
    assert result.returncode == 1
    assert message in one_error_line(result)
    assert len(messages_api.message_requests()) == 4


@pytest.mark.slow  # the SDK's backoff between connection retries is most of its time
def test_an_unreachable_endpoint_is_one_line_naming_it(tmp_path: Path) -> None:
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}"
    env = {"ANTHROPIC_BASE_URL": url, "ANTHROPIC_API_KEY": FAKE_API_KEY, "HOME": str(tmp_path)}
    result = run_ccpt("agent", "network", "q", cwd=tmp_path, env=env, input="")
    assert result.returncode == 1
    assert f"cannot reach the Messages API at {url}" in one_error_line(result)


def test_a_stream_cut_mid_way_is_an_error_and_the_partial_answer_is_kept(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("The first part of a long answer. " * 10, cut_after_chars=60)
    result = agent_here(messages_api, tmp_path, "network", "q")
    assert result.returncode == 1
    line = one_error_line(result)
    assert "the answer stream was cut after" in line and "history entry #1" in line
    assert result.stdout.startswith("The first part of a long answer.")
    (entry,) = log_entries(tmp_path)
    assert entry["status"] == "cut" and entry["answer"] == result.stdout.rstrip("\n")


def test_a_stream_that_ends_without_message_stop_is_not_an_answer(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("Looks complete, but the server never said so.", omit_message_stop=True)
    result = agent_here(messages_api, tmp_path, "network", "--json", "q")
    assert result.returncode == 1
    assert "the answer stream was cut after" in one_error_line(result)
    assert result.stdout == ""  # --json prints nothing rather than a half answer
    assert log_entries(tmp_path)[0]["status"] == "cut"


def test_ctrl_c_mid_stream_keeps_and_logs_the_partial_answer(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.reply("word " * 400, chunk_delay=0.02)
    env = {**api_env(messages_api), "HOME": str(tmp_path), "NO_COLOR": "1"}

    proc = subprocess.Popen(
        [sys.executable, "-m", "ccpt", "agent", "network", "q"],
        cwd=tmp_path,
        env={**os.environ, **env},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 30
    while not messages_api.message_requests() and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let part of the answer arrive
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: interrupted;"), stderr
    assert "kept as history entry #1" in lines[0]
    (entry,) = log_entries(tmp_path)
    assert entry["status"] == "interrupted"
    assert entry["answer"].startswith("word word") and entry["answer"] == stdout.rstrip("\n")
    assert len(entry["answer"]) < len("word " * 400)


def test_an_api_error_event_mid_stream_keeps_the_partial_answer(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    messages_api.script.append(Reply(text="Half of the answer and then", error_event_after_chars=12))
    result = agent_here(messages_api, tmp_path, "network", "q")
    assert result.returncode == 1
    assert "the answer stopped with an API error: scripted overloaded_error" in one_error_line(result)
    assert log_entries(tmp_path)[0]["status"] == "cut"


@pytest.mark.slow
def test_no_answer_within_the_timeout_is_one_line_after_the_retries(
    messages_api: MessagesApiServer, tmp_path: Path
) -> None:
    for _ in range(4):
        messages_api.script.append(Reply(text="too late", delay_before=3))
    result = agent_here(messages_api, tmp_path, "network", "--timeout", "1", "q")
    assert result.returncode == 1
    assert "within 1s" in one_error_line(result) and "--timeout" in result.stderr
    assert len(messages_api.message_requests()) == 4
