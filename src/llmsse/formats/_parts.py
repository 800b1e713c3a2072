"""What the formats made of typed JSON events ("ai-sdk", "ag-ui") share.

Both send ``data: <JSON>`` events that open and close parts (messages) as reasoning,
text and tool calls come and go; they differ only in the events they write, which
subclasses supply as the ``_text``, ``_reasoning``, ``_refusal``, ``_tool_start``,
``_tool_args`` and ``_tool_end`` hooks.
"""

from __future__ import annotations

from json.encoder import encode_basestring
from typing import Any

from llmsse._chat import plain_text
from llmsse._json import dumps
from llmsse.formats.base import Format
from llmsse.result import ToolCall

__all__ = ["PartsFormat"]


class PartsFormat(Format):
    """A format of ``data: <JSON>`` events with parts opened and closed by kind."""

    def __init__(self, *, retry: int | None = None, ids: bool = False) -> None:
        super().__init__(retry=retry, ids=ids)
        self.state.stream_tools = True
        self._add_text = self.state.add_text
        self._next_id = 0
        # The open text part's delta event up to its JSON string, as the hot path writes
        # it (no ids), e.g. 'data: {"type":"text-delta","id":"text-1","delta":'; or None.
        self._fast_head: str | None = None

    # --- framing ------------------------------------------------------------------

    def _send(self, payload: bytes) -> bytes:
        if self.ids:
            self._next_id += 1
            return b"id: %d\ndata: %s\n\n" % (self._next_id, payload)
        return b"data: " + payload + b"\n\n"

    def _json(self, obj: dict[str, Any]) -> bytes:
        return self._send(dumps(obj))

    # --- the hooks subclasses write -------------------------------------------------

    def _text(self, text: str) -> bytes:
        raise NotImplementedError

    def _reasoning(self, text: str) -> bytes:
        raise NotImplementedError

    def _refusal(self, text: str) -> bytes:
        # As the AI SDK's own OpenAI provider does: the refusal is the answer.
        return self._text(text)

    def _tool_start(self, call: ToolCall) -> bytes:
        raise NotImplementedError

    def _tool_args(self, call: ToolCall, fragment: str) -> bytes:
        raise NotImplementedError

    def _tool_end(self, call: ToolCall) -> bytes:
        raise NotImplementedError

    # --- items ----------------------------------------------------------------------

    def chunk(self, chunk: Any) -> bytes:
        text = plain_text(chunk)
        if text is not None:
            self._add_text(text)
            head = self._fast_head
            if head is not None:
                try:
                    return (head + encode_basestring(text) + "}\n\n").encode()
                except UnicodeEncodeError:
                    pass  # a lone surrogate: _text() sends it as an ASCII escape
            return self._text(text)
        state = self.state
        text = state.absorb(chunk)
        if state.pending:
            return self._with_pending(text)
        if text:
            return self._text(text)
        return b""

    def _with_pending(self, text: str | None) -> bytes:
        out = b""
        pending = self.state.pending
        # Reasoning comes before the answer text of the same chunk, the rest after it.
        for kind, value in pending:
            if kind == "reasoning":
                out += self._reasoning(value)
        if text:
            out += self._text(text)
        for kind, value in pending:
            if kind == "tool_args":
                out += self._tool_args(*value)
            elif kind == "refusal":
                out += self._refusal(value)
            elif kind == "tool_start":
                out += self._tool_start(value)
            elif kind == "tool_call":
                out += self._tool_end(value)
        pending.clear()
        return out

    def render(self, text: str | None) -> bytes:
        if self.state.pending:
            return self._with_pending(text)
        if text:
            return self._text(text)
        return b""

    def _flush(self) -> bytes:
        """At the end: what the tool calls still being assembled have to send."""
        state = self.state
        state.flush_tool_calls()
        return self._with_pending(None) if state.pending else b""

    def text(self, piece: str) -> bytes:
        if not piece:
            return b""
        self._add_text(piece)
        return self._text(piece)
