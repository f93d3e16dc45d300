"""A local Messages API server for tests: the real `anthropic` SDK talks to it over HTTP.

It speaks what ccpt uses of the API: `POST /v1/messages` as JSON and as SSE (`message_start`,
`content_block_start`, `content_block_delta` with `text_delta`/`input_json_delta`,
`content_block_stop`, `message_delta` with usage, `message_stop`, `ping`) and
`POST /v1/messages/count_tokens`. Replies come from a script that a test fills (text, tool
calls, HTTP errors with `retry-after`, a stream cut mid-way) or, when the script is empty, from
a responder function. Prompt caching is simulated: a system prefix marked with `cache_control`
that is long enough is written to the cache the first time and read from it afterwards, so the
usage a test sees behaves like the real service. Every request is recorded.

Use the `messages_api` fixture; `api_env(server)` gives the environment for a `ccpt` subprocess.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

FAKE_API_KEY = "sk-ant-test-0000000000000000000000000000"


def estimate_tokens(value: Any) -> int:
    """A stand-in tokenizer: about four characters of JSON per token."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    return max(1, len(text) // 4)


@dataclass
class RecordedRequest:
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    started: float = 0.0
    finished: float = 0.0

    @property
    def system_text(self) -> str:
        system = self.body.get("system") or ""
        if isinstance(system, str):
            return system
        return "\n".join(block.get("text", "") for block in system)

    @property
    def last_user_text(self) -> str:
        message = [m for m in self.body.get("messages", []) if m["role"] == "user"][-1]
        content = message["content"]
        if isinstance(content, str):
            return content
        return "\n".join(block.get("text", "") for block in content if block.get("type") == "text")


@dataclass
class Reply:
    """One scripted answer to `POST /v1/messages`."""

    text: str = ""
    tool_calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)
    status: int = 200
    error_type: str = ""
    retry_after: float | None = None
    cut_after_chars: int | None = None  # close the connection mid-stream (no final chunk)
    omit_message_stop: bool = False  # end the body cleanly but never send message_stop
    error_event_after_chars: int | None = None  # send an SSE `error` event (overloaded) mid-stream
    chunk_delay: float = 0.0
    delay_before: float = 0.0  # seconds of silence before the response starts (timeouts)
    output_tokens: int | None = None
    stop_reason_override: str | None = None  # e.g. "max_tokens"

    @property
    def stop_reason(self) -> str:
        if self.stop_reason_override:
            return self.stop_reason_override
        return "tool_use" if self.tool_calls else "end_turn"


Responder = Callable[[RecordedRequest], Reply]


def echo_responder(request: RecordedRequest) -> Reply:
    """The default answer: a short Markdown reply that quotes the question."""
    question = request.last_user_text.strip().splitlines()[-1][:80]
    return Reply(text=f"## Answer\n\nYou asked: *{question}*\n\n- first point\n- second point\n")


class _QuietHTTPServer(ThreadingHTTPServer):
    """Clients that hang up (a cut stream, a closed keep-alive connection) are normal here."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class MessagesApiServer:
    """A threaded HTTP server on 127.0.0.1 with a reply script and a request log."""

    def __init__(self, min_cacheable_tokens: int = 1024) -> None:
        self.requests: list[RecordedRequest] = []
        self.script: list[Reply] = []
        self.responder: Responder = echo_responder
        self.min_cacheable_tokens = min_cacheable_tokens
        self.cached_prefixes: set[str] = set()
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self._httpd = _QuietHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> MessagesApiServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    # -- scripting -------------------------------------------------------------------------
    def reply(self, text: str = "", **options: Any) -> None:
        self.script.append(Reply(text=text, **options))

    def fail(self, status: int, error_type: str, retry_after: float | None = None) -> None:
        self.script.append(Reply(status=status, error_type=error_type, retry_after=retry_after))

    def message_requests(self) -> list[RecordedRequest]:
        return [r for r in self.requests if r.path == "/v1/messages"]

    # -- internals used by the handler -----------------------------------------------------
    def next_reply(self, request: RecordedRequest) -> Reply:
        with self._lock:
            if self.script:
                return self.script.pop(0)
        return self.responder(request)

    def usage_for(self, body: dict[str, Any]) -> dict[str, int]:
        """Input usage with simulated prompt caching of the system blocks up to the last breakpoint."""
        system = body.get("system") or []
        blocks = [system] if isinstance(system, str) else list(system)
        breakpoint_index = max(
            (i for i, b in enumerate(blocks) if isinstance(b, dict) and b.get("cache_control")), default=-1
        )
        cached = blocks[: breakpoint_index + 1]
        cached_tokens = sum(estimate_tokens(b.get("text", "")) for b in cached) if cached else 0
        total = estimate_tokens({"system": system, "messages": body.get("messages", [])})
        usage = {"input_tokens": total, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}
        if cached_tokens >= self.min_cacheable_tokens:
            key = hashlib.sha256(json.dumps([body.get("model"), cached], sort_keys=True).encode()).hexdigest()
            with self._lock:
                hit = key in self.cached_prefixes
                self.cached_prefixes.add(key)
            usage["cache_read_input_tokens" if hit else "cache_creation_input_tokens"] = cached_tokens
            usage["input_tokens"] = max(1, total - cached_tokens)
        return usage


def _make_handler(server: MessagesApiServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # keep test output quiet
            return

        def do_POST(self) -> None:
            length = int(self.headers.get("content-length") or 0)
            raw = self.rfile.read(length) if length else b"{}"
            request = RecordedRequest(
                path=self.path.split("?")[0],
                headers={k.lower(): v for k, v in self.headers.items()},
                body=json.loads(raw or b"{}"),
                started=time.monotonic(),
            )
            with server._lock:
                server.requests.append(request)
                server.in_flight += 1
                server.max_in_flight = max(server.max_in_flight, server.in_flight)
            try:
                self._route(request)
            finally:
                request.finished = time.monotonic()
                with server._lock:
                    server.in_flight -= 1

        def _route(self, request: RecordedRequest) -> None:
            if request.path == "/v1/messages/count_tokens":
                counted = {key: request.body.get(key) for key in ("system", "messages", "tools")}
                self._send_json(200, {"input_tokens": estimate_tokens(counted)})
                return
            if request.path != "/v1/messages":
                self._send_json(404, _error_body("not_found_error", f"no route {request.path}"))
                return
            reply = server.next_reply(request)
            time.sleep(reply.delay_before)
            if reply.status != 200:
                headers = {} if reply.retry_after is None else {"retry-after": str(reply.retry_after)}
                headers["x-should-retry"] = "true" if reply.status in (429, 500, 529) else "false"
                message = f"scripted {reply.status} {reply.error_type}"
                self._send_json(reply.status, _error_body(reply.error_type, message), headers)
                return
            if request.body.get("stream"):
                self._send_stream(request, reply)
            else:
                self._send_json(200, _message_json(request, reply, server.usage_for(request.body)))

        def _send_json(
            self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None
        ) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("request-id", f"req_{hashlib.md5(data).hexdigest()[:16]}")
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(data)

        def _send_stream(self, request: RecordedRequest, reply: Reply) -> None:
            self.send_response(200)
            self.send_header("content-type", "text/event-stream")
            self.send_header("transfer-encoding", "chunked")
            self.send_header("request-id", "req_stream_0001")
            self.end_headers()
            sent_chars = 0
            for name, data in _stream_events(request, reply, server.usage_for(request.body)):
                if name == "message_stop" and reply.omit_message_stop:
                    continue
                self._write_chunk(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
                if name == "content_block_delta":
                    sent_chars += len(data["delta"].get("text", ""))
                    if reply.chunk_delay:
                        time.sleep(reply.chunk_delay)
                if reply.cut_after_chars is not None and sent_chars >= reply.cut_after_chars:
                    self._cut()
                    return
                if reply.error_event_after_chars is not None and sent_chars >= reply.error_event_after_chars:
                    error = _error_body("overloaded_error", "scripted overloaded_error")
                    self._write_chunk(f"event: error\ndata: {json.dumps(error)}\n\n".encode())
                    break
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()

        def _write_chunk(self, payload: bytes) -> None:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(payload), payload))
            self.wfile.flush()

        def _cut(self) -> None:
            """Drop the connection the way a failing proxy does: no final chunk."""
            self.close_connection = True
            with contextlib.suppress(OSError):
                self.connection.shutdown(socket.SHUT_RDWR)

    return Handler


def _error_body(error_type: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": error_type, "message": message}}


def _message_id(request: RecordedRequest) -> str:
    return "msg_" + hashlib.sha256(json.dumps(request.body, sort_keys=True).encode()).hexdigest()[:20]


def _content_blocks(reply: Reply) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    if reply.text:
        blocks.append({"type": "text", "text": reply.text})
    for index, (name, tool_input) in enumerate(reply.tool_calls):
        blocks.append(
            {"type": "tool_use", "id": f"toolu_{index:04d}_{name}", "name": name, "input": tool_input}
        )
    return blocks


def _output_tokens(reply: Reply) -> int:
    if reply.output_tokens is not None:
        return reply.output_tokens
    return estimate_tokens(json.dumps(_content_blocks(reply)))


def _message_json(request: RecordedRequest, reply: Reply, usage: dict[str, int]) -> dict[str, Any]:
    return {
        "id": _message_id(request),
        "type": "message",
        "role": "assistant",
        "model": request.body.get("model"),
        "content": _content_blocks(reply),
        "stop_reason": reply.stop_reason,
        "stop_sequence": None,
        "usage": {**usage, "output_tokens": _output_tokens(reply)},
    }


def _chunks(text: str, size: int = 12) -> Iterator[str]:
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _stream_events(
    request: RecordedRequest, reply: Reply, usage: dict[str, int]
) -> Iterator[tuple[str, dict[str, Any]]]:
    """The SSE events of one streamed message, in the order the real API sends them."""
    start = _message_json(request, reply, usage)
    start.update(content=[], stop_reason=None, usage={**usage, "output_tokens": 1})
    yield "message_start", {"type": "message_start", "message": start}
    yield "ping", {"type": "ping"}
    for index, block in enumerate(_content_blocks(reply)):
        if block["type"] == "text":
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {"type": "text", "text": ""},
                },
            )
            for piece in _chunks(block["text"]):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "text_delta", "text": piece},
                    },
                )
        else:
            yield (
                "content_block_start",
                {
                    "type": "content_block_start",
                    "index": index,
                    "content_block": {**block, "input": {}},
                },
            )
            for piece in _chunks(json.dumps(block["input"]), size=7):
                yield (
                    "content_block_delta",
                    {
                        "type": "content_block_delta",
                        "index": index,
                        "delta": {"type": "input_json_delta", "partial_json": piece},
                    },
                )
        yield "content_block_stop", {"type": "content_block_stop", "index": index}
    yield (
        "message_delta",
        {
            "type": "message_delta",
            "delta": {"stop_reason": reply.stop_reason, "stop_sequence": None},
            "usage": {"output_tokens": _output_tokens(reply)},
        },
    )
    yield "message_stop", {"type": "message_stop"}


def api_env(server: MessagesApiServer, key: str | None = FAKE_API_KEY) -> dict[str, str]:
    """Environment for a `ccpt` subprocess that points the SDK at `server`."""
    env = {"ANTHROPIC_BASE_URL": server.url}
    if key:
        env["ANTHROPIC_API_KEY"] = key
    return env


@pytest.fixture
def messages_api() -> Iterator[MessagesApiServer]:
    """A running local Messages API server; stopped after the test."""
    server = MessagesApiServer().start()
    try:
        yield server
    finally:
        server.stop()


def run_ccpt_in_process(
    *args: str, cwd: Path, env: dict[str, str] | None = None, input: str = ""
) -> subprocess.CompletedProcess[str]:
    """Run the real `ccpt` app in this process (typer's CliRunner): the same code path as the
    console script, without paying for a fresh interpreter and SDK import on every call."""
    from typer.testing import CliRunner

    from ccpt.app import app

    previous = Path.cwd()
    os.chdir(cwd)
    try:
        result = CliRunner().invoke(app, list(args), input=input, env={"COLUMNS": "200", **(env or {})})
    finally:
        os.chdir(previous)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return subprocess.CompletedProcess(list(args), result.exit_code, result.stdout, result.stderr)


ROLE_IN_SYSTEM = re.compile(r"You are (\w+), one of the specialists")


@dataclass
class TeamScript:
    """A responder that answers like the team in `ccpt ask`: the routing call with `plan`, each
    role with its scripted reply (or a default), the synthesis with `synthesis`.

    `replies[role]` may be a Reply or a list of Replies for successive calls (tool rounds).
    """

    plan: dict[str, Any] | None = None
    replies: dict[str, Reply | list[Reply]] = field(default_factory=dict)
    synthesis: str = "## Merged plan\n\n1. Do the first thing (DataEngineer)\n"
    delay: float = 0.0
    calls: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self, request: RecordedRequest) -> Reply:
        if (request.body.get("tool_choice") or {}).get("name") == "plan_consultation":
            return Reply(tool_calls=[("plan_consultation", self.plan or {})])
        if "Merge the specialists' answers" in request.system_text:
            return Reply(text=self.synthesis)
        match = ROLE_IN_SYSTEM.search(request.system_text)
        role = match.group(1) if match else "unknown"
        with self._lock:
            count = self.calls[role] = self.calls.get(role, 0) + 1
        reply = self.replies.get(role, Reply(text=f"{role}: my answer.", chunk_delay=self.delay))
        if isinstance(reply, list):
            reply = reply[min(count, len(reply)) - 1]
        return reply

    def role_requests(self, server: MessagesApiServer, role: str) -> list[RecordedRequest]:
        return [r for r in server.message_requests() if f"You are {role}, one of" in r.system_text]


def ccpt_against(
    server: MessagesApiServer,
    cwd: Path,
    *args: str,
    key: str | None = FAKE_API_KEY,
    input: str = "",
    fresh_process: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`ccpt ARGS` with the SDK pointed at `server` and HOME at `cwd` (so no ~/.claude/agents
    of the machine leaks in); in a fresh process when the process boundary matters."""
    env = {**api_env(server, key), "HOME": str(cwd)}
    if fresh_process:
        from tests.conftest import run_ccpt

        return run_ccpt(*args, cwd=cwd, env=env, input=input)
    return run_ccpt_in_process(*args, cwd=cwd, env=env, input=input)
