"""An incremental, spec-exact event-stream decoder.

Implements https://html.spec.whatwg.org/multipage/server-sent-events.html#event-stream-interpretation
(the steps a browser's EventSource follows), fed with bytes split anywhere.
"""

from __future__ import annotations

import codecs
import re

from llmsse.event import ServerSentEvent

__all__ = ["SSEDecoder", "parse"]

_line_end = re.compile(r"\r\n|\r|\n")


class SSEDecoder:
    """Turn event-stream bytes into :class:`ServerSentEvent` objects, chunk by chunk.

    Chunks may be split anywhere, even inside a UTF-8 character or between the CR
    and LF of a CRLF. One leading byte-order mark is skipped, invalid UTF-8 becomes
    U+FFFD, and an event not ended by a blank line is never dispatched (as in a browser).

    Dispatched events carry ``event="message"`` when the stream named no type, ``id``
    set to the last event id seen so far (it persists across events, as in a browser),
    and ``retry`` when their block set a valid reconnection time.

    Attributes:
        last_event_id: The id a client would send back as ``Last-Event-ID``.
        retry: The last valid reconnection time in milliseconds, or ``None``.
    """

    def __init__(self) -> None:
        self.last_event_id = ""
        self.retry: int | None = None
        self._reset()

    def _reset(self) -> None:
        # Per-stream state only: last_event_id and retry outlive the stream, as the
        # EventSource's last event ID string and reconnection time do: a client needs
        # them to reconnect, after the stream ended.
        # utf-8-sig strips exactly one leading BOM, even when it arrives split.
        self._text = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
        self._line = ""
        self._skip_lf = False
        self._data: list[str] = []
        self._event = ""
        self._block_retry: int | None = None
        self._id_buffer = ""

    def feed(self, chunk: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
        """Decode the next piece of the stream and return the events it completed."""
        if isinstance(chunk, str):
            raise TypeError("SSEDecoder.feed() expects bytes, got str: encode it as UTF-8 first")
        return self._feed_text(self._text.decode(chunk))

    def close(self) -> list[ServerSentEvent]:
        """End the stream. The incomplete last event, if any, is dropped (per the spec).

        Returns the events completed by the end of the stream: always none, since
        only a blank line dispatches an event. ``last_event_id`` and ``retry`` keep
        their values (what a client reconnects with); the decoder can then be reused
        for the next stream.
        """
        events = self._feed_text(self._text.decode(b"", final=True))
        self._reset()
        return events

    def _feed_text(self, text: str) -> list[ServerSentEvent]:
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
        pieces = _line_end.split(self._line + text)
        self._line = pieces.pop()
        # A CR at the very end may be the first half of a CRLF split across chunks:
        # the line is complete, but an LF that starts the next chunk belongs to it.
        if not self._line and text.endswith("\r"):
            self._skip_lf = True
        events: list[ServerSentEvent] = []
        for line in pieces:
            if line:
                self._process_field(line)
                continue
            # Dispatch step 1: the id becomes the last event id only when its block
            # ends, even if the block dispatches nothing. An id in a block cut off by
            # the end of the stream names an event the client never received.
            self.last_event_id = self._id_buffer
            if self._data:
                events.append(self._dispatch())
            else:
                self._event = ""
                self._block_retry = None
        return events

    def _process_field(self, line: str) -> None:
        if line[0] == ":":
            return
        field, colon, value = line.partition(":")
        if colon and value[:1] == " ":
            value = value[1:]
        if field == "data":
            self._data.append(value)
        elif field == "event":
            self._event = value
        elif field == "id":
            if "\0" not in value:
                self._id_buffer = value
        # Only ASCII digits: int() would also take "+5", " 5", "1_0" and other scripts' digits.
        elif field == "retry" and value and value.isascii() and value.isdigit():
            self.retry = self._block_retry = int(value)

    def _dispatch(self) -> ServerSentEvent:
        event = ServerSentEvent(
            data="\n".join(self._data),
            event=self._event or "message",
            id=self.last_event_id,
            retry=self._block_retry,
        )
        self._data = []
        self._event = ""
        self._block_retry = None
        return event


def parse(data: bytes | bytearray | memoryview) -> list[ServerSentEvent]:
    """Decode a complete event stream and return its events (see :class:`SSEDecoder`)."""
    decoder = SSEDecoder()
    return decoder.feed(data) + decoder.close()
