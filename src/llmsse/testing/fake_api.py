"""An offline fake of the OpenAI chat-completions endpoint (and of streamed Responses).

:class:`FakeOpenAI` answers ``POST .../chat/completions`` (and ``POST .../responses`` with
``stream: true``, as Responses API events) from a script of :class:`Reply` objects and
records every request. The real ``OpenAI()`` / ``AsyncOpenAI()`` clients reach it
through an HTTP transport (:meth:`FakeOpenAI.client`, :meth:`FakeOpenAI.transport`) or, with
:class:`llmsse.testing.FakeChatServer`, over a real socket. Streams are sent the way the API
sends them: ``data: <chunk>`` events one at a time (with optional pacing), the usage chunk
when ``stream_options.include_usage`` asks for it, ``data: [DONE]`` at the end, an error
event instead when the reply says so, and HTTP errors before any byte of a stream.
"""

from __future__ import annotations

import itertools
import json
import sys
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from types import ModuleType, TracebackType
from typing import TYPE_CHECKING, Any

import anyio

from llmsse.testing.chunks import (
    Pieces,
    ReasoningField,
    ToolCallSpec,
    chunk_dicts,
)
from llmsse.testing.errors import error_body, sdk_httpx

if TYPE_CHECKING:
    import openai

    from llmsse.testing.server import FakeChatServer

__all__ = [
    "FakeOpenAI",
    "FakeTransport",
    "RecordedRequest",
    "Reply",
    "Responder",
    "StreamError",
    "echo",
    "http_error",
]


@dataclass(frozen=True, slots=True)
class StreamError:
    """An error event sent in the middle of a stream (``data: {"error": {...}}``).

    The SDK raises it as ``openai.APIError(message)`` with ``.type`` and ``.code``.
    """

    message: str = "The server had an error while processing your request."
    type: str = "server_error"
    code: str | None = None


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer of the fake API.

    Args:
        content: The answer text: a ``str`` (streamed a word at a time) or the exact pieces.
        reasoning: Reasoning deltas, sent as ``delta.<reasoning_field>``.
        reasoning_field: ``"reasoning_content"`` or ``"reasoning"``.
        refusal: Refusal deltas.
        tool_calls: Calls from :func:`llmsse.testing.tool_call` or ``(name, arguments)`` pairs.
        other_choices: Answers of choices 1, 2, ... for ``n > 1``.
        finish_reason: Defaults to ``"tool_calls"`` with tool calls, else ``"stop"``.
        usage: The usage object sent when the request asks for it
            (``stream_options.include_usage``); counted from the pieces by default.
        azure: Start the stream with Azure's empty prompt-filter chunk.
        error: Send this error event instead of the finish chunk (``str``: its message).
        error_after: With ``error``, send it after this many chunks (default: after the
            last content chunk).
        disconnect_after: Break the connection after this many chunks (no ``[DONE]``):
            the SDK raises ``openai.APIConnectionError``.
        status: An HTTP error status (see :func:`http_error`); 200 streams the answer.
        error_body: The JSON body sent with an error status.
        headers: Extra response headers.
        delay: Seconds between chunks (the fake's default when ``None``).
        first_delay: Seconds before the first chunk (time to first token).
        model: The model name in the chunks (the requested model when ``None``).
    """

    content: Pieces | None = None
    reasoning: Pieces | None = None
    reasoning_field: ReasoningField = "reasoning_content"
    refusal: Pieces | None = None
    tool_calls: Sequence[ToolCallSpec | tuple[str, Any]] = ()
    other_choices: Sequence[Pieces] = ()
    finish_reason: str | None = None
    usage: Mapping[str, Any] | None = None
    azure: bool = False
    error: StreamError | str | None = None
    error_after: int | None = None
    disconnect_after: int | None = None
    status: int = 200
    error_body: Mapping[str, Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float | None = None
    first_delay: float | None = None
    model: str | None = None


def http_error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = None,
    headers: Mapping[str, str] | None = None,
    should_retry: bool = False,
) -> Reply:
    """A reply that fails with an HTTP error before streaming, as the API does.

    The SDK raises the matching ``APIStatusError`` subclass from ``create()``
    (``RateLimitError`` for 429, ``AuthenticationError`` for 401, ...). Unless
    ``should_retry``, the response carries ``x-should-retry: false`` so a client with
    retries does not spend the next scripted replies on retrying.
    """
    if status < 400:
        raise ValueError(f"http_error needs a 4xx or 5xx status, got {status}")
    message = message or {
        401: "Incorrect API key provided: sk-fake. You can find your API key at "
        "https://platform.openai.com/account/api-keys.",
        429: "Rate limit reached for requests. Please try again in 1s.",
    }.get(status, f"Fake error with status {status}")
    extra = {"x-should-retry": "true" if should_retry else "false", **(headers or {})}
    return Reply(
        status=status,
        error_body={"error": error_body(status, message, type=type, code=code)},
        headers=extra,
    )


@dataclass(slots=True)
class RecordedRequest:
    """A request the fake API received, and what became of its response.

    Attributes:
        method: ``"POST"``, ...
        path: The URL path, e.g. ``"/v1/chat/completions"``.
        headers: The request headers, names in lower case.
        body: The raw request body.
        status: The status code of the response.
        parts: How many body parts (SSE events for a stream) the response had.
        parts_sent: How many of them were handed to the client.
        closed: Whether the client closed the response (transport) or the response ended.
        disconnected: Whether the client went away before the end (a write failed or
            the response was closed before every part was sent).
        started_at: ``time.monotonic()`` when the request arrived.
        finished_at: ``time.monotonic()`` when the response ended or was abandoned.
    """

    method: str
    path: str
    headers: dict[str, str] = field(repr=False)
    body: bytes
    status: int = 0
    parts: int = 0
    parts_sent: int = 0
    closed: bool = False
    disconnected: bool = False
    started_at: float = field(default_factory=time.monotonic)
    finished_at: float | None = None

    @property
    def json(self) -> Any:
        """The body parsed as JSON (``None`` when it is not JSON)."""
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def _field(self, name: str) -> Any:
        data = self.json
        return data.get(name) if isinstance(data, dict) else None

    @property
    def model(self) -> str | None:
        """The requested model."""
        value = self._field("model")
        return value if isinstance(value, str) else None

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The request's messages."""
        value = self._field("messages")
        return value if isinstance(value, list) else []

    @property
    def stream(self) -> bool:
        """Whether a stream was requested."""
        return self._field("stream") is True

    @property
    def include_usage(self) -> bool:
        """Whether ``stream_options.include_usage`` asked for the usage chunk."""
        options = self._field("stream_options")
        return isinstance(options, dict) and options.get("include_usage") is True

    @property
    def last_user_message(self) -> str:
        """The text of the last user message ("" when there is none)."""
        for message in reversed(self.messages):
            if isinstance(message, dict) and message.get("role") == "user":
                return _message_text(message.get("content"))
        return ""

    @property
    def delivered(self) -> bool:
        """Whether every part of the response reached the client."""
        return self.parts_sent >= self.parts


def _message_text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            part.get("text", "")
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


Responder = Callable[[RecordedRequest], "Reply | str"]
"""A function that makes the reply to a request (for answers that depend on it)."""


def echo(request: RecordedRequest) -> Reply:
    """A responder that answers with the last user message: ``"You said: ..."``."""
    return Reply(f"You said: {request.last_user_message}")


@dataclass(slots=True)
class _Plan:
    # What to send for one request: the transport and the server both play it.
    record: RecordedRequest
    status: int
    headers: list[tuple[str, str]]
    parts: list[bytes]
    delay: float
    first_delay: float
    drop: bool

    def wait_before(self, index: int) -> float:
        return self.first_delay if index == 0 else self.delay


_JSON_HEADERS = [("content-type", "application/json")]
_SSE_HEADERS = [("content-type", "text/event-stream; charset=utf-8"), ("cache-control", "no-cache")]


def _event(data: Any) -> bytes:
    return b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n"


class FakeOpenAI:
    """A scripted, offline OpenAI chat-completions API (and streamed Responses API).

    A streamed ``client.responses.create(..., stream=True)`` (or ``responses.stream()``)
    gets the same reply as Responses API events (see :mod:`llmsse.testing.responses`).

    Args:
        *replies: Scripted replies, answered in order: :class:`Reply`, a ``str`` (a text
            answer) or a :data:`Responder` function of the request.
        default: The reply when the script is used up; with ``None`` such a request gets
            an HTTP 500 whose message says that no reply was scripted.
        delay: Default seconds between chunks.
        first_delay: Default seconds before the first chunk.
        api_key: When set, requests without ``Authorization: Bearer <api_key>`` get 401.

    Example::

        fake = FakeOpenAI()
        fake.reply("Hello\\nworld", http_error(429))
        client = fake.client()  # a real openai.OpenAI, offline
        stream = client.chat.completions.create(model="m", messages=[], stream=True)
    """

    def __init__(
        self,
        *replies: Reply | str | Responder,
        default: Reply | str | Responder | None = None,
        delay: float = 0.0,
        first_delay: float | None = None,
        api_key: str | None = None,
    ) -> None:
        self._script: deque[Reply | str | Responder] = deque(replies)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.default = default
        self.delay = delay
        self.first_delay = first_delay
        self.api_key = api_key
        #: Every request received, in order.
        self.requests: list[RecordedRequest] = []

    def reply(self, *replies: Reply | str | Responder) -> FakeOpenAI:
        """Add replies to the end of the script; returns the fake, for chaining."""
        with self._lock:
            self._script.extend(replies)
        return self

    @property
    def pending(self) -> int:
        """How many scripted replies are still unused."""
        return len(self._script)

    @property
    def last_request(self) -> RecordedRequest:
        """The most recent request (``AssertionError`` when there was none)."""
        if not self.requests:
            raise AssertionError("the fake OpenAI API received no request")
        return self.requests[-1]

    # -- clients ------------------------------------------------------------------------

    def transport(self) -> FakeTransport:
        """An HTTP transport for ``httpx.Client(transport=...)`` / ``httpx.AsyncClient``.

        It works with both ``httpx`` and ``httpx2`` clients, sync and async.
        """
        return FakeTransport(self)

    def http_client(self, module: ModuleType | None = None) -> Any:
        """A sync HTTP client on the fake (of the SDK's HTTP library unless ``module``)."""
        return (module or sdk_httpx()).Client(transport=self.transport())

    def async_http_client(self, module: ModuleType | None = None) -> Any:
        """An async HTTP client on the fake (of the SDK's HTTP library unless ``module``)."""
        return (module or sdk_httpx()).AsyncClient(transport=self.transport())

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """A real ``openai.OpenAI`` client that talks to this fake, offline.

        Keyword arguments go to ``OpenAI(...)``; ``max_retries`` defaults to 0.
        """
        import openai

        kwargs.setdefault("api_key", self.api_key or "sk-fake")
        kwargs.setdefault("base_url", "http://fake-openai.test/v1")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("http_client", self.http_client())
        return openai.OpenAI(**kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A real ``openai.AsyncOpenAI`` client that talks to this fake, offline."""
        import openai

        kwargs.setdefault("api_key", self.api_key or "sk-fake")
        kwargs.setdefault("base_url", "http://fake-openai.test/v1")
        kwargs.setdefault("max_retries", 0)
        kwargs.setdefault("http_client", self.async_http_client())
        return _trio_ready(openai.AsyncOpenAI(**kwargs))

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> FakeChatServer:
        """A :class:`FakeChatServer` (not started) serving this fake over HTTP."""
        from llmsse.testing.server import FakeChatServer

        return FakeChatServer(self, host=host, port=port)

    # -- answering ----------------------------------------------------------------------

    def _next_reply(self, request: RecordedRequest) -> Reply | None:
        with self._lock:
            item = self._script.popleft() if self._script else self.default
        if item is None:
            return None
        if callable(item) and not isinstance(item, Reply):
            item = item(request)
        if isinstance(item, str):
            return Reply(item)
        if not isinstance(item, Reply):
            raise TypeError(f"a fake reply must be a Reply or a str, got {item!r}")
        return item

    def _plan(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> _Plan:
        """Record a request and decide the response (used by the transport and the server)."""
        record = RecordedRequest(method, path, {k.lower(): v for k, v in headers.items()}, body)
        with self._lock:
            self.requests.append(record)
        reply = self._route(record)
        delay = self.delay if reply.delay is None else reply.delay
        first = reply.first_delay if reply.first_delay is not None else self.first_delay
        if reply.status >= 400:
            payload = reply.error_body or {"error": error_body(reply.status, "error")}
            plan = _Plan(record, reply.status, [*_JSON_HEADERS], [_json(payload)], 0, 0, False)
        elif record.path.rstrip("/").endswith("/responses"):
            if not record.stream:
                message = "FakeOpenAI serves only streamed Responses requests (stream=True)."
                payload = {"error": error_body(400, message)}
                plan = _Plan(record, 400, [*_JSON_HEADERS], [_json(payload)], 0, 0, False)
            else:
                first = delay if first is None else first
                plan = self._responses_plan(record, reply, delay, first)
        elif record.stream:
            plan = self._stream_plan(record, reply, delay, delay if first is None else first)
        else:
            plan = self._completion_plan(record, reply)
        plan.headers += [(k.lower(), v) for k, v in reply.headers.items()]
        plan.headers.append(("x-request-id", f"req_fake{next(self._ids)}"))
        record.status = plan.status
        record.parts = len(plan.parts)
        return plan

    def _route(self, record: RecordedRequest) -> Reply:
        path = record.path.rstrip("/")
        if record.method != "POST" or not path.endswith(("/chat/completions", "/responses")):
            return http_error(
                404,
                f"FakeOpenAI only serves POST .../chat/completions and .../responses, "
                f"not {record.method} {record.path}",
            )
        expected = f"Bearer {self.api_key}"
        if self.api_key is not None and record.headers.get("authorization") != expected:
            return http_error(401)
        if not isinstance(record.json, dict):
            return http_error(400, "We could not parse the JSON body of your request.")
        reply = self._next_reply(record)
        if reply is None:
            return http_error(
                500,
                "FakeOpenAI has no scripted reply for this request: "
                "call fake.reply(...) or set default=...",
                type="fake_script_exhausted",
            )
        return reply

    def _chunks(
        self, record: RecordedRequest, reply: Reply, *, usage: bool
    ) -> list[dict[str, Any]]:
        return chunk_dicts(
            reply.content,
            reasoning=reply.reasoning,
            reasoning_field=reply.reasoning_field,
            refusal=reply.refusal,
            tool_calls=reply.tool_calls,
            other_choices=reply.other_choices,
            finish_reason=reply.finish_reason,
            usage=(reply.usage or True) if usage else None,
            azure=reply.azure,
            id=f"chatcmpl-fake{next(self._ids)}",
            model=reply.model or record.model or "gpt-fake",
            created=int(time.time()),
        )

    def _stream_plan(
        self, record: RecordedRequest, reply: Reply, delay: float, first_delay: float
    ) -> _Plan:
        chunks = self._chunks(record, reply, usage=record.include_usage)
        if record.include_usage:
            # With include_usage the API puts "usage": null on every other chunk.
            for chunk in chunks:
                chunk.setdefault("usage", None)
        parts = [_event(chunk) for chunk in chunks]
        drop = False
        if reply.error is not None:
            error = StreamError(reply.error) if isinstance(reply.error, str) else reply.error
            finishes = sum(
                1 for c in chunks if not c["choices"] or c["choices"][0]["finish_reason"]
            )
            cut = reply.error_after if reply.error_after is not None else len(parts) - finishes
            parts = parts[:cut]
            parts.append(
                _event(
                    {
                        "error": {
                            "message": error.message,
                            "type": error.type,
                            "param": None,
                            "code": error.code,
                        }
                    }
                )
            )
        else:
            parts.append(b"data: [DONE]\n\n")
        if reply.disconnect_after is not None:
            parts = parts[: reply.disconnect_after]
            drop = True
        return _Plan(record, 200, [*_SSE_HEADERS], parts, delay, first_delay, drop)

    def _responses_plan(
        self, record: RecordedRequest, reply: Reply, delay: float, first_delay: float
    ) -> _Plan:
        # The same reply as Responses API events: a finish reason "length" or
        # "content_filter" ends with response.incomplete, an error with an `error` event
        # in the nested shape the API sends (the SDK raises it as openai.APIError).
        from llmsse.testing.responses import response_event_dicts, responses_sse_body

        end: Any = "completed"
        reason = {"length": "max_output_tokens", "content_filter": "content_filter"}.get(
            reply.finish_reason or ""
        )
        if reason is not None:
            end = "incomplete"
        message = "The server had an error while processing your request."
        if reply.error is not None:
            end = "nested-error"
            message = reply.error.message if isinstance(reply.error, StreamError) else reply.error
        events = response_event_dicts(
            reply.content,
            reasoning=reply.reasoning,
            refusal=reply.refusal,
            tool_calls=reply.tool_calls,
            end=end,
            incomplete_reason=reason or "max_output_tokens",
            error_message=message,
            usage=dict(reply.usage) if reply.usage else True,
            id=f"resp_fake{next(self._ids)}",
            model=reply.model or record.model or "gpt-fake",
            created_at=int(time.time()),
        )
        parts = [responses_sse_body([event]) for event in events]
        if reply.error is not None and reply.error_after is not None:
            parts = parts[: reply.error_after] + parts[-1:]
        drop = False
        if reply.disconnect_after is not None:
            parts = parts[: reply.disconnect_after]
            drop = True
        return _Plan(record, 200, [*_SSE_HEADERS], parts, delay, first_delay, drop)

    def _completion_plan(self, record: RecordedRequest, reply: Reply) -> _Plan:
        if reply.error is not None or reply.disconnect_after is not None:
            message = reply.error.message if isinstance(reply.error, StreamError) else reply.error
            payload = {"error": error_body(500, message or "The server had an error.")}
            return _Plan(record, 500, [*_JSON_HEADERS], [_json(payload)], 0, 0, False)
        chunks = self._chunks(record, reply, usage=True)
        return _Plan(
            record, 200, [*_JSON_HEADERS], [_json(_completion(chunks, reply))], 0, 0, False
        )


def _json(data: Any) -> bytes:
    return json.dumps(data, separators=(",", ":")).encode()


def _completion(chunks: list[dict[str, Any]], reply: Reply) -> dict[str, Any]:
    # The non-streaming chat.completion object, assembled from the same chunks.
    first = next(c for c in chunks if c["id"])
    choices: dict[int, dict[str, Any]] = {}
    usage = None
    for chunk in chunks:
        if chunk.get("usage"):
            usage = chunk["usage"]
        for choice in chunk["choices"]:
            entry = choices.setdefault(
                choice["index"],
                {
                    "index": choice["index"],
                    "logprobs": None,
                    "finish_reason": None,
                    "message": {"role": "assistant", "content": None, "refusal": None},
                },
            )
            message = entry["message"]
            delta = choice["delta"]
            for key in ("content", "refusal", "reasoning_content", "reasoning"):
                if delta.get(key):
                    message[key] = (message.get(key) or "") + delta[key]
            for fragment in delta.get("tool_calls", ()):
                calls = message.setdefault("tool_calls", [])
                if "id" in fragment:
                    calls.append(
                        {
                            "id": fragment["id"],
                            "type": "function",
                            "function": {"name": fragment["function"]["name"], "arguments": ""},
                        }
                    )
                calls[fragment["index"]]["function"]["arguments"] += fragment["function"][
                    "arguments"
                ]
            if choice["finish_reason"]:
                entry["finish_reason"] = choice["finish_reason"]
    return {
        "id": first["id"],
        "object": "chat.completion",
        "created": first["created"],
        "model": first["model"],
        "choices": [choices[i] for i in sorted(choices)],
        "usage": usage,
        "system_fingerprint": None,
    }


# -- the HTTP transport -------------------------------------------------------------------


def _module_of(request: Any) -> ModuleType:
    # The transport answers httpx and httpx2 clients alike, each with its own classes.
    return sys.modules[type(request).__module__.partition(".")[0]]


@cache
def _body_classes(module: ModuleType) -> tuple[type[Any], type[Any]]:
    class SyncBody(module.SyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, plan: _Plan) -> None:
            self.plan = plan

        def __iter__(self) -> Iterator[bytes]:
            for index, part in _parts(self.plan):
                wait = self.plan.wait_before(index)
                if wait:
                    time.sleep(wait)
                if self.plan.record.closed:
                    return
                self.plan.record.parts_sent += 1
                yield part
            _finish(self.plan, module)

        def close(self) -> None:
            _close(self.plan)

    class AsyncBody(module.AsyncByteStream):  # type: ignore[misc,name-defined]
        def __init__(self, plan: _Plan) -> None:
            self.plan = plan

        async def __aiter__(self) -> AsyncIterator[bytes]:
            for index, part in _parts(self.plan):
                wait = self.plan.wait_before(index)
                if wait:
                    await anyio.sleep(wait)
                if self.plan.record.closed:
                    return
                self.plan.record.parts_sent += 1
                yield part
            _finish(self.plan, module)

        async def aclose(self) -> None:
            _close(self.plan)

    return SyncBody, AsyncBody


def _parts(plan: _Plan) -> Iterable[tuple[int, bytes]]:
    return enumerate(plan.parts)


def _finish(plan: _Plan, module: ModuleType) -> None:
    plan.record.finished_at = time.monotonic()
    if plan.drop:
        plan.record.disconnected = True
        raise module.RemoteProtocolError(
            "peer closed connection without sending complete message body (incomplete chunked read)"
        )


def _close(plan: _Plan) -> None:
    record = plan.record
    if record.closed:
        return
    record.closed = True
    if record.finished_at is None:
        record.finished_at = time.monotonic()
    if not record.delivered:
        record.disconnected = True


class FakeTransport:
    """An ``httpx``/``httpx2`` transport (sync and async) that answers from a :class:`FakeOpenAI`.

    Bodies are streamed a part at a time, with the fake's pacing; closing the response
    early is recorded on the request (``disconnected``).
    """

    def __init__(self, fake: FakeOpenAI) -> None:
        self.fake = fake

    def _respond(self, request: Any, body: bytes, *, is_async: bool) -> Any:
        module = _module_of(request)
        plan = self.fake._plan(
            request.method,
            request.url.raw_path.decode("ascii").partition("?")[0],
            dict(request.headers),
            body,
        )
        sync_body, async_body = _body_classes(module)
        stream = async_body(plan) if is_async else sync_body(plan)
        return module.Response(plan.status, headers=plan.headers, stream=stream, request=request)

    def handle_request(self, request: Any) -> Any:
        """Answer a sync client's request."""
        return self._respond(request, request.read(), is_async=False)

    async def handle_async_request(self, request: Any) -> Any:
        """Answer an async client's request."""
        return self._respond(request, await request.aread(), is_async=True)

    def close(self) -> None:
        """Nothing to release."""

    async def aclose(self) -> None:
        """Nothing to release."""

    def __enter__(self) -> FakeTransport:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        self.close()

    async def __aenter__(self) -> FakeTransport:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None = None,
        exc: BaseException | None = None,
        tb: TracebackType | None = None,
    ) -> None:
        await self.aclose()


def _trio_ready(client: openai.AsyncOpenAI) -> openai.AsyncOpenAI:
    """Detect the platform now, so the client also works under trio on older SDKs.

    Before its first request the SDK finds out the platform in a worker thread;
    releases before about 1.6x do that with ``asyncio.to_thread``, which fails under
    trio ("no running event loop"). Doing it here, synchronously, skips that step.
    """
    if getattr(client, "_platform", "") is None:
        from openai._base_client import get_platform

        client._platform = get_platform()
    return client
