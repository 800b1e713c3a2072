"""The "text" format: plain SSE for ``EventSource`` and ``fetch`` readers."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from llmsse._chat import plain_text, text_event
from llmsse._json import dumps
from llmsse._responses import output_text, output_text_event
from llmsse.event import _field_lines, encode_data
from llmsse.formats.base import Format
from llmsse.result import ToolCall

__all__ = ["TextFormat"]


class TextFormat(Format):
    """Text deltas of choice 0 as unnamed events (``es.onmessage``), plus named events.

    ``event: reasoning``, ``event: refusal`` and ``event: tool_call`` (once per call,
    when it is complete) carry the rest; the stream always ends with ``event: done``
    (``{"finish_reason", "usage"}``) or ``event: error`` (``{"error": {"type", "message"}}``).
    A CR that ends a delta is sent with the next delta of its kind (it may be the first
    half of a CRLF), or on its own before the terminal event.
    """

    name = "text"

    def __init__(self, *, retry: int | None = None, ids: bool = False) -> None:
        super().__init__(retry=retry, ids=ids)
        self._next_id = 0
        self._absorb = self.state.absorb
        self._pending = self.state.pending
        self._text_append = self.state.add_text
        # What ended the last delta of a kind of text (None: the answer), held back for
        # the start of the next delta of that kind: a CR (the first half of a CRLF, maybe)
        # or the high half of a surrogate pair (waiting for its low half).
        self._held: dict[str | None, str] = {}

    def _event(self, kind: str | None, data: str) -> bytes:
        held = self._held
        if held and kind in held:
            carried = held.pop(kind)
            if carried == "\r" or (data and "\udc00" <= data[0] <= "\udfff"):
                data = carried + data
            # else: a high half whose low half did not come, a lone surrogate: dropped
        if data.endswith("\r"):
            # Sent now, a CR would be a line break of its own even when the next delta
            # starts with the LF of the same CRLF.
            held[kind] = "\r"
            data = data[:-1]
            if not data:
                return b""
        try:
            body = _field_lines(b"data: ", data)
        except UnicodeEncodeError:
            data = self._encodable(kind, data)
            if not data:
                return b""
            body = _field_lines(b"data: ", data)
        head = b"" if kind is None else b"event: " + kind.encode() + b"\n"
        if self.ids:
            head += self._id_line()
        return head + body + b"\n"

    def _id_line(self) -> bytes:
        """The ``id:`` line of the next event (with ``ids=True``)."""
        self._next_id += 1
        return b"id: %d\n" % self._next_id

    def _encodable(self, kind: str | None, data: str) -> str:
        """``data`` as text UTF-8 can carry. A provider may split a surrogate pair
        between two deltas (as JSON escapes): the high half at the end is held back and
        joined with the low half that starts the next delta; any other lone surrogate
        becomes U+FFFD, as a UTF-8 decoder shows broken input."""
        if "\ud800" <= data[-1] <= "\udbff" and kind not in self._held:
            self._held[kind] = data[-1]
            data = data[:-1]
        return data.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")

    def _text_event(self, text: str) -> bytes:
        """The answer's text as an unnamed event (the slow path's encoding)."""
        if self.ids or self._held or text.endswith("\r"):
            return self._event(None, text)
        try:
            return encode_data(text)
        except UnicodeEncodeError:
            return self._event(None, text)

    def chunk(self, chunk: Any) -> bytes:
        if self._held:  # with anything held, every chunk takes _chunk()
            return self._chunk(chunk)
        if text_event is not None:
            # The C speedups (plain_text is theirs too) decline what the code below would:
            # not plain text, a CR at the end, a lone surrogate. Not read twice.
            event = text_event(chunk, self._text_append if self.accumulate else None)
            if event is None:
                return self._chunk(chunk)
            return self._id_line() + event if self.ids else event
        text = plain_text(chunk)
        if text is not None:
            # _plain(text), inlined: a call costs a chunk about 6% more. Keep in step.
            out: bytes | None
            try:
                if text.isprintable() or not ("\n" in text or "\r" in text):
                    out = f"data: {text}\n\n".encode()
                elif text[-1] != "\r":
                    out = encode_data(text)
                else:
                    out = None
            except UnicodeEncodeError:
                out = None
            if out is not None:
                if self.accumulate:
                    self._text_append(text)
                if self.ids:
                    return self._id_line() + out
                return out
        return self._chunk(chunk)

    def response_event(self, event: Any) -> bytes:
        # The answer's text deltas, nearly every event, as chunk() writes plain text.
        if self._held:
            return super().response_event(event)
        if output_text_event is not None:  # the C speedups: as in chunk()
            out = output_text_event(event, self._text_append if self.accumulate else None)
            if out is None:
                return super().response_event(event)
            return self._id_line() + out if self.ids else out
        text = output_text(event)
        if text is not None:
            out = self._plain(text)
            if out is not None:
                return out
        return super().response_event(event)

    def _plain(self, text: str) -> bytes | None:
        """The event of an answer text delta when nothing is held, or ``None`` when the
        slow path must write it (a CR that may be half of a CRLF, half a surrogate pair)."""
        try:
            # isprintable(): no CR or LF (the common case, checked in one pass).
            if text.isprintable() or not ("\n" in text or "\r" in text):
                out = f"data: {text}\n\n".encode()
            elif text[-1] != "\r":
                out = encode_data(text)
            else:
                return None
        except UnicodeEncodeError:
            return None
        # The text is kept only for on_complete (finish() does not need it).
        if self.accumulate:
            self._text_append(text)
        if self.ids:  # the id line goes first, as _event() writes it
            return self._id_line() + out
        return out

    def _chunk(self, chunk: Any) -> bytes:
        text = self._absorb(chunk)
        if self._pending:
            return self._with_pending(text)
        if text is None:
            return b""
        return self._text_event(text)

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
        return self._text_event(text)

    def text(self, piece: str) -> bytes:
        if not piece:
            return b""
        out = self._event(None, piece)
        self.state.add_text(piece)
        return out

    def _release(self) -> bytes:
        """The CRs still held back at the end, each sent as the line break it is."""
        held = self._held
        out = b""
        for kind in [kind for kind, carried in held.items() if carried == "\r"]:
            del held[kind]
            out += self._event(kind, "\n")
        return out

    def finish(self) -> bytes:
        out = self._release() if self._held else b""
        self.state.flush_tool_calls()
        if self.state.pending:
            out += self._with_pending(None)
        result = self.result
        payload = {"finish_reason": result.finish_reason, "usage": result.usage}
        return out + self._event("done", dumps(payload).decode())

    def error(self, error: Mapping[str, Any]) -> bytes:
        out = self._release() if self._held else b""
        return out + self._event("error", dumps({"error": dict(error)}).decode())
