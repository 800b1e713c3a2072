"""What a source is, and closing it exactly once from whichever thread gets there."""

from __future__ import annotations

import contextlib
import contextvars
import inspect
import socket
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any

from llmsse._helpers import helper_source, is_async_helper
from llmsse._responses import is_response_event
from llmsse.event import ServerSentEvent
from llmsse.formats.base import Format

__all__ = [
    "END",
    "SyncSource",
    "aclose_source",
    "check_source",
    "feeder",
    "is_async_source",
    "refeed",
]

END: Any = object()

_ITEMS = "ChatCompletionChunk objects, Responses API events, str pieces or ServerSentEvent"
_EXPECTED = (
    "an openai Stream/AsyncStream, a chat.completions.stream() or responses.stream() "
    f"manager, or an iterable or async iterable of {_ITEMS}"
)


def is_async_source(source: object) -> bool:
    """True when ``source`` is async: an async iterable (an ``AsyncStream``, an async
    generator) or an async stream manager of the openai SDK (``AsyncOpenAI().responses
    .stream(...)``)."""
    return hasattr(source, "__aiter__") or is_async_helper(source)


def check_source(source: object) -> Any:
    """Return what the pipelines read for ``source``; ``TypeError`` unless it can be one.

    An openai stream helper (``client.chat.completions.stream(...)``,
    ``client.responses.stream(...)``, entered or not) comes back wrapped in a source
    that enters it at the first read and exits it once when closed; anything else
    comes back as it is.
    """
    helper = helper_source(source)
    if helper is not None:
        return helper
    if isinstance(source, (str, bytes, bytearray, memoryview, Mapping)) or not (
        hasattr(source, "__iter__") or hasattr(source, "__aiter__")
    ):
        hint = ""
        if isinstance(source, str):
            hint = " (to send one text, pass [text])"
        elif inspect.iscoroutine(source):
            hint = " (a coroutine: did you forget to await client.chat.completions.create(...)?)"
        raise TypeError(f"source must be {_EXPECTED}; got {type(source).__name__}{hint}")
    return source


def feeder(fmt: Format, item: object) -> Callable[[Any], bytes]:
    """The format method for items of ``item``'s kind, decided at the first item.

    The pipelines call it again only when the current one raises, so a source that
    mixes kinds still works while the common case pays nothing per item. The text and
    event feeders check their item, since a mismatched item would not always fail.
    """
    if isinstance(item, str):
        text = fmt.text

        def feed_text(piece: Any) -> bytes:
            if piece.__class__ is str:
                return text(piece)
            raise TypeError("not a str")

        return feed_text
    if isinstance(item, ServerSentEvent):
        event = fmt.event

        def feed_event(ev: Any) -> bytes:
            if isinstance(ev, ServerSentEvent):
                return event(ev)
            raise TypeError("not a ServerSentEvent")

        return feed_event
    if hasattr(item, "choices"):
        return fmt.chunk
    if is_response_event(item):
        return fmt.response_event
    hint = ""
    if isinstance(getattr(item, "type", None), str):
        hint = " (an event of chat.completions.stream()? pass the stream manager itself)"
    raise TypeError(
        f"the source yielded a {type(item).__name__}: a source must yield {_ITEMS}{hint}"
    )


def refeed(
    fmt: Format, feed: Callable[[Any], bytes] | None, item: object, exc: Exception
) -> tuple[Callable[[Any], bytes], bytes]:
    """After ``feed`` raised ``exc`` on ``item``: feed it to the feeder for its kind.

    The pipelines start with no feeder (``None`` raises at the first item) and call
    this only when feeding fails, so choosing costs nothing per item. ``exc`` is
    re-raised when the item was of the feeder's own kind: then it was a real error.
    """
    new = feeder(fmt, item)
    if new == feed:
        raise exc
    return new, new(item)


def _closer(source: object) -> Callable[[], Any] | None:
    close = getattr(source, "close", None)
    return close if callable(close) else None


def _shutdown_socket(source: object) -> None:
    """Shut down the socket under an openai ``Stream``'s HTTP/1 response.

    Closing a socket's file descriptor does not wake a ``recv()`` blocked on it in
    another thread (nor send a FIN) on Linux, so ``Stream.close()`` alone leaves the
    model request running until its next bytes arrive. ``shutdown()`` wakes the reader
    and ends the request at once. HTTP/2 multiplexes streams on one socket: left alone.
    """
    response = getattr(source, "response", None)
    if (
        response is None
        or getattr(response, "is_closed", True)  # read to the end: the socket is reusable
        or getattr(response, "http_version", "") not in ("HTTP/1.1", "HTTP/1.0")
    ):
        return
    extensions = getattr(response, "extensions", None)
    stream = extensions.get("network_stream") if isinstance(extensions, Mapping) else None
    get_extra_info = getattr(stream, "get_extra_info", None)
    sock = get_extra_info("socket") if get_extra_info is not None else None
    if isinstance(sock, socket.socket):
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


class SyncSource:
    """A sync source read by one thread and closed exactly once by any thread.

    A generator cannot be closed while another thread is inside its ``next()``; an
    openai ``Stream`` can (closing its response is what unblocks that ``next()``).
    So a close request closes an interruptible source at once, and a generator as
    soon as no thread is inside it, without ever blocking the caller.
    """

    def __init__(self, source: object) -> None:
        self.source = source
        self.it = iter(source)  # type: ignore[call-overload]
        self._busy = threading.Lock()  # held while a thread is inside next()
        self._state = threading.Lock()
        self._close_requested = False
        self._closed = False
        # A source that is its own generator can only be closed between items.
        self._interruptible = not inspect.isgenerator(source) and _closer(source) is not None

    def next(self) -> Any:
        """The next item, or ``END`` when the source is exhausted or closed."""
        with self._busy:
            if self._close_requested:
                self._finalize()
                return END
            item = next(self.it, END)
        if self._close_requested:
            self._try_finalize()
            return END
        return item

    def close(self) -> None:
        """Ask for the source to be closed; returns without waiting for a running ``next()``."""
        with self._state:
            if self._close_requested:
                return
            self._close_requested = True
        if self._interruptible:
            _shutdown_socket(self.source)
            self._close_source()
        self._try_finalize()

    def _try_finalize(self) -> None:
        if self._busy.acquire(blocking=False):
            try:
                self._finalize()
            finally:
                self._busy.release()
        # else: the thread inside next() finalizes when it comes out.

    def _finalize(self) -> None:
        if self.it is not self.source and inspect.isgenerator(self.it):
            self.it.close()
        self._close_source()

    def _close_source(self) -> None:
        with self._state:
            if self._closed:
                return
            self._closed = True
        close = _closer(self.source)
        if close is not None:
            close()


#: Free-threaded CPython (3.13t and later) without its GIL re-enabled: the hand-offs
#: take a lock (or wake the consumer) per item there.
FREE_THREADED = not getattr(sys, "_is_gil_enabled", lambda: True)()


def reader_thread(
    handle: SyncSource, put: Callable[[Any], bool], fail: Callable[[BaseException], object]
) -> threading.Thread:
    """A daemon thread (not started) that reads ``handle`` to its end.

    Each item, then ``END``, goes to ``put``, which returns ``False`` once nobody takes
    them any more; an exception goes to ``fail``. The thread closes the handle when it
    stops. It runs in the caller's context (contextvars: a framework's request context),
    as the source would if it were read in the caller's own thread.
    """

    def read() -> None:
        try:
            while True:
                item = handle.next()
                if not put(item) or item is END:
                    return
        except BaseException as exc:
            fail(exc)
        finally:
            handle.close()

    context = contextvars.copy_context()
    return threading.Thread(target=context.run, args=(read,), name="llmsse-reader", daemon=True)


async def aclose_source(source: object, it: object) -> None:
    """Close an async source: ``aclose()`` or ``close()`` (awaited when it is a coroutine)."""
    if it is not source:
        closer = getattr(it, "aclose", None)
        if closer is not None:
            await closer()
    close = getattr(source, "aclose", None) or getattr(source, "close", None)
    if callable(close):
        outcome = close()
        if inspect.isawaitable(outcome):
            await outcome
