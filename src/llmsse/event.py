"""The server-sent event and its encoding to the WHATWG event-stream grammar.

See https://html.spec.whatwg.org/multipage/server-sent-events.html#parsing-an-event-stream
"""

from __future__ import annotations

from dataclasses import KW_ONLY, dataclass

__all__ = ["ServerSentEvent", "encode_comment", "encode_data"]


def _field_lines(prefix: bytes, value: str) -> bytes:
    """``prefix`` + one line of ``value`` + LF, for every line of ``value``.

    SSE has exactly three line terminators: CRLF, CR and LF. (``str.splitlines()``
    would be wrong: it also splits on \\v, \\f, \\x1c-\\x1e, \\x85, \\u2028 and
    \\u2029, which SSE treats as data.) Normalising them to LF and prefixing each LF
    costs two ``str.replace`` calls, far less than splitting with a regex.
    """
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if "\n" in value:
        head = prefix.decode()
        value = value.replace("\n", "\n" + head)
    return prefix + value.encode() + b"\n"


def encode_data(data: str) -> bytes:
    """Encode ``data`` as one complete unnamed event (``data:`` lines and the blank line).

    Line breaks of any kind (CRLF, CR, LF) become separate ``data:`` lines, so a client
    reads the text back with every line break as LF.
    """
    if not isinstance(data, str):  # an f-string would format anything
        _require_str("encode_data", data)
    try:
        if "\r" in data:
            data = data.replace("\r\n", "\n").replace("\r", "\n")
        if "\n" in data:
            data = data.replace("\n", "\ndata: ")
        return f"data: {data}\n\n".encode()
    except (TypeError, AttributeError):
        # Checked only on failure, so the hot path pays nothing for the clear message.
        _require_str("encode_data", data)
        raise


def _require_str(function: str, value: object) -> None:
    if not isinstance(value, str):
        raise TypeError(f"{function}() expects a str, got {type(value).__name__}") from None


def encode_comment(comment: str) -> bytes:
    """Encode a comment block (ignored by clients; used for heartbeats)."""
    try:
        return _field_lines(b": ", comment) + b"\n"
    except (TypeError, AttributeError):
        _require_str("encode_comment", comment)
        raise


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One server-sent event.

    ``None`` means "omit this field". Invalid values raise ``ValueError`` (or
    ``TypeError`` for a value of the wrong type) when the event is created, so a
    stream can never be broken by a bad event half-way through.

    Args:
        data: The payload. Any line break in it becomes a separate ``data:`` line.
        event: The event type (``es.addEventListener(event, ...)``); no line breaks.
        id: The event id a client sends back as ``Last-Event-ID``; no line breaks, no NUL.
        retry: The client's reconnection time in milliseconds, a non-negative ``int``.
        comment: A comment, ignored by clients (useful as a keep-alive).
    """

    data: str | None = None
    _: KW_ONLY  # the public signature: ServerSentEvent(data=None, *, event=None, ...)
    event: str | None = None
    id: str | None = None
    retry: int | None = None
    comment: str | None = None

    def __post_init__(self) -> None:
        for name in ("data", "event", "id", "comment"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise TypeError(
                    f"ServerSentEvent {name} must be a str or None, got {type(value).__name__}"
                )
        if self.event is not None and ("\n" in self.event or "\r" in self.event):
            raise ValueError(f"ServerSentEvent event must not contain a line break: {self.event!r}")
        if self.id is not None and ("\n" in self.id or "\r" in self.id or "\0" in self.id):
            raise ValueError(
                f"ServerSentEvent id must not contain a line break or NUL: {self.id!r}"
            )
        if self.retry is not None and (
            type(self.retry) is not int or self.retry < 0  # bool is an int subclass: reject it
        ):
            raise ValueError(
                f"ServerSentEvent retry must be a non-negative int (milliseconds), "
                f"got {self.retry!r}"
            )
        if (
            self.data is None
            and self.event is None
            and self.id is None
            and self.retry is None
            and self.comment is None
        ):
            raise ValueError(
                "ServerSentEvent needs at least one of data, event, id, retry, comment"
            )

    def encode(self) -> bytes:
        """Return the event as UTF-8 bytes with LF line ends, ending with a blank line.

        Fields come in the order comment, event, id, retry, data. A lone surrogate in
        any field raises ``UnicodeEncodeError``.
        """
        out = b""
        if self.comment is not None:
            out += _field_lines(b": ", self.comment)
        if self.event is not None:
            out += b"event: " + self.event.encode() + b"\n"
        if self.id is not None:
            out += b"id: " + self.id.encode() + b"\n"
        if self.retry is not None:
            out += b"retry: %d\n" % self.retry
        if self.data is not None:
            out += _field_lines(b"data: ", self.data)
        return out + b"\n"
