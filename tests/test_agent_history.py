"""The history file: secrets scrubbed, older files upgraded in place, continuation turns."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from ccpt.agents.history import Entry, History, redact
from ccpt.agents.models import Usage


@pytest.mark.parametrize(
    ("text", "kept"),
    [
        ("key sk-ant-api03-AbCdEf0123456789xyz here", "key [REDACTED] here"),
        ("aws AKIAIOSFODNN7EXAMPLE", "aws [REDACTED]"),
        ("HF_TOKEN=hf_abcdefghijklmnopqrstuvwxyz0123456789", "HF_TOKEN=[REDACTED]"),
        ("password: 'hunter2hunter2'", "password: [REDACTED]"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----", "[REDACTED]"),
        ("batch_size: 64 and token budget 4096", "batch_size: 64 and token budget 4096"),
    ],
)
def test_redaction_removes_secrets_and_keeps_ordinary_text(text: str, kept: str) -> None:
    assert redact(text) == kept


def test_secret_values_from_the_environment_are_scrubbed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANDB_API_KEY", "0123456789abcdef")
    assert redact("logged in with 0123456789abcdef") == "logged in with [REDACTED]"


def test_a_version_1_history_file_is_upgraded_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "history.db"
    with sqlite3.connect(path) as db:  # the schema ccpt wrote before tool calls were logged
        db.executescript(
            """
            CREATE TABLE consultations (
                id INTEGER PRIMARY KEY AUTOINCREMENT, conversation_id TEXT NOT NULL,
                kind TEXT NOT NULL DEFAULT 'agent', role TEXT NOT NULL, model TEXT NOT NULL,
                question TEXT NOT NULL, user_content TEXT NOT NULL, answer TEXT NOT NULL,
                status TEXT NOT NULL,
                input_tokens INTEGER NOT NULL DEFAULT 0, output_tokens INTEGER NOT NULL DEFAULT 0,
                cache_write_tokens INTEGER NOT NULL DEFAULT 0, cache_read_tokens INTEGER NOT NULL DEFAULT 0,
                cost_usd REAL, attachments TEXT NOT NULL DEFAULT '[]', message_id TEXT, request_id TEXT,
                created_at TEXT NOT NULL, duration_s REAL);
            INSERT INTO consultations (conversation_id, role, model, question, user_content, answer, status,
                created_at) VALUES ('c1', 'DataEngineer', 'claude-sonnet-5-5', 'old?', '"old?"', 'old answer',
                'complete', '2026-11-01T00:00:00+00:00');
            PRAGMA user_version = 1;
            """
        )
    history = History(path)
    new_id = history.record(
        Entry(
            "c2", "DataEngineer", "claude-sonnet-5-5", "new?", "new?", "new answer", usage=Usage(1, 2, 3, 4)
        )
    )
    assert [e.question for e in history.entries()] == ["new?", "old?"]
    assert history.get(new_id).usage == Usage(1, 2, 3, 4) and history.get(1).tool_calls == []


def test_continuation_turns_are_the_conversations_questions_and_answers(tmp_path: Path) -> None:
    history = History(tmp_path / "history.db")
    history.record(Entry("c1", "ModelArchitect", "m", "q1", "q1", "a1"))
    history.record(Entry("c1", "ModelArchitect", "m", "q2", [{"type": "text", "text": "q2"}], "a2"))
    history.record(Entry("c2", "ModelArchitect", "m", "other", "other", "x"))
    history.record(Entry("c1", "ModelArchitect", "m", "routing", "r", "plan", kind="ask-route"))
    assert history.last_conversation("ModelArchitect") == "c2"
    assert history.turns("c1", "ModelArchitect")[:4] == [
        {"role": "user", "content": "q1"},
        {"role": "assistant", "content": "a1"},
        {"role": "user", "content": [{"type": "text", "text": "q2"}]},
        {"role": "assistant", "content": "a2"},
    ]
