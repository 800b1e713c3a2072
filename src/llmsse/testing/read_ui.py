"""Read a response of the "ai-sdk" or "ag-ui" format back in a test, checking its protocol.

Each reader takes the response as the test has it (see :func:`llmsse.testing.read_body`),
rebuilds what the frontend shows (answer, reasoning, tool calls, how the run ended) and
fails with an ``AssertionError`` where the real client would fail, or where the stream
breaks the producer rules of its protocol (PROTOCOLS.md §4.4 and §5.3).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from llmsse.decoder import parse
from llmsse.event import ServerSentEvent
from llmsse.testing.read import _comments, read_body

__all__ = [
    "AGUIStreamReply",
    "AISDKStreamReply",
    "StreamToolCall",
    "read_ag_ui_stream",
    "read_ai_sdk_stream",
]


@dataclass(frozen=True, slots=True)
class StreamToolCall:
    """One tool call as an "ai-sdk" or "ag-ui" client assembles it.

    Attributes:
        id: The ``toolCallId``.
        name: The tool's name (``toolName`` / ``toolCallName``).
        arguments: The arguments text as it was streamed (``tool-input-delta`` /
            ``TOOL_CALL_ARGS`` joined); for an "ai-sdk" call sent without deltas, the
            JSON of its ``input``.
        input: The parsed arguments: "ai-sdk": the ``input`` of ``tool-input-available``
            (the raw text, a ``str``, after ``tool-input-error``); "ag-ui": ``arguments``
            parsed as JSON. ``None`` when there is none (or it is not JSON).
        error: "ai-sdk": the ``errorText`` of ``tool-input-error``, else ``None``.
        parent_message_id: "ag-ui": the ``parentMessageId`` of ``TOOL_CALL_START``.
        complete: Whether the call was ended (``tool-input-available`` /
            ``tool-input-error``, ``TOOL_CALL_END``).
    """

    id: str
    name: str
    arguments: str = ""
    input: Any = None
    error: str | None = None
    parent_message_id: str | None = None
    complete: bool = False


def _fail(protocol: str, index: int, message: str, item: Any = None) -> AssertionError:
    where = f"{protocol} stream, event {index}"
    shown = "" if item is None else f": {json.dumps(item, ensure_ascii=False)[:300]}"
    return AssertionError(f"{where}: {message}{shown}")


def _payloads(protocol: str, events: list[ServerSentEvent]) -> list[tuple[int, Any]]:
    """``(index, JSON or "[DONE]")`` for every event, failing on data that is not JSON."""
    out: list[tuple[int, Any]] = []
    for index, event in enumerate(events):
        data = event.data or ""
        if data == "[DONE]":
            out.append((index, data))
            continue
        try:
            value = json.loads(data)
        except ValueError:
            raise _fail(protocol, index, f"data is not JSON: {data[:300]!r}") from None
        if not isinstance(value, dict) or not isinstance(value.get("type"), str):
            raise _fail(protocol, index, "not a JSON object with a string 'type'", value)
        out.append((index, value))
    return out


def _proto_key(obj: Any) -> bool:
    """Whether ``obj`` has a key the AI SDK's secure JSON parser refuses."""
    if isinstance(obj, dict):
        if "__proto__" in obj:
            return True
        constructor = obj.get("constructor")
        if isinstance(constructor, dict) and "prototype" in constructor:
            return True
        return any(_proto_key(value) for value in obj.values())
    if isinstance(obj, list):
        return any(_proto_key(value) for value in obj)
    return False


def _check_fields(
    protocol: str,
    index: int,
    item: dict[str, Any],
    required: tuple[str, ...],
    optional: tuple[str, ...] = (),
) -> None:
    for name in required:
        if not isinstance(item.get(name), str):
            raise _fail(protocol, index, f"{item['type']} needs a string {name!r}", item)
    for name in optional:
        if name in item and not isinstance(item[name], str):
            raise _fail(protocol, index, f"{name!r} must be a string when present (not null)", item)


# --- "ai-sdk": the Vercel AI SDK UI message stream -------------------------------------------

# uiMessageChunkSchema of the npm package ai (6.x): required and optional string fields.
_UI_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "start": ((), ("messageId",)),
    "start-step": ((), ()),
    "finish-step": ((), ()),
    "text-start": (("id",), ()),
    "text-delta": (("id", "delta"), ()),
    "text-end": (("id",), ()),
    "reasoning-start": (("id",), ()),
    "reasoning-delta": (("id", "delta"), ()),
    "reasoning-end": (("id",), ()),
    "error": (("errorText",), ()),
    "tool-input-start": (("toolCallId", "toolName"), ("title",)),
    "tool-input-delta": (("toolCallId", "inputTextDelta"), ()),
    "tool-input-available": (("toolCallId", "toolName"), ("title",)),
    "tool-input-error": (("toolCallId", "toolName", "errorText"), ("title",)),
    "tool-approval-request": (("approvalId", "toolCallId"), ("signature",)),
    "tool-output-available": (("toolCallId",), ()),
    "tool-output-error": (("toolCallId", "errorText"), ()),
    "tool-output-denied": (("toolCallId",), ()),
    "source-url": (("sourceId", "url"), ("title",)),
    "source-document": (("sourceId", "mediaType", "title"), ("filename",)),
    "file": (("url", "mediaType"), ()),
    "message-metadata": ((), ()),
    "finish": ((), ()),
    "abort": ((), ("reason",)),
}
_UI_FINISH_REASONS = {"stop", "length", "content-filter", "tool-calls", "error", "other"}
_UI_TERMINAL = ("finish", "error", "abort")


@dataclass(frozen=True, slots=True)
class AISDKStreamReply:
    """What ``useChat`` (the AI SDK's ``DefaultChatTransport``) reads from an ``"ai-sdk"``
    response.

    Attributes:
        text: The ``text-delta`` deltas joined (every text part): the answer as shown.
        reasoning: The ``reasoning-delta`` deltas joined.
        tool_calls: One :class:`StreamToolCall` per tool call, in the order they started.
        finish_reason: The ``finish`` chunk's ``finishReason`` as the AI SDK spells it
            (``"stop"``, ``"tool-calls"``, ``"content-filter"``...), or ``None``.
        usage: ``messageMetadata.usage`` of the ``finish`` chunk (where llmsse puts it).
        message_id: The ``start`` chunk's ``messageId``, or ``None``.
        message_metadata: The ``messageMetadata`` of every chunk, merged (as the client
            does), or ``None``.
        error: The ``error`` chunk (``{"type": "error", "errorText": ...}``), or ``None``.
        terminal: The type of the last chunk when it ends the message (``"finish"``,
            ``"error"``, ``"abort"``), else ``None``.
        done: Whether the stream ended with ``data: [DONE]``.
        chunks: Every chunk, as parsed JSON (``[DONE]`` left out).
        steps: How many steps (``start-step``) there were.
        events: Every event, decoded as a browser would.
        comments: The comment lines (heartbeats are ``"ping"``).
        body: The raw bytes.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[StreamToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    message_id: str | None = None
    message_metadata: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    terminal: str | None = None
    done: bool = False
    chunks: list[dict[str, Any]] = field(default_factory=list)
    steps: int = 0
    events: list[ServerSentEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: bytes = b""

    @property
    def error_message(self) -> str | None:
        """The ``error`` chunk's ``errorText`` (what ``useChat`` shows as ``error.message``)."""
        return None if self.error is None else self.error.get("errorText")

    @property
    def heartbeats(self) -> int:
        """How many heartbeat comments (``: ping``) were sent."""
        return self.comments.count("ping")


def _compact(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def _merge(old: Any, new: Any) -> Any:
    if isinstance(old, dict) and isinstance(new, dict):
        merged = dict(old)
        for key, value in new.items():
            merged[key] = _merge(old.get(key), value)
        return merged
    return new


class _Call:
    """A tool call being assembled."""

    def __init__(self, call_id: str, name: str, parent: str | None = None) -> None:
        self.id, self.name, self.parent = call_id, name, parent
        self.arguments: list[str] = []
        self.input: Any = None
        self.error: str | None = None
        self.complete = False
        self.streamed = False

    def freeze(self, *, parse_arguments: bool) -> StreamToolCall:
        arguments = "".join(self.arguments)
        value = self.input
        if parse_arguments:
            try:
                value = json.loads(arguments)
            except ValueError:
                value = None
        return StreamToolCall(
            id=self.id,
            name=self.name,
            arguments=arguments,
            input=value,
            error=self.error,
            parent_message_id=self.parent,
            complete=self.complete,
        )


def read_ai_sdk_stream(source: Any, *, terminal: bool = True) -> AISDKStreamReply:
    """Read an ``"ai-sdk"``-format response (a UI message stream) and check its protocol.

    Accepts what :func:`llmsse.testing.read_body` accepts. Fails (``AssertionError``, the
    message names the event) where the AI SDK's client fails: a chunk that is not JSON,
    of an unknown ``type`` or without a required field (``null`` included), a
    ``finishReason`` outside the AI SDK's spelling (``tool_calls``), a ``__proto__`` key,
    a ``text-delta``/``-end`` (or reasoning) without an open ``*-start`` of its ``id``, a
    ``tool-input-delta`` before its ``tool-input-start``, a tool output for an unknown call.
    And where the stream breaks the producer rules: ``start`` first (or ``error``), steps
    not nested, every text/reasoning part closed before ``finish-step``, nothing still
    open at ``finish``, nothing after ``finish``/``abort``, nothing after ``[DONE]``.

    Args:
        source: The response (bytes, an iterable of bytes, a test client's response...).
        terminal: Also require the end of a complete stream: ``finish``, ``error`` or
            ``abort`` last, then ``data: [DONE]``. ``False`` for a stream cut short.
    """
    body = read_body(source)
    events = parse(body)
    protocol = "ai-sdk"
    chunks: list[dict[str, Any]] = []
    text: list[str] = []
    reasoning: list[str] = []
    parts: dict[str, str] = {}  # open text/reasoning part id -> "text"/"reasoning"
    calls: dict[str, _Call] = {}  # every call by id (the last one of an id)
    order: list[_Call] = []
    finish: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    message_id: str | None = None
    metadata: Any = None
    in_step = False
    steps = 0
    done = False
    ended: str | None = None  # "finish" or "abort": nothing may follow
    for index, item in _payloads(protocol, events):
        if done:
            raise _fail(protocol, index, "an event after data: [DONE]", item)
        if item == "[DONE]":
            done = True
            continue
        chunks.append(item)
        kind = item["type"]
        if ended is not None:
            raise _fail(protocol, index, f"a chunk after {ended!r}", item)
        if _proto_key(item):
            raise _fail(
                protocol,
                index,
                "a __proto__ (or constructor.prototype) key: the client's secure JSON "
                "parser refuses the whole stream",
                item,
            )
        if kind.startswith("data-"):
            _check_fields(protocol, index, item, (), ("id",))
            if "data" not in item:
                raise _fail(protocol, index, f"{kind} needs 'data'", item)
            continue
        if kind not in _UI_FIELDS:
            raise _fail(protocol, index, f"unknown chunk type {kind!r}", item)
        _check_fields(protocol, index, item, *_UI_FIELDS[kind])
        reason = item.get("finishReason", "stop") if kind == "finish" else "stop"
        if reason not in _UI_FINISH_REASONS:
            raise _fail(
                protocol,
                index,
                f"finishReason {reason!r} is not one of {sorted(_UI_FINISH_REASONS)}",
                item,
            )
        if "messageMetadata" in item:
            metadata = _merge(metadata, item["messageMetadata"])
        if len(chunks) == 1 and kind not in ("start", "error"):
            raise _fail(protocol, index, "the first chunk must be 'start'", item)
        if kind == "start":
            if len(chunks) != 1:
                raise _fail(protocol, index, "'start' must be the first chunk", item)
            message_id = item.get("messageId")
        elif kind == "start-step":
            if in_step:
                raise _fail(protocol, index, "'start-step' inside a step (no 'finish-step')")
            in_step = True
            steps += 1
        elif kind == "finish-step":
            if not in_step:
                raise _fail(protocol, index, "'finish-step' without 'start-step'")
            if parts:
                raise _fail(
                    protocol,
                    index,
                    f"'finish-step' while parts are open: {sorted(parts)} (the client drops "
                    "them: close each with its *-end first)",
                )
            in_step = False
        elif kind in ("text-start", "reasoning-start"):
            part = kind.split("-")[0]
            if item["id"] in parts:
                raise _fail(protocol, index, f"{kind}: part {item['id']!r} is already open", item)
            parts[item["id"]] = part
        elif kind in ("text-delta", "text-end", "reasoning-delta", "reasoning-end"):
            part, _, what = kind.partition("-")
            if parts.get(item["id"]) != part:
                raise _fail(
                    protocol,
                    index,
                    f"{kind} for {part} part {item['id']!r}, which is not open: "
                    f'a "{part}-start" must come first',
                    item,
                )
            if what == "delta":
                (text if part == "text" else reasoning).append(item["delta"])
            else:
                del parts[item["id"]]
        elif kind == "tool-input-start":
            previous = calls.get(item["toolCallId"])
            if previous is not None and not previous.complete:
                raise _fail(protocol, index, "tool-input-start for a call already started", item)
            call = calls[item["toolCallId"]] = _Call(item["toolCallId"], item["toolName"])
            order.append(call)
        elif kind == "tool-input-delta":
            found = calls.get(item["toolCallId"])
            if found is None or found.complete:
                raise _fail(
                    protocol,
                    index,
                    "tool-input-delta for a call without an open tool-input-start",
                    item,
                )
            found.arguments.append(item["inputTextDelta"])
            found.streamed = True
        elif kind in ("tool-input-available", "tool-input-error"):
            if "input" not in item and kind == "tool-input-available":
                raise _fail(protocol, index, f"{kind} needs 'input'", item)
            found = calls.get(item["toolCallId"])
            if found is None or found.complete:  # sent whole, without tool-input-start
                found = calls[item["toolCallId"]] = _Call(item["toolCallId"], item["toolName"])
                order.append(found)
            found.name = item["toolName"]
            found.input = item.get("input")
            found.complete = True
            if kind == "tool-input-error":
                found.error = item["errorText"]
            if not found.streamed:
                raw = item.get("input")
                found.arguments = [raw if isinstance(raw, str) else _compact(raw)]
        elif kind.startswith("tool-"):  # outputs and approvals of a known call
            if item["toolCallId"] not in calls:
                raise _fail(
                    protocol, index, f"{kind}: no tool call {item['toolCallId']!r} in the message"
                )
        elif kind == "error":
            error = item
        elif kind == "finish":
            if in_step or parts:
                raise _fail(
                    protocol,
                    index,
                    "'finish' with a step or a part still open (close parts, then 'finish-step')",
                    item,
                )
            open_calls = [c.id for c in order if not c.complete]
            if open_calls:
                raise _fail(protocol, index, f"'finish' with tool calls still open: {open_calls}")
            finish = item
            ended = kind
        elif kind == "abort":
            ended = kind
    last = chunks[-1]["type"] if chunks else None
    if terminal:
        if last not in _UI_TERMINAL:
            raise AssertionError(
                f"{protocol} stream: the last chunk must be 'finish' (or 'error'/'abort'), "
                f"got {last!r}: the stream was cut short"
            )
        if not done:
            raise AssertionError(f"{protocol} stream: no 'data: [DONE]' at the end")
    usage = None
    if finish is not None and isinstance(finish.get("messageMetadata"), dict):
        found_usage = finish["messageMetadata"].get("usage")
        usage = found_usage if isinstance(found_usage, dict) else None
    return AISDKStreamReply(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=[call.freeze(parse_arguments=False) for call in order],
        finish_reason=None if finish is None else finish.get("finishReason"),
        usage=usage,
        message_id=message_id,
        message_metadata=metadata if isinstance(metadata, dict) else None,
        error=error,
        terminal=last if last in _UI_TERMINAL else None,
        done=done,
        chunks=chunks,
        steps=steps,
        events=events,
        comments=_comments(body),
        body=body,
    )


# --- "ag-ui": AG-UI events ---------------------------------------------------------------------

# The string fields of the events the lifecycle rests on (@ag-ui/core's schemas).
_AGUI_FIELDS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "RUN_STARTED": (("threadId", "runId"), ("parentRunId",)),
    "RUN_FINISHED": (("threadId", "runId"), ()),
    "RUN_ERROR": (("message",), ("code",)),
    "STEP_STARTED": (("stepName",), ()),
    "STEP_FINISHED": (("stepName",), ()),
    "TEXT_MESSAGE_START": (("messageId",), ("role", "name")),
    "TEXT_MESSAGE_CONTENT": (("messageId", "delta"), ()),
    "TEXT_MESSAGE_END": (("messageId",), ()),
    "TEXT_MESSAGE_CHUNK": ((), ("messageId", "role", "delta", "name")),
    "TOOL_CALL_START": (("toolCallId", "toolCallName"), ("parentMessageId",)),
    "TOOL_CALL_ARGS": (("toolCallId", "delta"), ()),
    "TOOL_CALL_END": (("toolCallId",), ()),
    "TOOL_CALL_CHUNK": ((), ("toolCallId", "toolCallName", "parentMessageId", "delta")),
    "TOOL_CALL_RESULT": (("messageId", "toolCallId"), ()),
    "REASONING_START": (("messageId",), ()),
    "REASONING_MESSAGE_START": (("messageId",), ()),
    "REASONING_MESSAGE_CONTENT": (("messageId", "delta"), ()),
    "REASONING_MESSAGE_END": (("messageId",), ()),
    "REASONING_MESSAGE_CHUNK": ((), ("messageId", "delta")),
    "REASONING_END": (("messageId",), ()),
    "REASONING_ENCRYPTED_VALUE": (("subtype", "entityId", "encryptedValue"), ()),
    "STATE_SNAPSHOT": ((), ()),
    "STATE_DELTA": ((), ()),
    "MESSAGES_SNAPSHOT": ((), ()),
    "ACTIVITY_SNAPSHOT": (("messageId",), ()),
    "ACTIVITY_DELTA": (("messageId",), ()),
    "RAW": ((), ()),
    "CUSTOM": (("name",), ()),
    "SUBAGENT_STARTED": (("subagentRunId", "name"), ()),
    "SUBAGENT_FINISHED": (("subagentRunId",), ()),
    "SUBAGENT_ERROR": (("subagentRunId", "message"), ()),
}
_AGUI_ROLES = {"developer", "system", "assistant", "user"}


@dataclass(frozen=True, slots=True)
class AGUIStreamReply:
    """What an AG-UI client (``HttpAgent`` of ``@ag-ui/client``) reads from an ``"ag-ui"``
    response.

    Attributes:
        text: The ``TEXT_MESSAGE_CONTENT`` (and ``TEXT_MESSAGE_CHUNK``) deltas joined.
        reasoning: The ``REASONING_MESSAGE_CONTENT`` (and ``..._CHUNK``) deltas joined.
        tool_calls: One :class:`StreamToolCall` per ``TOOL_CALL_START``, in order.
        thread_id: The ``threadId`` of ``RUN_STARTED``.
        run_id: The ``runId`` of ``RUN_STARTED``.
        message_ids: The ids of the text messages, in the order they started.
        outcome: ``RUN_FINISHED``'s ``outcome`` (as sent), or ``None``.
        result: ``RUN_FINISHED``'s ``result``, or ``None``.
        usage: The ``usage`` of ``RUN_FINISHED`` / ``RUN_ERROR`` (as sent), or ``None``.
        error: The ``RUN_ERROR`` event (``{"type", "message", "code"?}``), or ``None``.
        terminal: ``"RUN_FINISHED"`` or ``"RUN_ERROR"`` when the last event is one, else ``None``.
        ag_ui_events: Every event, as parsed JSON.
        events: Every SSE event, decoded as a browser would.
        comments: The comment lines (heartbeats are ``"ping"``).
        body: The raw bytes.
    """

    text: str = ""
    reasoning: str = ""
    tool_calls: list[StreamToolCall] = field(default_factory=list)
    thread_id: str | None = None
    run_id: str | None = None
    message_ids: list[str] = field(default_factory=list)
    outcome: Any = None
    result: Any = None
    usage: Any = None
    error: dict[str, Any] | None = None
    terminal: str | None = None
    ag_ui_events: list[dict[str, Any]] = field(default_factory=list)
    events: list[ServerSentEvent] = field(default_factory=list)
    comments: list[str] = field(default_factory=list)
    body: bytes = b""

    @property
    def error_message(self) -> str | None:
        """The ``RUN_ERROR`` event's ``message``."""
        return None if self.error is None else self.error.get("message")

    @property
    def error_code(self) -> str | None:
        """The ``RUN_ERROR`` event's ``code`` (llmsse sends none)."""
        return None if self.error is None else self.error.get("code")

    @property
    def heartbeats(self) -> int:
        """How many heartbeat comments (``: ping``) were sent."""
        return self.comments.count("ping")


def read_ag_ui_stream(source: Any, *, terminal: bool = True) -> AGUIStreamReply:
    """Read an ``"ag-ui"``-format response and check it as ``HttpAgent`` does.

    Accepts what :func:`llmsse.testing.read_body` accepts. Fails (``AssertionError``, the
    message names the event) where ``@ag-ui/client`` fails (PROTOCOLS.md §5.3): a CR in
    the body (the client splits events on ``\\n\\n`` only), data that is not a JSON
    event of a known ``type``, a missing or ``null`` field, a first event other than
    ``RUN_STARTED`` (or ``RUN_ERROR``), a ``*_CONTENT``/``*_ARGS``/``*_END`` without
    its open ``*_START``, a ``*_START`` of an id already open, ``RUN_FINISHED`` while a
    message, reasoning, tool call or step is open, any event after ``RUN_ERROR``, any
    but ``RUN_STARTED``/``RUN_ERROR`` after ``RUN_FINISHED``. Also when ``RUN_FINISHED``
    names another thread or run than its ``RUN_STARTED``. ``*_CHUNK`` events are
    read for their deltas only.

    Args:
        source: The response (bytes, an iterable of bytes, a test client's response...).
        terminal: Also require ``RUN_FINISHED`` or ``RUN_ERROR`` as the last event.
            ``False`` for a stream cut short.
    """
    body = read_body(source)
    protocol = "ag-ui"
    cr = body.find(b"\r")
    if cr >= 0:
        raise AssertionError(
            f"{protocol} stream: a CR in the body at byte {cr}: the AG-UI "
            "client splits events on \\n\\n only (CRLF framing breaks JSON.parse)"
        )
    events = parse(body)
    items: list[dict[str, Any]] = []
    text: list[str] = []
    reasoning: list[str] = []
    texts: set[str] = set()
    spans: set[str] = set()  # REASONING_START ... REASONING_END
    thoughts: set[str] = set()  # REASONING_MESSAGE_START ... _END
    steps: set[str] = set()
    open_calls: dict[str, _Call] = {}
    order: list[_Call] = []
    message_ids: list[str] = []
    run: dict[str, Any] | None = None  # the RUN_STARTED of the current run
    first: dict[str, Any] | None = None
    state = "none"  # "running", "finished", "errored"
    finished: dict[str, Any] | None = None
    error: dict[str, Any] | None = None
    last_call: _Call | None = None
    for index, item in _payloads(protocol, events):
        if item == "[DONE]":
            raise _fail(protocol, index, "data: [DONE] is not an AG-UI event")
        items.append(item)
        kind = item["type"]
        if kind not in _AGUI_FIELDS:
            raise _fail(protocol, index, f"unknown event type {kind!r}", item)
        nulls = sorted(key for key, value in item.items() if value is None)
        if nulls:
            raise _fail(
                protocol, index, f"null for {nulls}: leave an optional field out instead", item
            )
        _check_fields(protocol, index, item, *_AGUI_FIELDS[kind])
        if state == "errored" and kind != "RUN_STARTED":
            raise _fail(protocol, index, f"{kind} after RUN_ERROR: nothing may follow it", item)
        if state == "finished" and kind not in ("RUN_STARTED", "RUN_ERROR"):
            raise _fail(
                protocol,
                index,
                f"{kind} after RUN_FINISHED (a new run must start with RUN_STARTED)",
                item,
            )
        if len(items) == 1 and kind not in ("RUN_STARTED", "RUN_ERROR"):
            raise _fail(protocol, index, "the first event must be RUN_STARTED", item)
        if kind == "RUN_STARTED":
            if state == "running":
                raise _fail(protocol, index, "RUN_STARTED while a run is still active", item)
            run, state = item, "running"
            first = first or item
            for opened_ids in (texts, spans, thoughts, steps):
                opened_ids.clear()
            open_calls.clear()
        elif kind == "RUN_FINISHED":
            still = {
                "steps": steps,
                "text messages": texts,
                "reasoning messages": thoughts,
                "reasoning spans": spans,
                "tool calls": set(open_calls),
            }
            for what, ids in still.items():
                if ids:
                    raise _fail(
                        protocol,
                        index,
                        f"RUN_FINISHED while {what} are still active: {sorted(ids)}",
                    )
            if run is not None and (item["threadId"], item["runId"]) != (
                run["threadId"],
                run["runId"],
            ):
                raise _fail(
                    protocol, index, "RUN_FINISHED names another thread or run than RUN_STARTED"
                )
            finished, state = item, "finished"
        elif kind == "RUN_ERROR":
            error, state = item, "errored"
        elif kind == "TEXT_MESSAGE_START":
            if item["messageId"] in texts:
                raise _fail(protocol, index, "a text message with this id is already open", item)
            if "role" in item and item["role"] not in _AGUI_ROLES:
                raise _fail(protocol, index, f"role must be one of {sorted(_AGUI_ROLES)}", item)
            texts.add(item["messageId"])
            message_ids.append(item["messageId"])
        elif kind in ("TEXT_MESSAGE_CONTENT", "TEXT_MESSAGE_END"):
            if item["messageId"] not in texts:
                raise _fail(
                    protocol,
                    index,
                    f"{kind}: no active text message {item['messageId']!r} "
                    "(TEXT_MESSAGE_START first)",
                    item,
                )
            if kind == "TEXT_MESSAGE_END":
                texts.remove(item["messageId"])
            else:
                text.append(item["delta"])
        elif kind in ("REASONING_START", "REASONING_MESSAGE_START"):
            opened = spans if kind == "REASONING_START" else thoughts
            if item["messageId"] in opened:
                raise _fail(protocol, index, f"{kind}: this id is already open", item)
            opened.add(item["messageId"])
        elif kind in ("REASONING_MESSAGE_CONTENT", "REASONING_MESSAGE_END", "REASONING_END"):
            opened = spans if kind == "REASONING_END" else thoughts
            if item["messageId"] not in opened:
                opener = "REASONING_START" if kind == "REASONING_END" else "REASONING_MESSAGE_START"
                raise _fail(
                    protocol,
                    index,
                    f"{kind}: no active reasoning {item['messageId']!r} ({opener} first)",
                    item,
                )
            if kind == "REASONING_MESSAGE_CONTENT":
                reasoning.append(item["delta"])
            else:
                opened.remove(item["messageId"])
        elif kind == "TOOL_CALL_START":
            if item["toolCallId"] in open_calls:
                raise _fail(protocol, index, "a tool call with this id is already open", item)
            call = _Call(item["toolCallId"], item["toolCallName"], item.get("parentMessageId"))
            open_calls[call.id] = call
            order.append(call)
        elif kind in ("TOOL_CALL_ARGS", "TOOL_CALL_END"):
            found = open_calls.get(item["toolCallId"])
            if found is None:
                raise _fail(
                    protocol,
                    index,
                    f"{kind}: no active tool call {item['toolCallId']!r} (TOOL_CALL_START first)",
                    item,
                )
            if kind == "TOOL_CALL_ARGS":
                found.arguments.append(item["delta"])
            else:
                found.complete = True
                del open_calls[found.id]
        elif kind == "STEP_STARTED":
            if item["stepName"] in steps:
                raise _fail(protocol, index, "this step is already active", item)
            steps.add(item["stepName"])
        elif kind == "STEP_FINISHED":
            if item["stepName"] not in steps:
                raise _fail(protocol, index, "STEP_FINISHED for a step not started", item)
            steps.remove(item["stepName"])
        elif kind == "TEXT_MESSAGE_CHUNK":
            text.append(item.get("delta", ""))
        elif kind == "REASONING_MESSAGE_CHUNK":
            reasoning.append(item.get("delta", ""))
        elif kind == "TOOL_CALL_CHUNK":
            call_id = item.get("toolCallId")
            if call_id is not None and (last_call is None or last_call.id != call_id):
                name = item.get("toolCallName", "")
                last_call = _Call(call_id, name, item.get("parentMessageId"))
                last_call.complete = True
                order.append(last_call)
            if last_call is not None:
                last_call.arguments.append(item.get("delta", ""))
    last = items[-1]["type"] if items else None
    if terminal and last not in ("RUN_FINISHED", "RUN_ERROR"):
        raise AssertionError(
            f"{protocol} stream: the last event must be RUN_FINISHED or RUN_ERROR, got "
            f"{last!r}: the stream was cut short"
        )
    return AGUIStreamReply(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=[call.freeze(parse_arguments=True) for call in order],
        thread_id=None if first is None else first["threadId"],
        run_id=None if first is None else first["runId"],
        message_ids=message_ids,
        outcome=None if finished is None else finished.get("outcome"),
        result=None if finished is None else finished.get("result"),
        usage=(finished or error or {}).get("usage"),
        error=error,
        terminal=last if last in ("RUN_FINISHED", "RUN_ERROR") else None,
        ag_ui_events=items,
        events=events,
        comments=_comments(body),
        body=body,
    )
