"""Assertions that catch the mistakes hand-written SSE endpoints make.

They check the bytes against the event-stream grammar (WHATWG HTML §9.2.5) and against the
contract of llmsse's formats, and fail with a message that says what a browser or an SDK
would do with the mistake.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from llmsse.decoder import parse
from llmsse.event import ServerSentEvent
from llmsse.testing.read import read_body

__all__ = ["assert_sse_response", "assert_valid_sse", "sse_problems"]

Format = Literal["text", "openai", "ai-sdk", "ag-ui"]

_FIELDS = {"data", "event", "id", "retry"}
_TEXT_EVENTS = {"message", "reasoning", "refusal", "tool_call", "done", "error"}


def sse_problems(body: Any, *, format: Format | None = "text", terminal: bool = True) -> list[str]:
    """Every problem found in an SSE body (an empty list when it is valid).

    Args:
        body: The response, in any form :func:`llmsse.testing.read_body` accepts.
        format: ``"text"``, ``"openai"``, ``"ai-sdk"`` or ``"ag-ui"`` to also check that
            format's contract; ``None`` for the framing only.
        terminal: Require the format's terminal event (``done``/``error``, or
            ``[DONE]``/an error object) as the last event.
    """
    raw = read_body(body)
    problems = _framing_problems(raw)
    if format is None:
        return problems
    events = parse(raw)
    if format == "text":
        problems += _text_problems(events, terminal=terminal)
    elif format == "openai" and _is_responses_stream(events):
        problems += _responses_problems(events, terminal=terminal)
    elif format == "openai":
        problems += _openai_problems(events, terminal=terminal)
    elif format in ("ai-sdk", "ag-ui"):
        # The kit's readers check what the JS clients check; they stop at the first problem.
        from llmsse.testing.read_ui import read_ag_ui_stream, read_ai_sdk_stream

        reader = read_ai_sdk_stream if format == "ai-sdk" else read_ag_ui_stream
        try:
            reader(raw, terminal=terminal)
        except AssertionError as exc:
            problems.append(str(exc))
    else:
        raise ValueError(
            f"format must be 'text', 'openai', 'ai-sdk', 'ag-ui' or None, got {format!r}"
        )
    return problems


def assert_valid_sse(
    body: Any, *, format: Format | None = "text", terminal: bool = True
) -> list[ServerSentEvent]:
    """Fail (``AssertionError``) unless ``body`` is a well-formed stream of ``format``.

    Framing: UTF-8 without BOM, LF line ends only (no CR or CRLF), only ``data``,
    ``event``, ``id``, ``retry`` fields and comments (a stray line is what a multi-line
    value written as one ``data:`` line leaves behind, and a browser drops it), and a last
    event ended by a blank line. Then the format: for ``"text"``, known event types, JSON
    where the format has JSON, one terminal ``done`` or ``error`` event and nothing after
    it; for ``"openai"``, JSON chunks, no named events, ``data: [DONE]`` (or an error
    object) last, or, when the first event is named (a Responses API stream), events named
    by their JSON ``type`` with increasing ``sequence_number``, a terminal
    ``response.completed``/``.incomplete``/``.failed`` or ``error`` event last and no
    ``[DONE]``; for ``"ai-sdk"`` and ``"ag-ui"``, what
    :func:`~llmsse.testing.read_ai_sdk_stream` and :func:`~llmsse.testing.read_ag_ui_stream`
    check (what the Vercel AI SDK's and AG-UI's clients accept, and each protocol's
    lifecycle).

    Returns the decoded events.
    """
    raw = read_body(body)
    problems = sse_problems(raw, format=format, terminal=terminal)
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise AssertionError(f"invalid SSE stream ({len(problems)} problems):\n{listing}")
    return parse(raw)


def assert_sse_response(
    response: Any, *, status: int = 200, format: Format | None = "text", terminal: bool = True
) -> list[ServerSentEvent]:
    """Check a test client's response: status, SSE headers, then the body (as
    :func:`assert_valid_sse`). Returns the decoded events.

    Headers: ``Content-Type: text/event-stream``, ``Cache-Control: no-cache`` (else a proxy
    or the browser may cache or buffer), and no ``Content-Encoding`` but ``identity``
    (compression middleware buffers events or splits them).
    """
    problems: list[str] = []
    code = getattr(response, "status_code", None)
    if code != status:
        problems.append(f"status is {code}, expected {status}")
    headers = response.headers
    content_type = headers.get("content-type") or ""
    if content_type.split(";")[0].strip().lower() != "text/event-stream":
        problems.append(
            f"Content-Type is {content_type!r}: EventSource fails on anything but text/event-stream"
        )
    if "no-cache" not in (headers.get("cache-control") or ""):
        problems.append("Cache-Control has no 'no-cache': a proxy or the browser may cache it")
    if (headers.get("content-encoding") or "identity").strip().lower() != "identity":
        problems.append(
            f"Content-Encoding is {headers.get('content-encoding')!r}: "
            "compression middleware buffers or splits events"
        )
    if problems:
        listing = "\n".join(f"  - {problem}" for problem in problems)
        raise AssertionError(f"not an SSE response:\n{listing}")
    return assert_valid_sse(response, format=format, terminal=terminal)


def _framing_problems(raw: bytes) -> list[str]:
    if not raw:
        return ["the stream is empty"]
    problems = []
    if raw.startswith(b"\xef\xbb\xbf"):
        problems.append("the stream starts with a BOM (openai-python then loses the first event)")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        problems.append(f"invalid UTF-8 at byte {exc.start}: {raw[exc.start : exc.start + 8]!r}")
        text = raw.decode("utf-8", "replace")
    position = raw.find(b"\r")
    if position != -1:
        problems.append(
            f"CR at byte {position} ({raw[max(0, position - 20) : position + 4]!r}): "
            "use LF line ends only (CRLF framing breaks clients that split on \\n\\n)"
        )
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n\n"):
        problems.append(
            f"the last event is not ended by a blank line ({raw[-40:]!r}): "
            "a client drops an unterminated event"
        )
    for number, line in enumerate(text.split("\n"), start=1):
        if not line or line.startswith(":"):
            continue
        name = line.partition(":")[0]
        if name not in _FIELDS:
            problems.append(
                f"line {number} is not an SSE field: {line[:60]!r} is ignored by a browser "
                "(a line break inside a value written as a single 'data:' line?)"
            )
    return problems


def _json(event: ServerSentEvent) -> Any:
    try:
        return json.loads(event.data or "")
    except ValueError:
        return _NOT_JSON


_NOT_JSON = object()


def _text_problems(events: list[ServerSentEvent], *, terminal: bool) -> list[str]:
    problems = []
    end: int | None = None
    for number, event in enumerate(events, start=1):
        kind = event.event
        where = f"event {number} ({kind})"
        if kind not in _TEXT_EVENTS:
            problems.append(f"{where}: not an event type of the text format")
            continue
        if end is not None:
            problems.append(f"{where} comes after the terminal {events[end].event!r} event")
        if kind in ("tool_call", "done", "error"):
            value = _json(event)
            if not isinstance(value, dict):
                problems.append(f"{where}: data is not a JSON object: {event.data!r}")
                continue
            if kind == "tool_call" and not {"index", "id", "name", "arguments"} <= value.keys():
                problems.append(f"{where}: needs index, id, name and arguments: {event.data}")
            if kind == "done" and not {"finish_reason", "usage"} <= value.keys():
                problems.append(f"{where}: needs finish_reason and usage: {event.data}")
            if kind == "error":
                inner = value.get("error")
                if not isinstance(inner, dict) or not {"type", "message"} <= inner.keys():
                    problems.append(f"{where}: needs {{'error': {{type, message}}}}: {event.data}")
            if kind in ("done", "error") and end is None:
                end = number - 1
    if terminal and end is None:
        problems.append(
            "no terminal 'done' or 'error' event: the page cannot tell the answer is over, "
            "and EventSource reconnects (asking the model again)"
        )
    return problems


def _openai_problems(events: list[ServerSentEvent], *, terminal: bool) -> list[str]:
    problems = []
    end: int | None = None
    for number, event in enumerate(events, start=1):
        where = f"event {number}"
        if end is not None:
            problems.append(f"{where} comes after the end of the stream: {event.data!r}")
        if event.event != "message":
            problems.append(f"{where}: named {event.event!r}; OpenAI chat streams name no events")
        if event.data == "[DONE]":
            end = number - 1 if end is None else end
            continue
        value = _json(event)
        if not isinstance(value, dict):
            problems.append(f"{where}: data is not a JSON object: {event.data!r}")
        elif value.get("error"):
            end = number - 1 if end is None else end
        elif not isinstance(value.get("choices"), list):
            problems.append(f"{where}: a chunk needs a 'choices' list: {event.data!r}")
    if terminal and end is None:
        problems.append("no 'data: [DONE]' (or error object) at the end")
    return problems


def _is_responses_stream(events: list[ServerSentEvent]) -> bool:
    # A Responses stream names its events; its first one carries a "type" (a chunk has none).
    if not events or events[0].event == "message":
        return False
    first = _json(events[0])
    return isinstance(first, dict) and isinstance(first.get("type"), str)


_RESPONSES_ENDS = {"response.completed", "response.incomplete", "response.failed", "error"}


def _responses_problems(events: list[ServerSentEvent], *, terminal: bool) -> list[str]:
    problems = []
    end: int | None = None
    last_number = -1
    for number, event in enumerate(events, start=1):
        where = f"event {number} ({event.event})"
        if end is not None:
            problems.append(f"{where} comes after the terminal {events[end].event!r} event")
        value = _json(event)
        if not isinstance(value, dict):
            problems.append(f"{where}: data is not a JSON object: {event.data!r}")
            continue
        if value.get("type") != event.event:
            problems.append(f"{where}: the event name is not the data's type {value.get('type')!r}")
        sequence = value.get("sequence_number")
        if not isinstance(sequence, int) or sequence <= last_number:
            problems.append(f"{where}: sequence_number {sequence!r} does not follow {last_number}")
        else:
            last_number = sequence
        if event.event in _RESPONSES_ENDS and end is None:
            end = number - 1
    if terminal and end is None:
        problems.append(
            "no terminal response.completed, response.incomplete, response.failed or error event"
        )
    return problems
