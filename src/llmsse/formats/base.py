"""What a wire format is: a pure encoder, one instance per stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmsse._chat import ChatState
from llmsse.event import ServerSentEvent
from llmsse.result import StreamResult

__all__ = ["Format"]


class Format:
    """Base class of the wire formats (sans-IO: items in, bytes out).

    The pipelines create one instance per stream and call :meth:`start` once, then
    :meth:`chunk`, :meth:`text` or :meth:`event` for each item the source yields
    (by the item's kind), then exactly one of :meth:`finish` (the source ended) or
    :meth:`error` (it raised). Each returns the bytes to send, possibly ``b""``.
    :attr:`result` is what ``on_complete`` receives.

    Subclass it to define your own format and pass the class as ``format=``.
    """

    #: The name the format is registered under (``format="..."``).
    name: ClassVar[str] = ""
    #: Extra response headers the adapters set for this format.
    headers: ClassVar[Mapping[str, str]] = {}
    #: What the pipelines send after ``heartbeat`` seconds of silence.
    ping: bytes = b": ping\n\n"
    #: Whether :attr:`result` must be accumulated. The pipelines set it to ``False``
    #: when nobody asked for ``on_complete``; a format may then skip work that only
    #: feeds the result (the "openai" format does).
    accumulate: bool = True

    def __init__(self, *, retry: int | None = None, ids: bool = False) -> None:
        self.retry = retry
        self.ids = ids
        self.result = StreamResult()
        self.state = ChatState(self.result)

    def start(self) -> bytes:
        """Bytes sent before the first item: the ``retry:`` field when one was asked for."""
        if self.retry is None:
            return b""
        return b"retry: %d\n\n" % self.retry

    def chunk(self, chunk: Any) -> bytes:
        """Encode one chat-completion chunk."""
        raise NotImplementedError

    def text(self, piece: str) -> bytes:
        """Encode one piece of answer text (a source of ``str``)."""
        raise NotImplementedError

    def event(self, event: ServerSentEvent) -> bytes:
        """Encode a ready-made event: by default it is sent as it is."""
        return event.encode()

    def finish(self) -> bytes:
        """The terminal bytes after the source ended normally."""
        raise NotImplementedError

    def error(self, error: Mapping[str, Any]) -> bytes:
        """The terminal bytes after the source failed; ``error`` has ``type`` and ``message``."""
        raise NotImplementedError

    def close(self) -> StreamResult:
        """Settle and return the result (called once, whatever happened)."""
        self.state.settle()
        return self.result
