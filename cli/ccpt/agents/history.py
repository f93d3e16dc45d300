"""The consultation log: every question and answer in SQLite under ccpt's data directory.

One row per answer (an `ccpt ask` exchange is one conversation with a row per role). Rows keep
what a user needs to find, reread, cost and continue a conversation: role, model, question, the
user turn as sent, answer, usage, cost, time and ids. Secrets never reach the file: the text is
scrubbed of API keys, tokens and private keys before it is written.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from ccpt.agents.models import Usage
from ccpt.errors import CcptError

SCHEMA_VERSION = 2
SCHEMA = """
CREATE TABLE IF NOT EXISTS consultations (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    kind TEXT NOT NULL DEFAULT 'agent',
    role TEXT NOT NULL,
    model TEXT NOT NULL,
    question TEXT NOT NULL,
    user_content TEXT NOT NULL,
    answer TEXT NOT NULL,
    status TEXT NOT NULL,
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    cache_write_tokens INTEGER NOT NULL DEFAULT 0,
    cache_read_tokens INTEGER NOT NULL DEFAULT 0,
    cost_usd REAL,
    attachments TEXT NOT NULL DEFAULT '[]',
    tool_calls TEXT NOT NULL DEFAULT '[]',
    message_id TEXT,
    request_id TEXT,
    created_at TEXT NOT NULL,
    duration_s REAL
);
CREATE INDEX IF NOT EXISTS consultations_role ON consultations (role, id);
CREATE INDEX IF NOT EXISTS consultations_conversation ON consultations (conversation_id, id);
"""
# What each older schema version lacks, applied in order when an older file is opened.
MIGRATIONS = {2: "ALTER TABLE consultations ADD COLUMN tool_calls TEXT NOT NULL DEFAULT '[]'"}

REDACTED = "[REDACTED]"
_SECRET_PATTERNS = (
    re.compile(r"sk-ant-[A-Za-z0-9_\-]{8,}"),
    re.compile(r"\b(?:AKIA|ASIA)[0-9A-Z]{16}\b"),
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bhf_[A-Za-z0-9]{30,}\b"),
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"),
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL),
    re.compile(
        r"(?i)\b([A-Z0-9_]*(?:SECRET|PASSWORD|PASSWD|TOKEN|API_KEY|ACCESS_KEY)[A-Z0-9_]*)"
        r"(\s*[:=]\s*)(['\"]?)[^\s'\"]{6,}\3"
    ),
)
_SECRET_ENV_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)")


def redact(text: str) -> str:
    """`text` without secrets: known token shapes, `NAME=value` secrets, and secret env values."""
    for name, value in os.environ.items():
        if _SECRET_ENV_NAME.search(name) and len(value) >= 8:
            text = text.replace(value, REDACTED)
    for pattern in _SECRET_PATTERNS:
        if pattern.groups == 3:
            text = pattern.sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        else:
            text = pattern.sub(REDACTED, text)
    return text


def new_conversation_id() -> str:
    return uuid.uuid4().hex[:12]


@dataclass
class Entry:
    """One logged answer."""

    conversation_id: str
    role: str
    model: str
    question: str
    user_content: Any
    answer: str
    status: str = "complete"  # complete | interrupted | cut | failed
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    attachments: list[str] = field(default_factory=list)
    tool_calls: list[dict[str, Any]] = field(default_factory=list)
    message_id: str | None = None
    request_id: str | None = None
    kind: str = "agent"  # agent | ask-route | ask-role | ask-synthesis
    created_at: str = ""
    duration_s: float | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["usage"] = self.usage.to_dict()
        return data


class History:
    """The SQLite file; each method opens a short transaction so concurrent ccpt runs coexist."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.path, timeout=10)
        except (OSError, sqlite3.Error) as exc:
            raise CcptError(f"cannot open the history at {self.path}: {exc}", hint="check CCPT_HOME") from exc
        connection.row_factory = sqlite3.Row
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            if version < SCHEMA_VERSION:
                if version == 0:
                    connection.executescript(SCHEMA)
                else:
                    for step in range(version + 1, SCHEMA_VERSION + 1):
                        connection.execute(MIGRATIONS[step])
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            with connection:
                yield connection
        except sqlite3.DatabaseError as exc:
            raise CcptError(
                f"the history at {self.path} is unreadable: {exc}", hint="move the file aside"
            ) from exc
        finally:
            connection.close()

    def record(self, entry: Entry) -> int:
        """Store `entry` (secrets scrubbed) and return its id."""
        entry.created_at = entry.created_at or datetime.now(timezone.utc).isoformat(timespec="seconds")
        row = {
            "conversation_id": entry.conversation_id,
            "kind": entry.kind,
            "role": entry.role,
            "model": entry.model,
            "question": redact(entry.question),
            "user_content": redact(json.dumps(entry.user_content)),
            "answer": redact(entry.answer),
            "status": entry.status,
            **{key: value for key, value in entry.usage.to_dict().items()},
            "cost_usd": entry.cost_usd,
            "attachments": json.dumps(entry.attachments),
            "tool_calls": redact(json.dumps(entry.tool_calls)),
            "message_id": entry.message_id,
            "request_id": entry.request_id,
            "created_at": entry.created_at,
            "duration_s": entry.duration_s,
        }
        columns = ", ".join(row)
        marks = ", ".join(f":{key}" for key in row)
        with self._connect() as db:
            cursor = db.execute(f"INSERT INTO consultations ({columns}) VALUES ({marks})", row)
        entry.id = int(cursor.lastrowid or 0)
        return entry.id

    def entries(
        self, limit: int = 20, role: str | None = None, conversation_id: str | None = None
    ) -> list[Entry]:
        """The newest entries first, optionally for one role or one conversation."""
        if not self.path.exists():
            return []
        where, args = [], []
        if role:
            where.append("role = ?")
            args.append(role)
        if conversation_id:
            where.append("conversation_id = ?")
            args.append(conversation_id)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        with self._connect() as db:
            rows = db.execute(
                f"SELECT * FROM consultations {clause} ORDER BY id DESC LIMIT ?", [*args, limit]
            )
            return [_entry(row) for row in rows]

    def get(self, entry_id: int) -> Entry:
        if self.path.exists():
            with self._connect() as db:
                row = db.execute("SELECT * FROM consultations WHERE id = ?", (entry_id,)).fetchone()
            if row is not None:
                return _entry(row)
        raise CcptError(f"no history entry #{entry_id}", hint="`ccpt agent log` lists them", exit_code=2)

    def last_conversation(self, role: str) -> str | None:
        """The conversation of the newest one-to-one consultation with `role`."""
        entries = [e for e in self.entries(limit=50, role=role) if e.kind == "agent"]
        return entries[0].conversation_id if entries else None

    def turns(self, conversation_id: str, role: str) -> list[dict[str, Any]]:
        """The conversation's earlier messages with `role`, oldest first, as Messages API turns."""
        messages: list[dict[str, Any]] = []
        for entry in reversed(self.entries(limit=200, role=role, conversation_id=conversation_id)):
            if not entry.answer:
                continue
            messages.append({"role": "user", "content": entry.user_content})
            messages.append({"role": "assistant", "content": entry.answer})
        return messages


def _entry(row: sqlite3.Row) -> Entry:
    return Entry(
        id=row["id"],
        conversation_id=row["conversation_id"],
        kind=row["kind"],
        role=row["role"],
        model=row["model"],
        question=row["question"],
        user_content=json.loads(row["user_content"]),
        answer=row["answer"],
        status=row["status"],
        usage=Usage(
            row["input_tokens"], row["output_tokens"], row["cache_write_tokens"], row["cache_read_tokens"]
        ),
        cost_usd=row["cost_usd"],
        attachments=json.loads(row["attachments"]),
        tool_calls=json.loads(row["tool_calls"]),
        message_id=row["message_id"],
        request_id=row["request_id"],
        created_at=row["created_at"],
        duration_s=row["duration_s"],
    )
