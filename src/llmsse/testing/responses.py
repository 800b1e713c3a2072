"""Build Responses API stream events the way the API streams them.

As for chat chunks, every builder exists twice: :func:`response_event_dicts` gives the
JSON objects of the wire, :func:`response_events` gives the openai SDK's own event
objects (what ``client.responses.create(..., stream=True)`` yields), and
:func:`responses_sse_body` turns the dicts into the exact bytes of a Responses
streaming response (``event: <type>`` + ``data: <json>``, no ``[DONE]``).

The shapes follow real captures (PROTOCOLS.md §3.1): ``response.created``,
``response.in_progress``, then per output item ``response.output_item.added``, its
parts and deltas, ``response.output_item.done``, and a terminal event.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from llmsse.testing.chunks import Pieces, ToolCallSpec, _as_tool_call, split_pieces

if TYPE_CHECKING:
    from openai.types.responses import ResponseStreamEvent

__all__ = [
    "ResponseEnd",
    "response_event_dicts",
    "response_events",
    "responses_sse_body",
    "to_response_event",
]

#: How the stream ends: ``response.completed``, ``response.incomplete``,
#: ``response.failed``, an ``error`` event (flat, as the schema says, or nested, as
#: the API has been seen to send it), or no terminal event at all (``None``).
ResponseEnd = Literal["completed", "incomplete", "failed", "error", "nested-error"] | None

_DEFAULT_USAGE = {
    "input_tokens": 10,
    "input_tokens_details": {"cached_tokens": 0},
    "output_tokens": 16,
    "output_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 26,
}


def response_event_dicts(
    content: Pieces | None = None,
    *,
    reasoning: Pieces | Sequence[Pieces] | None = None,
    refusal: Pieces | None = None,
    tool_calls: Iterable[ToolCallSpec | tuple[str, Any]] = (),
    end: ResponseEnd = "completed",
    incomplete_reason: str = "max_output_tokens",
    error_message: str = "The server had an error while processing your request.",
    usage: Mapping[str, Any] | bool = True,
    id: str = "resp_fake",
    model: str = "gpt-fake",
    created_at: int = 1_700_000_000,
) -> list[dict[str, Any]]:
    """The JSON objects of one streamed response, in order, ``sequence_number`` from 0.

    Args:
        content: The answer text: a ``str`` (cut into a delta per word) or the exact deltas.
        reasoning: A reasoning summary streamed as ``response.reasoning_summary_text.delta``
            events before the answer: a ``str`` (one summary part, a delta per word),
            a list of ``str`` (one part, the exact deltas) or a list of those (several
            summary parts).
        refusal: Refusal text, streamed as ``response.refusal.delta`` in the message.
        tool_calls: Function calls after the message, from :func:`~llmsse.testing.tool_call`
            or ``(name, arguments)`` tuples; item ids ``fc_<n>``, call ids ``call_<n>``
            unless the spec has one.
        end: The terminal event (see :data:`ResponseEnd`).
        incomplete_reason: ``incomplete_details.reason`` when ``end == "incomplete"``.
        error_message: The upstream message of a ``failed`` or ``error`` end.
        usage: The usage of the terminal response: ``True`` for a default one, a
            mapping, or ``False`` for none.
        id: The response id.
        model: The model name.
        created_at: The response's ``created_at``.
    """
    events: list[dict[str, Any]] = []
    output: list[dict[str, Any]] = []

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    def response(status: str, **fields: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": id,
            "object": "response",
            "created_at": created_at,
            "status": status,
            "error": None,
            "incomplete_details": None,
            "instructions": None,
            "model": model,
            "output": list(output) if status != "in_progress" else [],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "usage": None,
            "metadata": {},
        }
        body.update(fields)
        return body

    emit("response.created", response=response("in_progress"))
    emit("response.in_progress", response=response("in_progress"))

    if reasoning is not None:
        parts: list[Pieces]
        if isinstance(reasoning, str) or all(isinstance(p, str) for p in reasoning):
            parts = [cast("Pieces", reasoning)]  # one part: a text, or its deltas
        else:
            parts = list(reasoning)
        item_id = "rs_0"
        index = len(output)
        emit(
            "response.output_item.added",
            output_index=index,
            item={"id": item_id, "type": "reasoning", "summary": []},
        )
        summary = []
        for summary_index, part in enumerate(parts):
            deltas = split_pieces(part)
            text = "".join(deltas)
            common = {"item_id": item_id, "output_index": index, "summary_index": summary_index}
            emit(
                "response.reasoning_summary_part.added",
                **common,
                part={"type": "summary_text", "text": ""},
            )
            for delta in deltas:
                emit("response.reasoning_summary_text.delta", **common, delta=delta)
            emit("response.reasoning_summary_text.done", **common, text=text)
            emit(
                "response.reasoning_summary_part.done",
                **common,
                part={"type": "summary_text", "text": text},
            )
            summary.append({"type": "summary_text", "text": text})
        item = {"id": item_id, "type": "reasoning", "summary": summary}
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)

    if content is not None or refusal is not None:
        item_id = "msg_0"
        index = len(output)
        emit(
            "response.output_item.added",
            output_index=index,
            item={
                "id": item_id,
                "type": "message",
                "status": "in_progress",
                "content": [],
                "role": "assistant",
            },
        )
        parts_out: list[dict[str, Any]] = []
        if content is not None:
            deltas = split_pieces(content)
            text = "".join(deltas)
            common = {"item_id": item_id, "output_index": index, "content_index": len(parts_out)}
            emit(
                "response.content_part.added",
                **common,
                part={"type": "output_text", "annotations": [], "text": ""},
            )
            for delta in deltas:
                emit("response.output_text.delta", **common, delta=delta, logprobs=[])
            emit("response.output_text.done", **common, text=text, logprobs=[])
            text_part = {"type": "output_text", "annotations": [], "text": text}
            emit("response.content_part.done", **common, part=text_part)
            parts_out.append(text_part)
        if refusal is not None:
            deltas = split_pieces(refusal)
            text = "".join(deltas)
            common = {"item_id": item_id, "output_index": index, "content_index": len(parts_out)}
            emit("response.content_part.added", **common, part={"type": "refusal", "refusal": ""})
            for delta in deltas:
                emit("response.refusal.delta", **common, delta=delta)
            emit("response.refusal.done", **common, refusal=text)
            refusal_part = {"type": "refusal", "refusal": text}
            emit("response.content_part.done", **common, part=refusal_part)
            parts_out.append(refusal_part)
        item = {
            "id": item_id,
            "type": "message",
            "status": "completed",
            "content": parts_out,
            "role": "assistant",
        }
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)

    for n, spec in enumerate(_as_tool_call(value) for value in tool_calls):
        item_id = f"fc_{n}"
        index = len(output)
        call_id = spec.id or f"call_{n}"
        emit(
            "response.output_item.added",
            output_index=index,
            item={
                "id": item_id,
                "type": "function_call",
                "status": "in_progress",
                "arguments": "",
                "call_id": call_id,
                "name": spec.name,
            },
        )
        for fragment in spec.fragments():
            emit(
                "response.function_call_arguments.delta",
                item_id=item_id,
                output_index=index,
                delta=fragment,
            )
        emit(
            "response.function_call_arguments.done",
            item_id=item_id,
            output_index=index,
            arguments=spec.arguments,
        )
        item = {
            "id": item_id,
            "type": "function_call",
            "status": "completed",
            "arguments": spec.arguments,
            "call_id": call_id,
            "name": spec.name,
        }
        output.append(item)
        emit("response.output_item.done", output_index=index, item=item)

    usage_body = (dict(_DEFAULT_USAGE) if usage is True else dict(usage)) if usage else None
    if end == "completed":
        emit("response.completed", response=response("completed", usage=usage_body))
    elif end == "incomplete":
        emit(
            "response.incomplete",
            response=response(
                "incomplete", usage=usage_body, incomplete_details={"reason": incomplete_reason}
            ),
        )
    elif end == "failed":
        emit(
            "response.failed",
            response=response(
                "failed", usage=usage_body, error={"code": "server_error", "message": error_message}
            ),
        )
    elif end == "error":
        emit("error", code="server_error", message=error_message, param=None)
    elif end == "nested-error":
        emit(
            "error",
            error={
                "type": "server_error",
                "code": "server_error",
                "message": error_message,
                "param": None,
            },
        )
    elif end is not None:
        raise ValueError(f"unknown end {end!r}: expected one of {ResponseEnd}")
    return events


def to_response_event(data: Mapping[str, Any]) -> ResponseStreamEvent:
    """Make the openai SDK's event object from its JSON object, as the SDK does.

    The SDK builds events without validation (an unknown ``type`` becomes the first
    class of the union, with its real ``type`` kept); so does this.
    """
    from openai._models import construct_type
    from openai.types.responses import ResponseStreamEvent

    event = construct_type(type_=ResponseStreamEvent, value=dict(data))
    return cast("ResponseStreamEvent", event)


def response_events(content: Pieces | None = None, **options: Any) -> list[ResponseStreamEvent]:
    """The openai SDK's event objects of one streamed response.

    Same arguments as :func:`response_event_dicts`.
    """
    return [to_response_event(d) for d in response_event_dicts(content, **options)]


def responses_sse_body(items: Iterable[Mapping[str, Any] | Any]) -> bytes:
    """The bytes of a Responses streaming response: ``event: <type>`` and ``data: <json>``.

    Accepts event dicts or the SDK's event objects (dumped with the fields they set).
    There is no ``[DONE]``: the API ends the body after the terminal event.
    """
    out = []
    for item in items:
        data = dict(item) if isinstance(item, Mapping) else item.to_dict()
        payload = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
        out.append(f"event: {data['type']}\ndata: {payload}\n\n".encode())
    return b"".join(out)
