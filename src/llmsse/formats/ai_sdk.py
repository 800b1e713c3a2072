"""The "ai-sdk" format: the Vercel AI SDK's UI message stream (protocol ``v1``).

What ``useChat`` (``DefaultChatTransport``) reads: ``data: <JSON chunk>`` per event,
``data: [DONE]`` at the end. See PROTOCOLS.md §4 and the mapping of §6.2; the chunk
schema is ``uiMessageChunkSchema`` in the npm package ``ai``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, ClassVar

from llmsse._json import dumps
from llmsse.formats._parts import PartsFormat
from llmsse.result import ToolCall

__all__ = ["AISDKFormat"]

# OpenAI's finish reasons as the AI SDK spells them; its schema rejects the others
# ("tool_calls" included), so anything unknown becomes "other".
_FINISH_REASONS = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool-calls",
    "function_call": "tool-calls",
    "content_filter": "content-filter",
}


def _refuse_constant(name: str) -> Any:
    # Python reads NaN and Infinity; JSON.parse in the browser does not.
    raise ValueError(f"{name} is not JSON")


def _forbidden(obj: Any) -> bool:
    """Whether ``obj`` holds a key the AI SDK's secure JSON parser refuses.

    It throws on any ``__proto__`` key and on a ``constructor`` object with a
    ``prototype`` key (``secureJsonParse`` in ``@ai-sdk/provider-utils``), and one
    such chunk fails the whole stream.
    """
    if isinstance(obj, dict):
        if "__proto__" in obj:
            return True
        constructor = obj.get("constructor")
        if isinstance(constructor, dict) and "prototype" in constructor:
            return True
        return any(_forbidden(value) for value in obj.values())
    if isinstance(obj, list):
        return any(_forbidden(value) for value in obj)
    return False


def _without_forbidden(obj: Any) -> Any:
    """``obj`` without the keys :func:`_forbidden` looks for (for metadata)."""
    if isinstance(obj, dict):
        return {
            key: _without_forbidden(value)
            for key, value in obj.items()
            if key != "__proto__"
            and not (key == "constructor" and isinstance(value, dict) and "prototype" in value)
        }
    if isinstance(obj, list):
        return [_without_forbidden(value) for value in obj]
    return obj


class AISDKFormat(PartsFormat):
    """The AI SDK UI message stream, for ``useChat`` and ``DefaultChatTransport``.

    ``start`` and ``start-step`` first; reasoning and answer text as
    ``reasoning-*`` and ``text-*`` parts (a part opens at its first non-empty delta
    and closes when another kind of content begins); a refusal is answer text; a
    tool call as ``tool-input-start``, a ``tool-input-delta`` per arguments
    fragment, and ``tool-input-available`` (or ``tool-input-error`` when its
    arguments are not JSON) once it is complete; then ``finish-step``, ``finish``
    (``finishReason`` in the AI SDK's spelling, the usage in
    ``messageMetadata.usage``) and ``data: [DONE]``. A failure ends the stream with
    an ``error`` chunk (the masked message) and ``data: [DONE]``.

    Args:
        retry: Reconnection time (ms) sent first as ``retry:``, or ``None``.
        ids: Give every event an increasing ``id:`` (the AI SDK ignores them).
        message_id: The assistant message's id, sent in the ``start`` chunk (to
            match the id under which the server saves the message); by default none
            is sent and the client makes one. Pass it with
            ``format=functools.partial(AISDKFormat, message_id=...)``.
    """

    name = "ai-sdk"
    headers: ClassVar[Mapping[str, str]] = {"x-vercel-ai-ui-message-stream": "v1"}

    def __init__(
        self, *, retry: int | None = None, ids: bool = False, message_id: str | None = None
    ) -> None:
        if message_id is not None and not isinstance(message_id, str):
            raise TypeError(f"message_id must be a str or None, got {type(message_id).__name__}")
        super().__init__(retry=retry, ids=ids)
        self.message_id = message_id
        self._parts = 0  # parts opened so far: their number makes their id unique
        # The delta chunk of the open text (reasoning) part up to its delta string,
        # b'{"type":"text-delta","id":"text-1","delta":', or None when none is open.
        self._text_head: bytes | None = None
        self._reasoning_head: bytes | None = None
        self._end = b""  # the JSON of the chunk that closes the open part
        self._ids: dict[int, str] = {}  # the toolCallId of each announced call, by index
        self._calls = 0  # tool calls announced so far
        self._refused = False
        self._pieces = False  # the source yielded str pieces

    # --- parts --------------------------------------------------------------------

    def _open(self, kind: str) -> tuple[bytes, bytes]:
        """Close the open part, open a ``kind`` part; its start bytes and delta head."""
        out = self._close()
        part_id = f"{kind}-{self._parts}"
        self._parts += 1
        self._end = b'{"type":"%s-end","id":"%s"}' % (kind.encode(), part_id.encode())
        out += self._send(b'{"type":"%s-start","id":"%s"}' % (kind.encode(), part_id.encode()))
        return out, b'{"type":"%s-delta","id":"%s","delta":' % (kind.encode(), part_id.encode())

    def _close(self) -> bytes:
        if self._text_head is None and self._reasoning_head is None:
            return b""
        self._text_head = self._reasoning_head = self._fast_head = None
        return self._send(self._end)

    def _text(self, text: str) -> bytes:
        head = self._text_head
        out = b""
        if head is None:
            out, head = self._open("text")
            self._text_head = head
            if not self.ids:
                self._fast_head = "data: " + head.decode()
        return out + self._send(head + dumps(text) + b"}")

    def _reasoning(self, text: str) -> bytes:
        head = self._reasoning_head
        out = b""
        if head is None:
            out, head = self._open("reasoning")
            self._reasoning_head = head
        return out + self._send(head + dumps(text) + b"}")

    # --- tool calls -------------------------------------------------------------------

    def _tool_start(self, call: ToolCall) -> bytes:
        # A call that never got an id (some OpenAI-compatible servers) gets one of
        # ours, unique in the stream: the client files the call's parts under it.
        call_id = call.id or f"call_{self._calls}"
        self._calls += 1
        self._ids[call.index] = call_id
        start = {"type": "tool-input-start", "toolCallId": call_id, "toolName": call.name or ""}
        return self._close() + self._json(start)

    def _tool_args(self, call: ToolCall, fragment: str) -> bytes:
        return self._json(
            {
                "type": "tool-input-delta",
                "toolCallId": self._ids[call.index],
                "inputTextDelta": fragment,
            }
        )

    def _tool_end(self, call: ToolCall) -> bytes:
        out = self._close()
        if call.index not in self._ids:  # never had an id and a name while it streamed
            out += self._tool_start(call)
        call_id = self._ids.pop(call.index)
        chunk: dict[str, Any] = {
            "type": "tool-input-available",
            "toolCallId": call_id,
            "toolName": call.name or "",
        }
        raw = call.arguments
        try:
            chunk["input"] = json.loads(raw or "{}", parse_constant=_refuse_constant)
        except ValueError as exc:
            chunk["type"] = "tool-input-error"
            chunk["input"] = raw
            chunk["errorText"] = f"The tool call's arguments are not valid JSON: {exc}"
        else:
            if _forbidden(chunk["input"]):
                chunk["type"] = "tool-input-error"
                chunk["input"] = raw
                chunk["errorText"] = (
                    "The tool call's arguments have a __proto__ or constructor.prototype key."
                )
        return out + self._json(chunk)

    # --- the Format interface -----------------------------------------------------

    def start(self) -> bytes:
        start: dict[str, Any] = {"type": "start"}
        if self.message_id is not None:
            start["messageId"] = self.message_id
        return super().start() + self._json(start) + self._send(b'{"type":"start-step"}')

    def _refusal(self, text: str) -> bytes:
        # As the AI SDK's own OpenAI provider does: the refusal is the answer, and the
        # finish reason "stop" becomes "content-filter".
        self._refused = True
        return self._text(text)

    def text(self, piece: str) -> bytes:
        self._pieces = True
        return super().text(piece)

    def finish(self) -> bytes:
        out = self._flush()
        out += self._close() + self._send(b'{"type":"finish-step"}')
        result = self.result
        finish: dict[str, Any] = {"type": "finish"}
        reason = result.finish_reason
        if reason is not None:
            mapped = _FINISH_REASONS.get(reason, "other")
            if mapped == "stop" and self._refused:
                mapped = "content-filter"
            finish["finishReason"] = mapped
        elif self._pieces:
            finish["finishReason"] = "stop"
        if result.usage is not None:
            finish["messageMetadata"] = {"usage": _without_forbidden(result.usage)}
        return out + self._json(finish) + self._send(b"[DONE]")

    def error(self, error: Mapping[str, Any]) -> bytes:
        message = error.get("message")
        text = message if isinstance(message, str) else str(message)
        return self._json({"type": "error", "errorText": text}) + self._send(b"[DONE]")
