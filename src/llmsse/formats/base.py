"""What a wire format is: a pure encoder, one instance per stream."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from llmsse._chat import ChatState
from llmsse._responses import ResponsesReader
from llmsse.event import ServerSentEvent
from llmsse.result import StreamResult

__all__ = ["Format"]


class Format:
    """Base class of the wire formats (sans-IO: items in, bytes out).

    The pipelines create one instance per stream and call :meth:`start` once, then
    :meth:`chunk`, :meth:`response_event`, :meth:`text` or :meth:`event` for each item
    the source yields (by the item's kind), then exactly one of :meth:`finish` (the
    source ended) or :meth:`error` (it failed). Each returns the bytes to send,
    possibly ``b""``. :attr:`result` is what ``on_complete`` receives.

    Subclass it to define your own format and pass the class as ``format=``. The
    least a subclass writes is :meth:`render`, :meth:`finish` and :meth:`error`: the
    default :meth:`chunk`, :meth:`response_event` and :meth:`text` record the item in
    :attr:`state` and hand what it added to :meth:`render`. See "Custom formats" in
    the documentation.
    """

    _reader: ResponsesReader | None = None

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

    def render(self, text: str | None) -> bytes:
        """Encode what the last item added: answer text and :attr:`state`'s ``pending``.

        ``text`` is the item's answer text (``None`` when it had none); reasoning,
        refusals and tool calls wait in ``self.state.pending`` as ``(kind, value)``
        pairs, in the order they came: ``("reasoning", str)``, ``("refusal", str)``,
        ``("tool_call", ToolCall)`` (complete) and, when ``state.stream_tools`` is set,
        ``("tool_start", ToolCall)`` and ``("tool_args", (ToolCall, str))``. The
        default :meth:`chunk`, :meth:`response_event` and :meth:`text` clear
        ``pending`` after this returns.
        """
        raise NotImplementedError(
            f"{type(self).__name__} does not implement render(), which chunk(), "
            "response_event() and text() call unless the format overrides them"
        )

    def chunk(self, chunk: Any) -> bytes:
        """Encode one chat-completion chunk (by default: record it and :meth:`render`)."""
        out = self.render(self.state.absorb(chunk))
        self.state.pending.clear()
        return out

    def response_event(self, event: Any) -> bytes:
        """Encode one Responses API stream event (by default: record it and :meth:`render`).

        Raises:
            UpstreamError: ``event`` reports a failure (``response.failed``, ``error``):
                the pipelines then end the stream with :meth:`error`.
        """
        out = self.render(self.read_response_event(event))
        self.state.pending.clear()
        return out

    def read_response_event(self, event: Any) -> str | None:
        """Record a Responses event in :attr:`state`; return its answer text (or ``None``).

        Raises:
            UpstreamError: ``event`` reports a failure (``response.failed``, ``error``).
        """
        reader = self._reader
        if reader is None:
            reader = self._reader = ResponsesReader(self.state, keep_text=self.accumulate)
        return reader.read(event)

    def text(self, piece: str) -> bytes:
        """Encode one piece of answer text (a source of ``str``; by default :meth:`render`)."""
        if not piece:
            return b""
        self.state.add_text(piece)
        out = self.render(piece)
        self.state.pending.clear()
        return out

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
