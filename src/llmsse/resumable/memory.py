"""The in-process store: the default, for one worker process with nothing else to run."""

from __future__ import annotations

import contextlib
import heapq
import threading
import time
from collections.abc import Sequence

from llmsse.resumable._store import Batch, Store, StreamState
from llmsse.resumable._wake import Waiter

__all__ = ["MemoryStore"]

# Events per read at most: a reader far behind gets the rest on its next reads, so one
# read never copies a whole long stream at once (the Redis store reads as many).
_READ_LIMIT = 1000


class _Stream:
    __slots__ = (
        "cancel_waiters",
        "cancelled",
        "deadline",
        "events",
        "finished",
        "first_id",
        "last_id",
        "queued_deadline",
        "ttl",
        "waiters",
    )

    def __init__(self, ttl: float, deadline: float) -> None:
        self.events: list[bytes] = []
        self.first_id = 1  # the id of events[0]
        self.last_id = 0
        self.finished = False
        self.cancelled = False
        self.ttl = ttl
        self.deadline = deadline
        self.queued_deadline = deadline  # the deadline of this stream's entry in the heap
        self.waiters: list[Waiter] = []
        self.cancel_waiters: list[Waiter] = []

    def wake(self) -> None:
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            waiter.wake()

    def wake_cancel(self) -> None:
        waiters, self.cancel_waiters = self.cancel_waiters, []
        for waiter in waiters:
            waiter.wake()


class MemoryStore(Store):
    """Streams kept in this process's memory.

    Only the process that produces a stream can serve it: behind a load balancer with
    several workers a reconnect may land on another process, which does not know the
    stream (use :class:`~llmsse.resumable.RedisStore` there). It is safe to share between
    threads and event loops of one process (a WSGI app's background loop and an ASGI
    loop alike), and works under asyncio and trio.

    Expiry is lazy: every call first drops what has expired, in order of deadline, so
    memory is bounded by the streams of the last ``expire`` (or ``ttl``) seconds; no
    timer or thread runs per stream. A live stream expires ``ttl`` seconds after its
    creation or its last append (a producer that vanished), a finished one ``expire``
    seconds after :meth:`finish`.

    Args:
        maxlen: Keep at most this many events per stream (the oldest go first; a reader
            asking for trimmed ones gets ``Batch.gap``). ``None`` keeps them all.
    """

    def __init__(self, *, maxlen: int | None = None) -> None:
        if maxlen is not None and (type(maxlen) is not int or maxlen < 1):
            raise ValueError(f"maxlen must be a positive int or None, got {maxlen!r}")
        self.maxlen = maxlen
        self._streams: dict[str, _Stream] = {}
        self._deadlines: list[tuple[float, str]] = []
        self._stale = 0  # entries of _deadlines that no longer decide anything
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """How many streams are kept (live or finished, not yet expired)."""
        with self._lock:
            self._sweep(time.monotonic())
            return len(self._streams)

    def _sweep(self, now: float) -> None:
        # Called with the lock held. Each stream has at most two entries in the heap
        # (its ttl deadline and the earlier one finish() may set); a stale entry is
        # recognised by its deadline and dropped, or all of them by _rebuild().
        heap = self._deadlines
        while heap and heap[0][0] <= now:
            deadline, stream_id = heapq.heappop(heap)
            stream = self._streams.get(stream_id)
            if stream is None or deadline != stream.queued_deadline:
                self._stale -= 1
                continue
            if stream.deadline > now:  # moved on by appends since it was queued
                stream.queued_deadline = stream.deadline
                heapq.heappush(heap, (stream.deadline, stream_id))
                continue
            del self._streams[stream_id]
            stream.wake()
            stream.wake_cancel()

    def _get(self, stream_id: str) -> _Stream | None:
        self._sweep(time.monotonic())
        return self._streams.get(stream_id)

    async def create(self, stream_id: str, *, ttl: float) -> bool:
        """Register a new live stream; ``False`` when the id is taken."""
        if not isinstance(stream_id, str):
            raise TypeError(f"stream_id must be a str, got {type(stream_id).__name__}")
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not ttl > 0:
            raise ValueError(f"ttl must be a positive number of seconds, got {ttl!r}")
        with self._lock:
            if self._get(stream_id) is not None:
                return False
            deadline = time.monotonic() + ttl
            self._streams[stream_id] = _Stream(ttl, deadline)
            heapq.heappush(self._deadlines, (deadline, stream_id))
            return True

    async def append(self, stream_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        """Add events; they must continue the stream's ids (``ValueError`` otherwise).

        Pushes the stream's ``ttl`` back, also with no events. Appending to a stream that
        is missing (expired) or finished changes nothing.
        """
        with self._lock:
            stream = self._get(stream_id)
            if stream is None or stream.finished:
                return
            if not events:  # touch(): only the ttl
                stream.deadline = time.monotonic() + stream.ttl
                return
            expected = stream.last_id + 1
            for event_id, _ in events:
                if event_id != expected:
                    raise ValueError(
                        f"stream {stream_id!r}: expected event id {expected}, got {event_id}"
                    )
                expected += 1
            stream.events.extend(data for _, data in events)
            stream.last_id = expected - 1
            if self.maxlen is not None and len(stream.events) > self.maxlen:
                extra = len(stream.events) - self.maxlen
                del stream.events[:extra]
                stream.first_id += extra
            stream.deadline = time.monotonic() + stream.ttl
            stream.wake()

    async def finish(self, stream_id: str, *, expire: float) -> None:
        """Mark the stream finished; it is dropped ``expire`` seconds from now."""
        if isinstance(expire, bool) or not isinstance(expire, (int, float)) or expire < 0:
            raise ValueError(f"expire must be a number of seconds >= 0, got {expire!r}")
        with self._lock:
            stream = self._get(stream_id)
            if stream is None:
                return
            stream.finished = True
            stream.deadline = time.monotonic() + expire
            if stream.deadline < stream.queued_deadline:
                stream.queued_deadline = stream.deadline
                heapq.heappush(self._deadlines, (stream.deadline, stream_id))
                self._stale += 1  # the stream's ttl entry
                if self._stale > 64 + len(self._streams):
                    self._rebuild()
            stream.wake()

    def _rebuild(self) -> None:
        # Many finished streams leave their (later) ttl entries behind: drop them all.
        self._deadlines = [(s.queued_deadline, i) for i, s in self._streams.items()]
        heapq.heapify(self._deadlines)
        self._stale = 0

    async def read(self, stream_id: str, after: int, *, block: float) -> Batch:
        """Events after ``after``; waits up to ``block`` seconds for some on a live stream."""
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ValueError(f"after must be an int >= 0, got {after!r}")
        deadline = time.monotonic() + max(0.0, block)
        while True:
            with self._lock:
                stream = self._get(stream_id)
                if stream is None:
                    return Batch((), "missing")
                state: StreamState = "finished" if stream.finished else "live"
                if stream.last_id > after:
                    start = max(after + 1, stream.first_id)
                    index = start - stream.first_id
                    kept = stream.events[index : index + _READ_LIMIT]
                    events = tuple(enumerate(kept, start))
                    if start + len(kept) <= stream.last_id:
                        state = "live"  # cut short: "finished" only with the last event
                    return Batch(events, state, gap=start > after + 1)
                remaining = deadline - time.monotonic()
                if stream.finished or remaining <= 0:
                    return Batch((), state)
                waiter = Waiter()
                stream.waiters.append(waiter)
            await self._wait(waiter, stream.waiters, remaining)

    async def cancel(self, stream_id: str) -> bool:
        """Flag the stream cancelled and wake its producer; ``False`` if missing or finished."""
        with self._lock:
            stream = self._get(stream_id)
            if stream is None or stream.finished:
                return False
            stream.cancelled = True
            stream.wake_cancel()
            return True

    async def wait_cancelled(self, stream_id: str) -> None:
        """Return once the stream is cancelled, or missing (nothing left to produce for)."""
        while True:
            with self._lock:
                stream = self._get(stream_id)
                if stream is None or stream.cancelled:
                    return
                waiter = Waiter()
                stream.cancel_waiters.append(waiter)
            await self._wait(waiter, stream.cancel_waiters, None)

    async def _wait(self, waiter: Waiter, waiters: list[Waiter], timeout: float | None) -> None:
        """Wait for ``waiter`` (at most ``timeout`` seconds), then take it off ``waiters``,
        the list it joined (a wake-up detached that list already)."""
        try:
            await waiter.wait(timeout)
        finally:
            # Timed out or cancelled: do not leave the waiter behind on an idle stream.
            with self._lock, contextlib.suppress(ValueError):
                waiters.remove(waiter)
