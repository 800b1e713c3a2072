"""The async pipeline: a source in, SSE bytes out, for ASGI servers (asyncio or trio)."""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar, cast

import anyio

from llmsse._errors import OnError, error_payload
from llmsse._fastpath import text_feed
from llmsse._options import PING, Options, check_options
from llmsse._sources import (
    END,
    FREE_THREADED,
    SyncSource,
    aclose_source,
    check_source,
    is_async_source,
    reader_thread,
    refeed,
)
from llmsse._spawn import Background
from llmsse.formats import FormatSpec
from llmsse.formats.base import Format
from llmsse.result import StreamResult

__all__ = ["aiter_sse"]

logger = logging.getLogger("llmsse")

T = TypeVar("T")

_CLOSE_TIMEOUT = 5.0
_BUFFER = 256
# The most events sent as one bytes object by an adapter (see _Events.batched()).
_BATCH = 64


def aiter_sse(
    source: Any,
    *,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    ids: bool = False,
    on_complete: Callable[[StreamResult], Any] | None = None,
    on_error: OnError | None = None,
) -> AsyncIterator[bytes]:
    """Stream ``source`` as server-sent events, asynchronously; one ``bytes`` per event.

    Takes the same options as :func:`iter_sse`. ``source`` may be async (an openai
    ``AsyncStream`` of chat chunks or Responses events, an ``AsyncOpenAI`` stream helper's
    manager, any async iterable) or sync (``OpenAI()``'s ``Stream`` or helper manager, any
    iterable): a sync source is read in a worker thread of its own, never on the event
    loop. Heartbeats come from a background task that waits for the source without
    ever cancelling its pending ``await``. ``on_complete`` and ``on_error`` may be
    coroutine functions. Works under asyncio and trio.

    Returns:
        An async generator of encoded events; ``aclose()`` closes the source exactly
        once (as does reaching the end, an error, or cancellation).
    """
    source = check_source(source)
    options = check_options(format, heartbeat, retry, ids, on_complete, on_error)
    fmt = options.new_format()
    handle = _AsyncSource(source) if is_async_source(source) else SyncSource(source)
    mode = _Mode()
    return _Events(_run(handle, fmt, options, mode), handle, fmt, options, mode)


class _Mode:
    """How ``_run`` hands out events: one per item, or all that are ready at once."""

    __slots__ = ("batched",)

    def __init__(self) -> None:
        self.batched = False


class _Events:
    """The async iterator ``aiter_sse`` returns: its ``aclose()`` closes the source even
    before the first ``__anext__`` (an async generator that never started would not)."""

    __slots__ = ("_agen", "_fmt", "_handle", "_mode", "_options", "_started")

    def __init__(
        self,
        agen: AsyncGenerator[bytes, None],
        handle: Any,
        fmt: Format,
        options: Options,
        mode: _Mode,
    ) -> None:
        self._agen = agen
        self._handle = handle
        self._fmt = fmt
        self._options = options
        self._mode = mode
        self._started = False

    def __aiter__(self) -> _Events:
        return self

    def __anext__(self) -> Awaitable[bytes]:
        self._started = True
        return self._agen.__anext__()

    def batched(self) -> AsyncGenerator[bytes, None]:
        """The generator behind this iterator, for an adapter's send loop.

        From now on each item holds every event that is ready (up to ``_BATCH``), so a
        burst (a fast model, a loaded server) costs one ``send`` instead of one per event;
        nothing waits for more events to come. Also one Python call less per item than
        going through :meth:`__anext__`. :meth:`aclose` still works.
        """
        self._started = True
        self._mode.batched = True
        return self._agen

    async def aclose(self) -> None:
        """Stop the stream: closes the source (exactly once) and reports "disconnected"."""
        if self._started:
            await self._agen.aclose()
            return
        self._started = True
        await self._agen.aclose()
        self._fmt.result.outcome = "disconnected"
        with anyio.CancelScope(shield=True):
            await _end(self._handle, self._fmt, self._options)


def events_of(stream: AsyncIterator[T]) -> AsyncIterator[T]:
    """What an adapter iterates to send ``stream`` (from :func:`aiter_sse`), the fastest way:
    the events that are ready at once come as one ``bytes``. Other iterators are returned
    as they are."""
    if isinstance(stream, _Events):
        return cast("AsyncIterator[T]", stream.batched())
    return stream


class _AsyncSource:
    """An async source and its iterator, closed exactly once."""

    def __init__(self, source: Any) -> None:
        self.source = source
        self.it = source.__aiter__()
        self.closed = False

    async def next(self) -> Any:
        try:
            return await self.it.__anext__()
        except StopAsyncIteration:
            return END

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            await aclose_source(self.source, self.it)
        except Exception:
            logger.exception("llmsse: closing the source raised")


async def _run(
    handle: Any, fmt: Format, options: Options, mode: _Mode
) -> AsyncGenerator[bytes, None]:
    result = fmt.result
    result.outcome = "disconnected"
    failure: BaseException | None = None
    handoff: _Handoff | None = None
    producer: Background | None = None
    parts: list[bytes] = []  # batched mode: ready events not yet handed out
    try:
        head = fmt.start()
        if head:
            yield head
        take: Callable[[], Any] = _empty
        get: Callable[[], Awaitable[Any]]
        if isinstance(handle, SyncSource):
            # Read ahead in a thread of its own (not waited for when the consumer
            # stops: it may be blocked inside the source, a model thinking).
            handoff = _Handoff(_BUFFER, options.heartbeat)
            reader_thread(handle, handoff.put_from_thread, handoff.fail_from_thread).start()
            take, get = handoff.take, handoff.get
        elif options.heartbeat is None:
            get = handle.next
        else:
            handoff = _Handoff(_BUFFER, options.heartbeat)
            producer = _read_in_task(handle, handoff)
            take, get = handoff.take, handoff.get
        feed: Callable[[Any], bytes] | None = None
        while True:
            # What the producer has queued is taken without a coroutine per item; only
            # an empty queue costs an await.
            item = take()
            if item is _EMPTY:
                if parts:
                    # Nothing more is ready: hand out what was gathered before waiting.
                    out = b"".join(parts)
                    parts = []
                    yield out
                    continue
                item = await get()
            if item is END:
                break
            if item is PING:
                yield fmt.ping
                continue
            try:
                out = feed(item)  # type: ignore[misc]
            except Exception as exc:
                feed, out = refeed(fmt, feed, item, exc)
                if type(item) is str:
                    feed = text_feed(fmt, options.ids) or feed
            if out:
                if mode.batched:
                    parts.append(out)
                    if len(parts) >= _BATCH:
                        out = b"".join(parts)
                        parts = []
                        yield out
                else:
                    yield out
        result.outcome = "finished"
        parts.append(fmt.finish())
        out = b"".join(parts)
        parts = []
        yield out
        return
    except Exception as exc:
        failure = exc
    finally:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            if handoff is not None:
                handoff.stop()
            if producer is not None:
                producer.cancel()
                await producer.wait()
            if failure is None:
                await _end(handle, fmt, options)
    result.outcome = "failed"
    result.error = failure
    try:
        with anyio.CancelScope(shield=True):
            await _close(handle)
        parts.append(fmt.error(await _payload(failure, options)))
        yield b"".join(parts)
    finally:
        with anyio.move_on_after(_CLOSE_TIMEOUT, shield=True):
            await _end(handle, fmt, options)


class _Handoff:
    """Items passed from a producer (a task, or a thread reading a sync source) to the
    consumer, without a checkpoint per item.

    A memory object stream would cost a scheduler round trip, a ``WouldBlock`` and a new
    cancel scope for nearly every event, and ``to_thread`` a round trip between threads
    per item. Here the producer appends to a deque and wakes the consumer only when it
    is waiting; the consumer takes what is there without awaiting. A full deque
    (``limit`` items) makes the producer wait until the consumer has taken half of it.
    On asyncio the consumer waits on a bare future and the heartbeat is one timer per
    stream that re-arms itself, instead of a timer (or a cancel scope) per wait; on trio
    it waits in a ``move_on_after`` scope.

    A reader thread wakes the consumer through the loop (``call_soon_threadsafe``, or
    trio's ``run_sync_soon``), at most once per wait. It appends, then looks for a waiter;
    the consumer publishes its waiter, then looks at the deque: under the GIL one of
    them sees the other. Without a GIL (free-threaded CPython) that order is not
    guaranteed, so there the thread wakes the loop for every item.
    """

    __slots__ = (
        "deadline",
        "failure",
        "heartbeat",
        "items",
        "limit",
        "loop",
        "space",
        "stopped",
        "timer",
        "waiter",
        "wake_pending",
        "wake_soon",
    )

    def __init__(self, limit: int, heartbeat: float | None) -> None:
        self.items: deque[Any] = deque()
        self.limit = limit
        self.heartbeat = heartbeat
        self.waiter: Any = None  # an asyncio.Future, or an anyio.Event under trio
        self.space: anyio.Event | threading.Event | None = None
        self.failure: BaseException | None = None
        self.deadline = 0.0
        self.timer: asyncio.TimerHandle | None = None
        self.stopped = False
        self.wake_pending = False
        self.wake_soon: Callable[[Callable[[], None]], Any]
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            import trio  # not asyncio: anyio's only other backend

            self.loop = None
            self.wake_soon = trio.lowlevel.current_trio_token().run_sync_soon
        else:
            self.wake_soon = self.loop.call_soon_threadsafe

    def take(self) -> Any:
        """The next item if one is queued, else ``_EMPTY`` (then await :meth:`get`)."""
        items = self.items
        if not items:
            return _EMPTY
        item = items.popleft()
        space = self.space
        if space is not None and len(items) <= self.limit // 2:
            self.space = None
            space.set()
        if item is _FAILED:
            assert self.failure is not None
            raise self.failure
        return item

    def put(self, item: Any) -> anyio.Event | None:
        """Queue ``item`` (on the loop); return an event to wait on when the consumer is
        far behind."""
        self.items.append(item)
        waiter = self.waiter
        if waiter is not None:
            self.waiter = None
            if self.loop is None:
                waiter.set()
            elif not waiter.done():
                waiter.set_result(None)
        if len(self.items) >= self.limit:
            space = self.space = anyio.Event()
            return space
        return None

    def put_from_thread(self, item: Any) -> bool:
        """Queue ``item`` from the reader thread; ``False`` once the consumer has stopped."""
        items = self.items
        if len(items) >= self.limit:
            space = threading.Event()
            self.space = space
            # Published before looking again: the consumer sets it once it has taken
            # half (the timeout covers a free-threaded build's reordering).
            loop = self.loop
            while len(items) > self.limit // 2 and not self.stopped:
                if loop is not None and loop.is_closed():
                    return False  # nobody will ever take them
                space.wait(0.25)
        if self.stopped:
            return False
        items.append(item)
        if (self.waiter is not None and not self.wake_pending) or FREE_THREADED:
            self.wake_pending = True
            try:
                self.wake_soon(self._wake)
            except RuntimeError:  # the loop is closed (or trio's run is over)
                return False
        return True

    def fail_from_thread(self, exc: BaseException) -> None:
        """The reader thread's source raised ``exc``."""
        self.failure = exc
        self.put_from_thread(_FAILED)

    def _wake(self) -> None:
        self.wake_pending = False
        waiter = self.waiter
        if waiter is None:
            return
        self.waiter = None
        if self.loop is None:
            waiter.set()
        elif not waiter.done():
            waiter.set_result(None)

    async def get(self) -> Any:
        """Wait for the next item (``PING`` after ``heartbeat`` seconds of waiting)."""
        items = self.items
        loop = self.loop
        heartbeat = self.heartbeat
        while not items:
            if loop is not None:
                future = self.waiter = loop.create_future()
                if items:  # a reader thread appended before it could see the waiter
                    self.waiter = None
                    break
                if heartbeat is not None:
                    self.deadline = loop.time() + heartbeat
                    if self.timer is None:
                        self.timer = loop.call_at(self.deadline, self._tick)
                if await future is PING:
                    return PING
            else:
                event = self.waiter = anyio.Event()
                if items:
                    self.waiter = None
                    break
                if heartbeat is None:
                    await event.wait()
                    continue
                with anyio.move_on_after(heartbeat):
                    await event.wait()
                    continue
                self.waiter = None
                return PING
        return self.take()

    def _tick(self) -> None:
        # The one heartbeat timer: ping a consumer that has waited ``heartbeat``
        # seconds, else wait again until the current deadline.
        self.timer = None
        waiter = self.waiter
        if waiter is None or waiter.done() or self.loop is None:
            return
        if self.loop.time() >= self.deadline - 0.001:
            self.waiter = None
            waiter.set_result(PING)
        else:
            self.timer = self.loop.call_at(self.deadline, self._tick)

    def stop(self) -> None:
        """The consumer is done: release a waiting producer, drop what is queued."""
        self.stopped = True
        space = self.space
        if isinstance(space, threading.Event):
            space.set()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        self.items.clear()


_FAILED: Any = object()
_EMPTY: Any = object()


def _empty() -> Any:
    return _EMPTY


def _read_in_task(handle: _AsyncSource, handoff: _Handoff) -> Background:
    """Read an async source ahead of the consumer, in a background task."""
    put = handoff.put
    # _AsyncSource.next() inlined: one coroutine less per item.
    anext = handle.it.__anext__

    async def produce() -> None:
        try:
            while True:
                try:
                    item = await anext()
                except StopAsyncIteration:
                    put(END)
                    return
                full = put(item)
                if full is not None:
                    await full.wait()
        except anyio.get_cancelled_exc_class():
            raise
        except BaseException as exc:
            handoff.failure = exc
            put(_FAILED)

    return Background(produce)


async def _close(handle: Any) -> None:
    # A sync source never blocks here: a generator busy in another thread is closed
    # by that thread when its next() returns.
    if isinstance(handle, SyncSource):
        handle.close()
    else:
        await handle.close()


async def _payload(exc: BaseException, options: Options) -> dict[str, Any]:
    on_error = options.on_error
    if on_error is not None and inspect.iscoroutinefunction(on_error):
        mapped = await on_error(exc)
        return error_payload(exc, lambda _: mapped)
    return error_payload(exc, on_error)


async def _end(handle: Any, fmt: Format, options: Options) -> None:
    await _close(handle)
    result = fmt.close()
    if options.on_complete is not None:
        try:
            outcome = options.on_complete(result)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception("llmsse: on_complete raised")
