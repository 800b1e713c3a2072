"""The sync pipeline: a source in, SSE bytes out, for WSGI servers and sync code."""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any

from llmsse import _chat
from llmsse._errors import OnError, error_payload
from llmsse._fastpath import text_feed
from llmsse._options import Options, check_options
from llmsse._sources import (
    END,
    FREE_THREADED,
    SyncSource,
    check_source,
    reader_thread,
    refeed,
)
from llmsse.event import encode_data
from llmsse.formats import FormatSpec
from llmsse.formats.base import Format
from llmsse.formats.text import TextFormat
from llmsse.result import StreamResult

__all__ = ["iter_sse"]

logger = logging.getLogger("llmsse")

_QUEUE_SIZE = 256
_BATCH = 64  # the most events in one item of iter_sse_batched()
_NOTHING: Any = object()  # _Handoff.wait() timed out
_FAILED: Any = object()  # the source raised: _Handoff.failure


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
            .create(..., stream=True)``) or of Responses API events (``OpenAI().responses
            .create(..., stream=True)``); the SDK's stream helpers (``chat.completions
            .stream(...)``, ``responses.stream(...)``: pass the manager, it is entered and
            exited here); or any iterable of chunks, of Responses events, of ``str`` pieces
            or of :class:`ServerSentEvent` (sent as they are). Async sources need
            :func:`aiter_sse`.
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
    return _open(
        source,
        False,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
        ids=ids,
        on_complete=on_complete,
        on_error=on_error,
    )


def iter_sse_batched(source: Any, **options: Any) -> Iterator[bytes]:
    """:func:`iter_sse` for a server's write loop: each item holds every event that is ready.

    With heartbeats on, the source is read ahead by a thread of its own; the events it
    has read while the server was writing go out in one ``bytes`` (up to ``_BATCH``),
    so a burst costs one write instead of one per event. Nothing waits for more events.
    """
    return _open(source, True, **options)


def _open(
    source: Any,
    batched: bool,
    *,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    ids: bool = False,
    on_complete: Callable[[StreamResult], Any] | None = None,
    on_error: OnError | None = None,
) -> Iterator[bytes]:
    source = check_source(source)
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
        gen = _threaded(handle, fmt, options, options.heartbeat, batched)
    # Run the generator up to its first (silent) yield, inside its try block: from
    # then on, close() closes the source even if nothing was ever read (a HEAD
    # request, a middleware error, a test that only looks at the headers).
    next(gen)
    return gen


def _direct(handle: SyncSource, fmt: Format, options: Options) -> Iterator[bytes]:
    result = fmt.result
    result.outcome = "disconnected"
    failure: BaseException | None = None
    # The text format's chunk() fast path runs inline below for a source of openai
    # chunks (saves a call per chunk); only for TextFormat itself, a subclass may
    # override chunk(), and without ids: the loop writes no id lines (with ids every
    # chunk goes to chunk(), whose own fast path writes them).
    text_chunk = fmt.chunk if type(fmt) is TextFormat and not options.ids else None
    # While the text format holds something back (see TextFormat._held), chunks take
    # its chunk().
    held: dict[Any, str] = fmt._held if isinstance(fmt, TextFormat) else {}
    add_text = fmt.state.add_text if fmt.accumulate else None
    attrs = _chat.ATTRS  # how to read the SDK's objects fastest: see _chat.ATTRS
    text_event = _chat.text_event  # the C speedups' version of the loop's body, if built
    reasoning_of = _chat.reasoning_of
    done = False
    try:
        yield b""  # primed by iter_sse, never seen by the consumer
        head = fmt.start()
        if head:
            yield head
        feed: Callable[[Any], bytes] | None = None
        it = handle.it
        for item in it:
            while True:
                try:
                    out = feed(item)  # type: ignore[misc]
                except Exception as exc:
                    feed, out = refeed(fmt, feed, item, exc)
                    if type(item) is str:
                        feed = text_feed(fmt, options.ids) or feed
                if out:
                    yield out
                if text_chunk is None or held or feed != text_chunk:
                    break
                if text_event is not None:
                    for item in it:
                        out = text_event(item, add_text)
                        if out is None:  # to chunk(), at the top of the while loop
                            break
                        yield out
                    else:
                        done = True
                        break
                    continue
                # Plain text chunks, inline: _chat.plain_text() (both of its forms) and
                # TextFormat.chunk()'s framing, the same reads and the same bytes: keep
                # them in step (and see plain_text's note on choices[0]). Whatever this
                # declines (or fails on) goes to chunk() itself, at the top of the while
                # loop.
                for item in it:
                    try:
                        if attrs:
                            choice = item.choices[0]
                            if item.usage is not None:
                                break
                            if choice.index or choice.finish_reason is not None:
                                break
                            delta = choice.delta
                            text = delta.content
                            if not text or delta.refusal or delta.tool_calls:
                                break
                        else:
                            fields = item.__dict__
                            choice = fields["choices"][0]
                            if fields["usage"] is not None:
                                break
                            fields = choice.__dict__
                            if fields["index"] or fields["finish_reason"] is not None:
                                break
                            delta = fields["delta"]
                            fields = delta.__dict__
                            text = fields["content"]
                            if not text or fields["refusal"] or fields["tool_calls"]:
                                break
                        # Read again only when not empty: an OpenAI chunk pays one read.
                        if delta.__pydantic_extra__ and reasoning_of(delta.__pydantic_extra__):
                            break
                        # isprintable(): no CR or LF. TypeError unless text is a str.
                        if str.isprintable(text) or not ("\n" in text or "\r" in text):
                            out = f"data: {text}\n\n".encode()
                        elif text[-1] != "\r":
                            out = encode_data(text)
                        else:  # maybe half of a CRLF: chunk() holds the CR back
                            break
                    except Exception:  # half of a surrogate pair, another kind of item
                        break
                    if add_text is not None:
                        add_text(text)
                    yield out
                else:
                    done = True
                    break
            if done:
                break
        result.outcome = "finished"
        yield fmt.finish()
        return
    except Exception as exc:
        failure = exc
    finally:
        if failure is None:
            _end(handle, fmt, options)
    yield from _fail(handle, fmt, options, failure)


def _fail(
    handle: SyncSource,
    fmt: Format,
    options: Options,
    exc: BaseException,
    parts: list[bytes] | None = None,
) -> Iterator[bytes]:
    result = fmt.result
    result.outcome = "failed"
    result.error = exc
    try:
        handle.close()  # before telling the client: the upstream is over either way
        error = fmt.error(error_payload(exc, options.on_error))
        yield b"".join(parts) + error if parts else error
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
    consumer; the consumer (the only one to pop) takes items without a lock while there
    are any. A full deque (``limit`` items) makes the reader wait until the consumer has
    taken half of it: the consumer looks for a waiting reader, under the lock, each time
    the deque goes down to exactly half, which it must pass one item at a time while the
    reader waits.

    The reader's unlocked "is the consumer waiting?" check relies on the GIL: the
    consumer raises its flag before it looks at the deque, so either it sees the new item
    or the reader sees the flag. Without a GIL (free-threaded CPython) the two threads'
    store-then-load could be reordered and a wake-up lost, so there the reader checks
    the flag under the lock, one uncontended lock per item.
    """

    def __init__(self, limit: int) -> None:
        self.items: deque[Any] = deque()
        self.limit = limit
        self.half = limit // 2
        self.cond = threading.Condition()
        self.consumer_waiting = False
        self.reader_waiting = False
        self.stopped = False
        self.failure: BaseException | None = None

    def put(self, item: Any) -> bool:
        """Hand ``item`` over; ``False`` when the consumer has stopped."""
        items = self.items
        if len(items) >= self.limit:
            with self.cond:
                while len(items) >= self.limit and not self.stopped:
                    self.reader_waiting = True
                    self.cond.wait(0.25)
        if self.stopped:
            return False
        items.append(item)
        if self.consumer_waiting or FREE_THREADED:
            with self.cond:
                if self.consumer_waiting:
                    self.cond.notify()
        return True

    def fail(self, exc: BaseException) -> None:
        """The source raised ``exc``: the consumer raises it after the items before it."""
        self.failure = exc
        self.put(_FAILED)

    def wait(self, timeout: float) -> Any:
        """The next item, or ``_NOTHING`` after ``timeout`` seconds without one."""
        items = self.items
        with self.cond:
            self.consumer_waiting = True
            if not items:
                self.cond.wait(timeout)
            self.consumer_waiting = False
            if not items:
                return _NOTHING
            item = items.popleft()
        if len(items) == self.half:
            self.space()
        return item

    def space(self) -> None:
        """Wake the reader if it waits for room (the consumer took half of a full deque)."""
        with self.cond:
            if self.reader_waiting:
                self.reader_waiting = False
                self.cond.notify()

    def stop(self) -> None:
        with self.cond:
            self.stopped = True
            self.cond.notify_all()


def _threaded(
    handle: SyncSource, fmt: Format, options: Options, heartbeat: float, batched: bool
) -> Iterator[bytes]:
    handoff = _Handoff(_QUEUE_SIZE)

    result = fmt.result
    result.outcome = "disconnected"
    failure: BaseException | None = None
    parts: list[bytes] = []  # batched: events read and encoded, not yet handed out
    reader = reader_thread(handle, handoff.put, handoff.fail)
    items = handoff.items
    half = handoff.half
    monotonic = time.monotonic
    try:
        yield b""  # primed by iter_sse, never seen by the consumer
        reader.start()
        last = monotonic()  # when something was last sent (heartbeats from the first moment)
        sent = False  # something was sent after ``last``: then it is "now" when we wait
        head = fmt.start()
        if head:
            yield head
            sent = True
        feed: Callable[[Any], bytes] | None = None
        while True:
            if items:
                # Only this thread pops: what is there stays there. No clock reading per
                # item: the heartbeat only matters once the consumer has to wait.
                item = items.popleft()
                if len(items) == half:
                    handoff.space()
            elif parts:
                # Nothing more is ready: hand out what was gathered before waiting.
                out = b"".join(parts)
                parts = []
                yield out
                sent = True
                continue
            else:
                now = monotonic()
                if sent:
                    # The last yield returned a moment ago: only items that sent
                    # nothing were handled since.
                    last = now
                    sent = False
                item = handoff.wait(max(0.0, last + heartbeat - now))
                if item is _NOTHING:
                    yield fmt.ping
                    last = monotonic()
                    continue
            if item is END:
                result.outcome = "finished"
                parts.append(fmt.finish())
                out = b"".join(parts)
                parts = []
                yield out
                return
            if item is _FAILED:
                failure = handoff.failure
                break
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
                if batched:
                    parts.append(out)
                    if len(parts) < _BATCH:
                        continue
                    out = b"".join(parts)
                    parts = []
                yield out
                sent = True
    finally:
        handoff.stop()
        if failure is None:
            _end(handle, fmt, options)
    assert failure is not None
    yield from _fail(handle, fmt, options, failure, parts)
