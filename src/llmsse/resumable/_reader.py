"""Serving a resumable stream: replay after the client's last event id, then follow it live."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator
from typing import Any, Literal

import anyio

from llmsse._options import check_options
from llmsse.formats import FormatSpec
from llmsse.resumable._args import check_stream_id, parse_last_event_id, resolve_store
from llmsse.resumable._store import Batch, Store

__all__ = [
    "GAP_ERROR",
    "LOST_ERROR",
    "ResumeStatus",
    "ResumedStream",
    "StreamNotFound",
    "aresume_sse",
    "resume_sse",
]

#: The error event's payload when events after the client's last one were trimmed
#: (a store's length cap): the client cannot be given a complete answer any more.
GAP_ERROR = {
    "type": "stream_gap",
    "message": "Part of this response is no longer stored; it cannot be resumed.",
}
#: The error event's payload when a live stream disappears while being read (it expired,
#: or the store lost it in a restart).
LOST_ERROR = {"type": "stream_lost", "message": "This response is no longer stored."}

# How long one read waits when heartbeats are off (it then just waits again).
_IDLE_READ = 30.0

#: What :meth:`ResumedStream.probe` tells: ``"missing"`` (no such stream: 404),
#: ``"done"`` (finished, nothing after the client's last event: 204) or ``"streaming"``.
ResumeStatus = Literal["missing", "done", "streaming"]


class StreamNotFound(LookupError):
    """The stream id is unknown to the store: never started, or expired."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"no resumable stream {stream_id!r} (never started, or expired)")
        self.stream_id = stream_id


def aresume_sse(
    stream_id: str,
    *,
    store: Store | None = None,
    last_event_id: int | str | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
) -> ResumedStream:
    """Serve a stream started with :func:`astart_stream`: the events after
    ``last_event_id``, then the live tail until the stream finishes.

    Any number of readers may follow one stream; a reader that reconnects with the id
    of the last event it got receives exactly the events it missed, with no gap and no
    duplicate. Closing the reader (the client left) never stops the producer.

    Args:
        stream_id: The id :func:`astart_stream` returned.
        store: The store the stream was started in; ``None`` is the default
            :class:`MemoryStore`.
        last_event_id: The id of the last event the client has: the ``Last-Event-ID``
            header's value (a string of digits), an int, or ``None`` for the whole stream.
        format: The format the stream was started with. Only the heartbeat bytes and
            the error events this reader writes itself depend on it (the events are
            stored encoded), so pass the same one.
        heartbeat: Seconds of silence after which the format's heartbeat comment is
            sent; ``None`` turns heartbeats off.
        retry: Reconnection time (ms) for ``EventSource``, sent with the first bytes.

    Returns:
        A :class:`ResumedStream`: an async iterator of bytes. Its first step raises
        :class:`StreamNotFound` when the store does not know the stream. If events the
        client still needs were trimmed (``Batch.gap``), or the stream vanished while
        being read, it ends with the format's terminal error event (types
        ``"stream_gap"`` and ``"stream_lost"``) rather than skip them silently.

    Raises:
        TypeError, ValueError: a bad argument, including a ``last_event_id`` string
            that is not a non-negative integer.
    """
    return ResumedStream(
        stream_id,
        store=store,
        last_event_id=last_event_id,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
    )


def resume_sse(
    stream_id: str,
    *,
    store: Store | None = None,
    last_event_id: int | str | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
) -> Iterator[bytes]:
    """:func:`aresume_sse` for sync code (a WSGI app): read on the background event loop.

    Takes the same arguments. Closing the iterator stops this reader only.
    """
    from llmsse._wsgi import BackgroundIterator

    return BackgroundIterator(
        ResumedStream(
            stream_id,
            store=store,
            last_event_id=last_event_id,
            format=format,
            heartbeat=heartbeat,
            retry=retry,
        )
    )


class ResumedStream:
    """The async iterator :func:`aresume_sse` returns.

    Building it does no I/O (it may be built in one thread and read on another loop).
    """

    def __init__(
        self,
        stream_id: str,
        *,
        store: Store | None,
        last_event_id: int | str | None,
        format: FormatSpec,
        heartbeat: float | None,
        retry: int | None,
    ) -> None:
        self.stream_id = check_stream_id(stream_id)
        self.store = resolve_store(store)
        #: The id after which this reader starts.
        self.after = parse_last_event_id(last_event_id)
        options = check_options(format, heartbeat, retry, True, None, None)
        self._heartbeat = options.heartbeat
        self._retry = options.retry
        self._ping = options.make_format(retry=None, ids=True).ping
        self._make_format = options.make_format
        self._first: Batch | None = None
        self._agen: AsyncGenerator[bytes, None] | None = None

    async def probe(self) -> ResumeStatus:
        """Look at the stream once, before sending anything (what an adapter answers).

        ``"missing"``: the store does not know it (404). ``"done"``: it is finished and
        nothing follows ``last_event_id`` (204: ``EventSource`` stops reconnecting, the
        AI SDK reads it as nothing to resume). ``"streaming"``: there is something to send.
        The read is kept for the first step of the iteration.
        """
        batch = self._first
        if batch is None:
            batch = self._first = await self.store.read(self.stream_id, self.after, block=0)
        if batch.events or batch.gap:
            return "streaming"
        if batch.state == "missing":
            return "missing"
        return "done" if batch.state == "finished" else "streaming"

    def __aiter__(self) -> ResumedStream:
        return self

    async def __anext__(self) -> bytes:
        if self._agen is None:
            self._agen = self._run()
        return await self._agen.__anext__()

    async def aclose(self) -> None:
        """Stop reading (the producer goes on); idempotent."""
        if self._agen is None:
            self._agen = self._run()
        await self._agen.aclose()

    def _error(self, payload: dict[str, Any]) -> bytes:
        return self._make_format(retry=None, ids=False).error(payload)

    async def _run(self) -> AsyncGenerator[bytes, None]:
        store, stream_id, heartbeat = self.store, self.stream_id, self._heartbeat
        batch = self._first
        self._first = None
        if batch is None:
            batch = await store.read(stream_id, self.after, block=0)
        if batch.state == "missing" and not batch.events:
            raise StreamNotFound(stream_id)
        last = self.after
        # retry: rides on the first bytes sent: alone it would be an event of its own to
        # the openai SDK's decoder.
        prefix = b"" if self._retry is None else b"retry: %d\n" % self._retry
        now = anyio.current_time()
        next_ping = now + (heartbeat or 0.0)
        while True:
            if batch.gap:
                yield prefix + self._error(GAP_ERROR)
                return
            if batch.events:
                last = batch.events[-1][0]
                yield prefix + b"".join(data for _, data in batch.events)
                prefix = b""
                if batch.state == "finished":  # these were the last events
                    return
                now = anyio.current_time()
                next_ping = now + (heartbeat or 0.0)
            elif batch.state == "missing":
                yield prefix + self._error(LOST_ERROR)
                return
            elif batch.state == "finished":
                return
            else:
                now = anyio.current_time()
                if heartbeat is not None and now >= next_ping:
                    yield prefix + self._ping
                    prefix = b""
                    now = anyio.current_time()
                    next_ping = now + heartbeat
            wait = _IDLE_READ if heartbeat is None else max(0.0, next_ping - now)
            batch = await store.read(stream_id, last, block=wait)
