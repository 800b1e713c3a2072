"""The sync pipeline: a source in, SSE bytes out, for WSGI servers and sync code."""

from __future__ import annotations

import contextvars
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from llmsse._errors import OnError, error_payload
from llmsse._fastpath import text_feed
from llmsse._options import Options, check_options
from llmsse._sources import END, SyncSource, check_source, refeed
from llmsse.event import encode_data
from llmsse.formats import FormatSpec
from llmsse.formats.base import Format
from llmsse.formats.text import TextFormat
from llmsse.result import StreamResult

__all__ = ["iter_sse"]

logger = logging.getLogger("llmsse")

_ITEM, _FAIL = 0, 1
_QUEUE_SIZE = 256


def iter_sse(
    source: Any,
    *,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    ids: bool = False,
    on_complete: Callable[[StreamResult], Any] | None = None,
    on_error: OnError | None = None,
) -> Iterator[bytes]:
    """Stream ``source`` as server-sent events, one ``bytes`` object per event.

    Args:
        source: An openai ``Stream`` of ``ChatCompletionChunk`` (``OpenAI().chat.completions
            .create(..., stream=True)``), or any iterable of chunks, of ``str`` pieces or of
            :class:`ServerSentEvent` (sent as they are). Async sources need :func:`aiter_sse`.
        format: ``"text"`` (for ``EventSource`` and ``fetch`` readers), ``"openai"`` (the
            OpenAI API's own wire format), ``"ai-sdk"`` (the Vercel AI SDK's ``useChat``),
            ``"ag-ui"`` (AG-UI events for ``HttpAgent``) or a
            :class:`~llmsse.formats.Format` subclass.
        heartbeat: Seconds of silence after which a ``: ping`` comment is sent, from the
            first moment on; ``None`` turns heartbeats off. With heartbeats the source is
            read by one thread of its own, so a ping goes out while the model thinks.
        retry: Reconnection time (ms) sent first as ``retry:``, or ``None``.
        ids: Give every event an increasing ``id:``.
        on_complete: Called once, however the stream ends, with the :class:`StreamResult`.
        on_error: Maps an exception from the source to what the client is told (see
            :data:`llmsse._errors.OnError`); by default a generic message, never the
            exception's text.

    Returns:
        A generator of encoded events. Closing it (as a WSGI server does when the client
        disconnects) closes the source, exactly once.

    Raises:
        TypeError: ``source`` is not a source (or is async), or an option has the wrong type.
        ValueError: unknown ``format``, or an option out of range.
    """
    check_source(source)
    if not hasattr(source, "__iter__"):
        raise TypeError(
            f"{type(source).__name__} is an async source: use llmsse.aiter_sse() "
            "(or an async route), or a sync client such as openai.OpenAI()"
        )
    if on_complete is not None and inspect.iscoroutinefunction(on_complete):
        raise TypeError("on_complete is a coroutine function: use aiter_sse() or a sync function")
    options = check_options(format, heartbeat, retry, ids, on_complete, on_error)
    handle = SyncSource(source)
    fmt = options.new_format()
    if options.heartbeat is None:
        gen = _direct(handle, fmt, options)
    else:
        gen = _threaded(handle, fmt, options, options.heartbeat)
    # Run the generator up to its first (silent) yield, inside its try block: from
    # then on, close() closes the source even if nothing was ever read (a HEAD
    # request, a middleware error, a test that only looks at the headers).
    next(gen)
    return gen


def _direct(handle: SyncSource, fmt: Format, options: Options) -> Iterator[bytes]:
    result = fmt.result
    result.outcome = "disconnected"
    failure: BaseException | None = None
    # The text format's chunk() fast path, inlined below for a source of openai chunks
    # (saves a call per chunk); only for TextFormat itself, a subclass may override chunk().
    text_chunk = fmt.chunk if type(fmt) is TextFormat and not options.ids else None
    add_text = fmt.state.add_text if fmt.accumulate else None
    fast = False
    try:
        yield b""  # primed by iter_sse, never seen by the consumer
        head = fmt.start()
        if head:
            yield head
        feed: Callable[[Any], bytes] | None = None
        for item in handle.it:
            if fast:
                # TextFormat.chunk()'s fast path, the same reads in the same order:
                # keep the two in step. Only reads inside the try.
                text = None
                try:
                    fields = item.__dict__
                    choices = fields["choices"]
                    if fields["usage"] is None and len(choices) == 1:
                        fields = choices[0].__dict__
                        if not fields["index"] and fields["finish_reason"] is None:
                            delta = fields["delta"]
                            fields = delta.__dict__
                            text = fields["content"]
                            if not (
                                text
                                and type(text) is str
                                and not (
                                    fields["refusal"]
                                    or fields["tool_calls"]
                                    or delta.__pydantic_extra__
                                )
                            ):
                                text = None
                except (AttributeError, KeyError, TypeError):
                    text = None
                if text is not None:
                    if add_text is not None:
                        add_text(text)
                    if "\n" in text or "\r" in text:
                        yield encode_data(text)
                    else:
                        yield f"data: {text}\n\n".encode()
                    continue
            try:
                out = feed(item)  # type: ignore[misc]
            except Exception as exc:
                feed, out = refeed(fmt, feed, item, exc)
                fast = feed == text_chunk
                if type(item) is str:
                    feed = text_feed(fmt, options.ids) or feed
            if out:
                yield out
        result.outcome = "finished"
        yield fmt.finish()
        return
    except Exception as exc:
        failure = exc
    finally:
        if failure is None:
            _end(handle, fmt, options)
    yield from _fail(handle, fmt, options, failure)


def _fail(handle: SyncSource, fmt: Format, options: Options, exc: BaseException) -> Iterator[bytes]:
    result = fmt.result
    result.outcome = "failed"
    result.error = exc
    try:
        handle.close()  # before telling the client: the upstream is over either way
        yield fmt.error(error_payload(exc, options.on_error))
    finally:
        _end(handle, fmt, options)


def _end(handle: SyncSource, fmt: Format, options: Options) -> None:
    handle.close()
    result = fmt.close()
    if options.on_complete is not None:
        try:
            options.on_complete(result)
        except Exception:
            logger.exception("llmsse: on_complete raised")


class _Handoff:
    """Items passed from the reader thread to the consumer, in batches.

    A ``queue.Queue`` costs a condition-variable round trip (and a thread switch) per
    item. Here the reader appends to a deque and takes the lock only to wake a waiting
    consumer; the consumer pops without a lock while items are there. (Both rely on
    deque operations being atomic and on the GIL ordering the flag and the deque.) A full
    deque (``limit`` items) makes the reader wait until the consumer has taken half of it.
    """

    def __init__(self, limit: int) -> None:
        self.items: deque[tuple[int, Any]] = deque()
        self.limit = limit
        self.cond = threading.Condition()
        self.consumer_waiting = False
        self.reader_waiting = False
        self.stopped = False

    def put(self, entry: tuple[int, Any]) -> bool:
        """Hand ``entry`` over; ``False`` when the consumer has stopped."""
        if len(self.items) >= self.limit:
            with self.cond:
                while len(self.items) >= self.limit and not self.stopped:
                    self.reader_waiting = True
                    self.cond.wait(0.25)
        if self.stopped:
            return False
        self.items.append(entry)
        # No lock on the way: the consumer raises its flag before it looks at the
        # deque, so either it sees this item or this sees the flag.
        if self.consumer_waiting:
            with self.cond:
                self.cond.notify()
        return True

    def get(self, timeout: float) -> tuple[int, Any] | None:
        """The next entry, or ``None`` after ``timeout`` seconds without one."""
        items = self.items
        try:
            entry = items.popleft()  # deque operations are atomic: no lock needed here
        except IndexError:
            with self.cond:
                self.consumer_waiting = True
                if not items:
                    self.cond.wait(timeout)
                self.consumer_waiting = False
                if not items:
                    return None
                entry = items.popleft()
        if self.reader_waiting and len(items) <= self.limit // 2:
            with self.cond:
                self.reader_waiting = False
                self.cond.notify()
        return entry

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def _threaded(
    handle: SyncSource, fmt: Format, options: Options, heartbeat: float
) -> Iterator[bytes]:
    handoff = _Handoff(_QUEUE_SIZE)

    def read() -> None:
        try:
            while True:
                item = handle.next()
                if not handoff.put((_ITEM, item)) or item is END:
                    return
        except BaseException as exc:
            handoff.put((_FAIL, exc))
        finally:
            handle.close()

    result = fmt.result
    result.outcome = "disconnected"
    failure: BaseException | None = None
    # The reader runs in the consumer's context (contextvars: a framework's request
    # context), as a source read in the consumer's own thread would.
    context = contextvars.copy_context()
    reader = threading.Thread(target=context.run, args=(read,), name="llmsse-reader", daemon=True)
    try:
        yield b""  # primed by iter_sse, never seen by the consumer
        reader.start()
        last = time.monotonic()
        head = fmt.start()
        if head:
            yield head
        feed: Callable[[Any], bytes] | None = None
        while True:
            entry = handoff.get(max(0.0, last + heartbeat - time.monotonic()))
            if entry is None:
                yield fmt.ping
                last = time.monotonic()
                continue
            kind, item = entry
            if kind == _FAIL:
                failure = item
                break
            if item is END:
                result.outcome = "finished"
                yield fmt.finish()
                return
            try:
                try:
                    out = feed(item)  # type: ignore[misc]
                except Exception as exc:
                    feed, out = refeed(fmt, feed, item, exc)
                    if type(item) is str:
                        feed = text_feed(fmt, options.ids) or feed
            except Exception as exc:
                failure = exc
                break
            if out:
                yield out
                last = time.monotonic()
    finally:
        handoff.stop()
        if failure is None:
            _end(handle, fmt, options)
    yield from _fail(handle, fmt, options, failure)
