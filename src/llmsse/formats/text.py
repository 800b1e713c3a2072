"""The "text" format: plain SSE for ``EventSource`` and ``fetch`` readers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmsse._json import dumps
from llmsse.event import _field_lines, encode_data
from llmsse.formats.base import Format
from llmsse.result import ToolCall

__all__ = ["TextFormat"]


class TextFormat(Format):
    """Text deltas of choice 0 as unnamed events (``es.onmessage``), plus named events.

    ``event: reasoning``, ``event: refusal`` and ``event: tool_call`` (once per call,
    when it is complete) carry the rest; the stream always ends with ``event: done``
    (``{"finish_reason", "usage"}``) or ``event: error`` (``{"error": {"type", "message"}}``).
    """

    name = "text"

    def __init__(self, *, retry: int | None = None, ids: bool = False) -> None:
        super().__init__(retry=retry, ids=ids)
        self._next_id = 0
        self._absorb = self.state.absorb
        self._pending = self.state.pending
        self._text_append = self.state.add_text

    def _event(self, kind: str | None, data: str) -> bytes:
        head = b"" if kind is None else b"event: " + kind.encode() + b"\n"
        if self.ids:
            self._next_id += 1
            head += b"id: %d\n" % self._next_id
        return head + _field_lines(b"data: ", data) + b"\n"

    def chunk(self, chunk: Any) -> bytes:
        # _chat.plain_text() inlined: this is the per-chunk hot path of the default
        # format, and a call is a tenth of its budget. Keep the two in step.
        # type() rather than .__class__: on a pydantic model, every attribute read
        # (__class__ too) goes through BaseModel.__getattr__'s slow hook.
        try:
            fields = chunk.__dict__
            choices = fields["choices"]
            if fields["usage"] is None and len(choices) == 1:
                fields = choices[0].__dict__
                if not fields["index"] and fields["finish_reason"] is None:
                    delta = fields["delta"]
                    fields = delta.__dict__
                    text = fields["content"]
                    if (
                        text
                        and type(text) is str
                        and not (
                            fields["refusal"] or fields["tool_calls"] or delta.__pydantic_extra__
                        )
                        and not self.ids
                    ):
                        # The text is kept only for on_complete (finish() does not need it).
                        if self.accumulate:
                            self._text_append(text)
                        if "\n" in text or "\r" in text:
                            return encode_data(text)
                        return f"data: {text}\n\n".encode()
        except (AttributeError, KeyError, TypeError):
            pass
        return self._chunk(chunk)

    def _chunk(self, chunk: Any) -> bytes:
        text = self._absorb(chunk)
        if self._pending:
            return self._with_pending(text)
        if text is None:
            return b""
        if self.ids:
            return self._event(None, text)
        return encode_data(text)

    def _with_pending(self, text: str | None) -> bytes:
        out = b""
        pending = self.state.pending
        # Reasoning comes before the answer text of the same chunk, the rest after it.
        for kind, value in pending:
            if kind == "reasoning":
                out += self._event("reasoning", value)
        if text:
            out += self._event(None, text)
        for kind, value in pending:
            if kind == "refusal":
                out += self._event("refusal", value)
            elif kind == "tool_call":
                assert isinstance(value, ToolCall)
                out += self._event("tool_call", dumps(value.to_dict()).decode())
        pending.clear()
        return out

    def render(self, text: str | None) -> bytes:
        if self._pending:
            return self._with_pending(text)
        if not text:
            return b""
        if self.ids:
            return self._event(None, text)
        return encode_data(text)

    def text(self, piece: str) -> bytes:
        if not piece:
            return b""
        out = self._event(None, piece)
        self.state.add_text(piece)
        return out

    def finish(self) -> bytes:
        self.state.flush_tool_calls()
        out = self._with_pending(None) if self.state.pending else b""
        result = self.result
        payload = {"finish_reason": result.finish_reason, "usage": result.usage}
        return out + self._event("done", dumps(payload).decode())

    def error(self, error: Mapping[str, Any]) -> bytes:
        return self._event("error", dumps({"error": dict(error)}).decode())
