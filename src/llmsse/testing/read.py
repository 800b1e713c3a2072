"""Read an SSE response back in a test: its bytes, its events, the answer they carry.

Every reader takes the response as the test has it: ``bytes``, an iterator of ``bytes``
(a generator, ``iter_sse(...)``), Starlette's / FastAPI's ``TestClient`` response or any
``httpx`` response, Flask's test-client response, or Django's test-client response
(``StreamingHttpResponse``, sync or async content).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from llmsse.decoder import parse
from llmsse.event import ServerSentEvent
from llmsse.result import ToolCall

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

__all__ = [
    "OpenAIStreamReply",
    "ResponsesStreamReply",
    "TextStreamReply",
    "aread_body",
    "read_body",
    "read_events",
    "read_openai_stream",
    "read_responses_stream",
    "read_text_stream",
]


def read_body(source: Any) -> bytes:
    """The complete body of an SSE response, as bytes.

    Accepts ``bytes``, an iterable of ``bytes`` (``str`` items are UTF-8 encoded, as a
    framework would), an ``httpx`` / Starlette ``TestClient`` response (read if it was
    streamed), a Flask / Werkzeug test response, and a Django response (streaming or not;
    async streaming content is run to completion when no event loop is running, otherwise
    use :func:`aread_body`). A Django response is closed after reading, as a server would,
    and keeps the bytes, so it can be read again; a generator can be read only once.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        return bytes(source)
    if isinstance(source, str):
        raise TypeError(
            "read_body() expects the bytes of a response, got str: SSE is a byte stream, "
            "pass response.content (or the response itself)"
        )
    if hasattr(source, "get_data") and callable(source.get_data):  # Flask / Werkzeug
        return bytes(source.get_data())
    if hasattr(source, "streaming_content") or (  # Django
        hasattr(source, "streaming") and hasattr(source, "content")
    ):
        return _read_django(source)
    if hasattr(source, "iter_bytes") and hasattr(source, "read"):  # httpx, httpx2, TestClient
        try:
            return bytes(source.read())
        except RuntimeError as exc:  # an async httpx response
            raise TypeError(
                "this response is streamed by an async client: use await aread_body(response)"
            ) from exc
    if isinstance(source, AsyncIterable):
        return _run(_collect_async(source))
    if isinstance(source, Iterable):
        return b"".join(_as_bytes(part) for part in source)
    raise TypeError(
        "read_body() expects bytes, an iterable of bytes or a test client response "
        f"(Starlette/FastAPI, httpx, Flask, Django), got {type(source).__name__}"
    )


async def aread_body(source: Any) -> bytes:
    """Like :func:`read_body`, for async sources: an async iterable of ``bytes``, an async
    ``httpx`` response (``client.stream(...)`` of an ``AsyncClient``) or a Django response
    with async streaming content."""
    if hasattr(source, "aread") and hasattr(source, "aiter_bytes"):
        return bytes(await source.aread())
    if getattr(source, "is_async", False) and hasattr(source, "streaming_content"):
        try:
            body = await _collect_async(source.streaming_content)
        finally:
            _close_once(source)
        source.streaming_content = [body]
        return body
    if isinstance(source, AsyncIterable):
        return await _collect_async(source)
    return read_body(source)


def _as_bytes(part: Any) -> bytes:
    if isinstance(part, (bytes, bytearray, memoryview)):
        return bytes(part)
    if isinstance(part, str):
        return part.encode()
    raise TypeError(f"an SSE body is made of bytes, got a {type(part).__name__}: {part!r}")


async def _collect_async(source: AsyncIterable[Any]) -> bytes:
    return b"".join([_as_bytes(part) async for part in source])


def _in_async_context() -> bool:
    try:
        asyncio.get_running_loop()
        return True
    except RuntimeError:
        pass
    try:  # trio and others announce themselves through sniffio, when it is installed
        import sniffio
    except ImportError:
        return False
    try:
        sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return False
    return True


def _run(coroutine: Any) -> bytes:
    if not _in_async_context():
        return asyncio.run(coroutine)  # type: ignore[no-any-return]
    coroutine.close()
    raise TypeError(
        "this body is an async stream and an event loop is running: "
        "use await aread_body(...) instead of read_body(...)"
    )


def _read_django(response: Any) -> bytes:
    if not getattr(response, "streaming", False):
        return bytes(response.content)
    try:
        if getattr(response, "is_async", False):
            body = _run(_collect_async(response.streaming_content))
        else:
            body = b"".join(_as_bytes(part) for part in response.streaming_content)
    finally:
        _close_once(response)
    # Streaming content can be read once: keep the bytes so the response reads again.
    response.streaming_content = [body]
    return body


def _close_once(response: Any) -> None:
    # Closing a Django response fires request_finished; a second read must not fire it again.
    if not getattr(response, "_llmsse_closed", False):
        response._llmsse_closed = True
        response.close()


def read_events(source: Any) -> list[ServerSentEvent]:
    """The events of an SSE response, decoded exactly as a browser would (comments dropped)."""
    return parse(read_body(source))


def _comments(body: bytes) -> list[str]:
    lines = body.decode("utf-8", "replace").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [line[1:].removeprefix(" ") for line in lines if line.startswith(":")]


def _json_object(event: ServerSentEvent) -> dict[str, Any]:
    try:
        value = json.loads(event.data or "")
    except ValueError as exc:
        raise AssertionError(f"event {event.event!r} does not carry JSON: {event.data!r}") from exc
    if not isinstance(value, dict):
        raise AssertionError(f"event {event.event!r} does not carry a JSON object: {event.data!r}")
    return value


@dataclass(slots=True)
class TextStreamReply:
    """What a client of the ``"text"`` format reads from a response.

    Attributes:
        text: The unnamed (``message``) events' data joined: the answer as shown.
        reasoning: The ``reasoning`` events joined.
        refusal: The ``refusal`` events joined.
        tool_calls: One :class:`llmsse.ToolCall` per ``tool_call`` event.
        done: The ``done`` event's JSON (``finish_reason``, ``usage``), or ``None``.
        error: The ``error`` event's JSON (``{"error": {"type", "message"}}``), or ``None``.
        events: Every event, decoded as a browser would.
        comments: The comment lines (heartbeats are ``"ping"``).
        other: Events of a type the format does not define.
        body: The raw bytes.
    """

    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    done: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    events: list[ServerSentEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    other: list[ServerSentEvent] = field(default_factory=list)
    body: bytes = b""

    @property
    def finish_reason(self) -> str | None:
        """The ``done`` event's finish reason."""
        return None if self.done is None else self.done.get("finish_reason")

    @property
    def usage(self) -> dict[str, Any] | None:
        """The ``done`` event's usage object."""
        return None if self.done is None else self.done.get("usage")

    @property
    def heartbeats(self) -> int:
        """How many heartbeat comments (``: ping``) were sent."""
        return self.comments.count("ping")

    @property
    def error_message(self) -> str | None:
        """The ``error`` event's message."""
        if self.error is None:
            return None
        inner = self.error.get("error")
        return inner.get("message") if isinstance(inner, dict) else None


def read_text_stream(source: Any) -> TextStreamReply:
    """Read a ``"text"``-format response (see :func:`read_body` for what it accepts)."""
    body = read_body(source)
    return _text_reply(body)


def _text_reply(body: bytes) -> TextStreamReply:
    reply = TextStreamReply(events=parse(body), comments=_comments(body), body=body)
    text, reasoning, refusal = [], [], []
    for event in reply.events:
        kind, data = event.event, event.data or ""
        if kind == "message":
            text.append(data)
        elif kind == "reasoning":
            reasoning.append(data)
        elif kind == "refusal":
            refusal.append(data)
        elif kind == "tool_call":
            call = _json_object(event)
            reply.tool_calls.append(
                ToolCall(
                    index=int(call.get("index") or 0),
                    id=call.get("id"),
                    name=call.get("name"),
                    arguments=call.get("arguments") or "",
                )
            )
        elif kind == "done":
            reply.done = _json_object(event)
        elif kind == "error":
            reply.error = _json_object(event)
        else:
            reply.other.append(event)
    reply.text, reply.reasoning, reply.refusal = "".join(text), "".join(reasoning), "".join(refusal)
    return reply


@dataclass(slots=True)
class OpenAIStreamReply:
    """What an OpenAI client reads from an ``"openai"``-format response.

    Attributes:
        chunks: The chunks as real ``ChatCompletionChunk`` objects.
        text: Choice 0's content joined.
        reasoning: Choice 0's ``reasoning_content`` (else ``reasoning``) deltas joined.
        refusal: Choice 0's refusal deltas joined.
        tool_calls: Choice 0's tool calls assembled from their fragments.
        finish_reason: Choice 0's finish reason.
        usage: The usage object (from the usage chunk) as a dict.
        error: The ``error`` object of a ``data: {"error": ...}`` event, or ``None``.
        done: Whether the stream ended with ``data: [DONE]``.
        events: Every event, decoded as a browser would.
        body: The raw bytes.
    """

    chunks: list[ChatCompletionChunk] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    done: bool = False
    events: list[ServerSentEvent] = field(default_factory=list)
    body: bytes = b""


def read_openai_stream(source: Any) -> OpenAIStreamReply:
    """Read an ``"openai"``-format response (see :func:`read_body` for what it accepts)."""
    from llmsse.testing.chunks import to_chunk

    body = read_body(source)
    reply = OpenAIStreamReply(events=parse(body), body=body)
    calls: dict[int, ToolCall] = {}
    text, reasoning, refusal = [], [], []
    for event in reply.events:
        if (event.data or "").startswith("[DONE]"):
            reply.done = True
            break
        data = _json_object(event)
        if data.get("error"):
            reply.error = data["error"] if isinstance(data["error"], dict) else {"message": data}
            continue
        chunk = to_chunk(data)
        reply.chunks.append(chunk)
        if chunk.usage is not None:
            reply.usage = chunk.usage.to_dict()
        for choice in chunk.choices or []:
            if choice.index != 0:
                continue
            if choice.finish_reason:
                reply.finish_reason = choice.finish_reason
            delta = choice.delta
            if delta is None:
                continue
            extra = delta.model_extra or {}
            thought = extra.get("reasoning_content")
            if thought is None:
                thought = extra.get("reasoning")
            if isinstance(thought, str):
                reasoning.append(thought)
            if isinstance(delta.content, str):
                text.append(delta.content)
            if isinstance(delta.refusal, str):
                refusal.append(delta.refusal)
            for fragment in delta.tool_calls or []:
                index = fragment.index or 0
                call = calls.setdefault(index, ToolCall(index=index))
                if fragment.id:
                    call.id = fragment.id
                if fragment.function is not None:
                    if fragment.function.name:
                        call.name = fragment.function.name
                    call.arguments += fragment.function.arguments or ""
    reply.text, reply.reasoning, reply.refusal = "".join(text), "".join(reasoning), "".join(refusal)
    reply.tool_calls = [calls[i] for i in sorted(calls)]
    return reply


@dataclass(slots=True)
class ResponsesStreamReply:
    """What an OpenAI client reads from an ``"openai"``-format response of a Responses source.

    Attributes:
        response_events: The events as the openai SDK's objects, in order.
        text: The output text deltas joined.
        reasoning: The reasoning (summary) deltas joined, parts separated by a blank line.
        refusal: The refusal deltas joined.
        tool_calls: The function calls (``id`` is the ``call_id``).
        finish_reason: ``"stop"``/``"tool_calls"`` after ``response.completed``, the
            mapped reason after ``response.incomplete`` (as ``StreamResult`` has it).
        usage: The terminal response's usage as the API sent it (``input_tokens``, ...).
        error: The error of the terminal ``error`` event (flat or nested) or of
            ``response.failed`` (``response.error``), as a dict; else ``None``.
        terminal: The type of the terminal event, or ``None`` when the stream just stopped.
        events: Every event, decoded as a browser would.
        body: The raw bytes.
    """

    response_events: list[Any] = field(default_factory=list)
    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    terminal: str | None = None
    events: list[ServerSentEvent] = field(default_factory=list)
    body: bytes = b""


_TERMINAL = ("response.completed", "response.incomplete", "response.failed", "error")


def read_responses_stream(source: Any) -> ResponsesStreamReply:
    """Read a Responses wire-format response (see :func:`read_body` for what it accepts)."""
    from llmsse._chat import ChatState
    from llmsse._responses import ResponsesReader, UpstreamError
    from llmsse.result import StreamResult
    from llmsse.testing.responses import to_response_event

    body = read_body(source)
    reply = ResponsesStreamReply(events=parse(body), body=body)
    result = StreamResult()
    state = ChatState(result)
    reader = ResponsesReader(state)
    for event in reply.events:
        data = _json_object(event)
        item = to_response_event(data)
        reply.response_events.append(item)
        kind = data.get("type")
        if kind in _TERMINAL:
            reply.terminal = kind
            response = data.get("response")
            if isinstance(response, dict) and isinstance(response.get("usage"), dict):
                reply.usage = response["usage"]
        try:
            reader.read(item)
        except UpstreamError:
            nested = data.get("error")
            if kind == "response.failed":
                nested = (data.get("response") or {}).get("error")
            elif not isinstance(nested, dict):
                nested = {k: data.get(k) for k in ("code", "message", "param")}
            reply.error = nested if isinstance(nested, dict) else {}
        state.pending.clear()
    state.settle()
    reply.text, reply.reasoning, reply.refusal = result.text, result.reasoning, result.refusal
    reply.tool_calls = list(result.tool_calls)
    reply.finish_reason = result.finish_reason
    return reply
