"""The Claude client: the official `anthropic` SDK with ccpt's key check, retries and errors.

The SDK does the HTTP work, including retries with backoff (honouring `retry-after`) for 408,
409, 429 and 5xx responses such as 529 "overloaded". This module adds what a command-line tool
needs around it: one clear error line per failure, a stream that ends without `message_stop`
treated as an error (the partial text travels with the error so it can be kept), and usage in
ccpt's `Usage` form. `anthropic` is imported inside functions: `ccpt --help` never loads it.
"""

from __future__ import annotations

import warnings
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any, NoReturn

from ccpt.agents.models import Usage
from ccpt.agents.prompt import ConsultRequest
from ccpt.errors import CcptError

MAX_RETRIES = 3
DEFAULT_BASE_URL = "https://api.anthropic.com"
KEY_HINT = (
    "create a key in the Claude Console, then `export ANTHROPIC_API_KEY=sk-ant-...` "
    "(or add --dry-run to see the request without sending it)"
)


@dataclass(frozen=True)
class TextDelta:
    """A piece of the answer as it streams in."""

    text: str


@dataclass
class Completion:
    """A finished answer: its text, content blocks (tool calls included), usage and ids."""

    text: str
    model: str
    usage: Usage
    stop_reason: str | None
    message_id: str | None
    request_id: str | None
    content: list[dict[str, Any]] = field(default_factory=list)

    @property
    def tool_calls(self) -> list[dict[str, Any]]:
        return [block for block in self.content if block.get("type") == "tool_use"]


class IncompleteAnswer(CcptError):
    """The stream stopped before `message_stop`; `partial` holds the text received so far."""

    def __init__(self, message: str, partial: str, hint: str | None = None) -> None:
        super().__init__(message, hint=hint or "the partial answer is kept in `ccpt agent log`")
        self.partial = partial


def messages_url(base_url: str | None) -> str:
    """The Messages API endpoint under `base_url` (ANTHROPIC_BASE_URL), or under the default."""
    return f"{(base_url or DEFAULT_BASE_URL).rstrip('/')}/v1/messages"


def require_api_key(api_key: str | None) -> str:
    if not api_key:
        raise CcptError("ANTHROPIC_API_KEY is not set", hint=KEY_HINT, exit_code=2)
    return api_key


def _client_options(api_key: str | None, base_url: str | None, timeout: float) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": require_api_key(api_key),
        "timeout": timeout,
        "max_retries": MAX_RETRIES,
    }
    if base_url:
        options["base_url"] = base_url
    return options


def make_client(api_key: str | None, base_url: str | None, timeout: float) -> Any:
    """A synchronous `anthropic.Anthropic` client."""
    import anthropic

    return anthropic.Anthropic(**_client_options(api_key, base_url, timeout))


def make_async_client(api_key: str | None, base_url: str | None, timeout: float) -> Any:
    """An `anthropic.AsyncAnthropic` client, for consulting several roles at once."""
    import anthropic

    return anthropic.AsyncAnthropic(**_client_options(api_key, base_url, timeout))


def api_error(exc: BaseException, base_url: str | None, timeout: float) -> CcptError:
    """One clear line for an SDK or transport failure."""
    import anthropic

    where = base_url or DEFAULT_BASE_URL
    retried = f"after {MAX_RETRIES} retries"
    if isinstance(exc, anthropic.AuthenticationError):
        return CcptError("the API key was rejected (401)", hint="check ANTHROPIC_API_KEY")
    if isinstance(exc, anthropic.PermissionDeniedError):
        return CcptError(
            "the API key may not use this model or endpoint (403)", hint="check the key's workspace"
        )
    if isinstance(exc, anthropic.RateLimitError):
        return CcptError(f"rate limited (429) {retried}", hint="wait a minute, or lower the request rate")
    if isinstance(exc, anthropic.APIStatusError) and exc.status_code == 529:
        return CcptError(f"Claude is overloaded (529) {retried}", hint="try again in a few minutes")
    if isinstance(exc, anthropic.NotFoundError):
        return CcptError(f"not found (404): {_api_message(exc)}", hint="check --model and ANTHROPIC_BASE_URL")
    if isinstance(exc, anthropic.BadRequestError):
        return CcptError(f"the API refused the request (400): {_api_message(exc)}")
    if isinstance(exc, anthropic.InternalServerError):
        return CcptError(f"the API failed ({exc.status_code}) {retried}", hint="try again shortly")
    if isinstance(exc, anthropic.APIStatusError):
        return CcptError(f"the API answered {exc.status_code}: {_api_message(exc)}")
    if isinstance(exc, anthropic.APITimeoutError):
        return CcptError(f"no answer from {where} within {timeout:g}s", hint="raise --timeout or try again")
    if isinstance(exc, anthropic.APIConnectionError):
        return CcptError(
            f"cannot reach the Messages API at {where}",
            hint="check the network, a proxy, or ANTHROPIC_BASE_URL",
        )
    return CcptError(f"Claude request failed: {exc}")


def _api_message(exc: Any) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])
    return str(getattr(exc, "message", exc))


def _blocks(message: Any) -> list[dict[str, Any]]:
    return [block.model_dump(exclude_none=True) for block in message.content]


def _completion(message: Any, request_id: str | None) -> Completion:
    content = _blocks(message)
    text = "".join(block.get("text", "") for block in content if block.get("type") == "text")
    return Completion(
        text=text,
        model=message.model,
        usage=Usage.from_api(message.usage),
        stop_reason=message.stop_reason,
        message_id=message.id,
        request_id=request_id,
        content=content,
    )


def _is_transport_error(exc: BaseException) -> bool:
    """An error of the HTTP layer below the SDK (connection dropped, read timeout ...)."""
    return type(exc).__module__.split(".")[0] in {"httpx", "httpx2", "httpcore", "h11"}


class _AnswerReader:
    """Follows one stream's events; shared by the sync and async loops."""

    def __init__(self, base_url: str | None, timeout: float) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.received: list[str] = []
        self.finished = False

    def on_event(self, event: Any) -> TextDelta | None:
        if event.type == "text":
            self.received.append(event.text)
            return TextDelta(event.text)
        if event.type == "message_stop":
            self.finished = True
        return None

    def completion(self, stream: Any) -> Completion:
        if not self.finished:
            raise self._cut()
        return _completion(stream.current_message_snapshot, stream.request_id)

    def _cut(self) -> IncompleteAnswer:
        partial = "".join(self.received)
        return IncompleteAnswer(f"the answer stream was cut after {len(partial):,} characters", partial)

    def reraise(self, exc: Exception) -> NoReturn:
        """Raise the one-line error for `exc`, or `exc` itself when it is not an API or transport failure."""
        error = self._failure(exc)
        if error is None:
            raise exc
        raise error from exc

    def _failure(self, exc: Exception) -> CcptError | None:
        import anthropic

        if isinstance(exc, CcptError):
            return None
        if isinstance(exc, anthropic.APIError):
            if not self.received:
                return api_error(exc, self.base_url, self.timeout)
            if isinstance(exc, anthropic.APIStatusError):
                partial = "".join(self.received)
                return IncompleteAnswer(f"the answer stopped with an API error: {_api_message(exc)}", partial)
            return self._cut()
        return self._cut() if _is_transport_error(exc) else None


def _open_stream(client: Any, request: ConsultRequest) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ccpt prints its own one-line notice
        return client.messages.stream(**request.params())


def stream_message(
    client: Any, request: ConsultRequest, base_url: str | None, timeout: float
) -> Iterator[TextDelta | Completion]:
    """Yield the answer's text as it arrives, then the `Completion`.

    Raises `IncompleteAnswer` if the stream breaks or ends without `message_stop`, and
    CcptError for API failures (after the SDK's retries).
    """
    reader = _AnswerReader(base_url, timeout)
    try:
        with _open_stream(client, request) as stream:
            for event in stream:
                delta = reader.on_event(event)
                if delta:
                    yield delta
            yield reader.completion(stream)
    except Exception as exc:
        reader.reraise(exc)


async def astream_message(
    client: Any, request: ConsultRequest, base_url: str | None, timeout: float
) -> AsyncIterator[TextDelta | Completion]:
    """The async twin of `stream_message`, for concurrent consultations."""
    reader = _AnswerReader(base_url, timeout)
    try:
        async with _open_stream(client, request) as stream:
            async for event in stream:
                delta = reader.on_event(event)
                if delta:
                    yield delta
            yield reader.completion(stream)
    except Exception as exc:
        reader.reraise(exc)


def create_message(client: Any, request: ConsultRequest, base_url: str | None, timeout: float) -> Completion:
    """The whole answer in one response (`--no-stream`)."""
    import anthropic

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            raw = client.messages.with_raw_response.create(**request.params())
        return _completion(raw.parse(), raw.headers.get("request-id"))
    except anthropic.APIError as exc:
        raise api_error(exc, base_url, timeout) from exc


def count_tokens(client: Any, request: ConsultRequest, system: list[dict[str, Any]] | None = None) -> int:
    """Input tokens of `request` (or of `system` with a one-word turn) by the token-count endpoint."""
    params: dict[str, Any] = {"model": request.model, "system": request.system, "messages": request.messages}
    if system is not None:
        params.update(system=system, messages=[{"role": "user", "content": "."}])
    if request.tools:
        params["tools"] = request.tools
    return int(client.messages.count_tokens(**params).input_tokens)
