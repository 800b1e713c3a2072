"""The interface every resumable-stream store implements.

A store keeps, per stream id, the encoded events of one generation in order, each under
the integer that is also its SSE ``id:`` (1, 2, 3, ... with no gaps), plus whether the
generation is still running, and a cancel flag that reaches the producer from any process.
The producer is the only writer of a stream; any number of readers follow it.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["Batch", "Store", "StreamState"]

#: ``"live"``: the producer may still append. ``"finished"``: nothing more will come
#: (ended, failed or cancelled). ``"missing"``: never existed, or expired.
StreamState = Literal["live", "finished", "missing"]


@dataclass(frozen=True, slots=True)
class Batch:
    """What :meth:`Store.read` returns.

    ``events`` are ``(event_id, encoded_bytes)`` pairs in ascending id order, all greater
    than the ``after`` asked for. ``state`` is the stream's state when the read was
    answered, except that a batch cut short (a store may cap how many events one read
    returns) says ``"live"``: ``"finished"`` means these are the stream's last events, so
    a reader stops on it without reading again (a read after ``expire`` would find the
    stream ``"missing"``).
    ``gap`` is true when events right after ``after`` are no longer kept (trimmed by a
    length cap): the reader must not pretend the stream is complete.
    """

    events: Sequence[tuple[int, bytes]] = field(default_factory=tuple)
    state: StreamState = "live"
    gap: bool = False


class Store(abc.ABC):
    """Where resumable streams live. All methods are coroutines; a store is safe to share
    between all the streams and tasks of one event loop."""

    @abc.abstractmethod
    async def create(self, stream_id: str, *, ttl: float) -> bool:
        """Register a new live stream. Returns ``False`` (and changes nothing) when the id
        is already taken by a stream that has not expired. ``ttl`` bounds the life of a
        stream whose producer vanished without :meth:`finish` (a crashed worker)."""

    @abc.abstractmethod
    async def append(self, stream_id: str, events: Sequence[tuple[int, bytes]]) -> None:
        """Add events (ascending ids, continuing the stream's sequence) and wake readers.

        Every append to a live stream pushes its ``ttl`` back, an append of no events
        too: that is :meth:`touch`."""

    async def touch(self, stream_id: str) -> None:
        """Push a live stream's ``ttl`` back without adding events.

        The producer calls it while the model is silent (thinking), every third of the
        ``ttl``, so that a short ``ttl`` ends the streams of a crashed worker soon
        without ending those of a model that thinks. The default appends no events."""
        await self.append(stream_id, ())

    @abc.abstractmethod
    async def finish(self, stream_id: str, *, expire: float) -> None:
        """Mark the stream finished; everything about it disappears ``expire`` seconds later."""

    @abc.abstractmethod
    async def read(self, stream_id: str, after: int, *, block: float) -> Batch:
        """Events with ids greater than ``after``. When there are none yet and the stream is
        live, wait up to ``block`` seconds for some (``0`` does not wait)."""

    @abc.abstractmethod
    async def cancel(self, stream_id: str) -> bool:
        """Ask the stream's producer to stop (from any process sharing the store).
        Returns ``False`` when the stream is missing or already finished."""

    @abc.abstractmethod
    async def wait_cancelled(self, stream_id: str) -> None:
        """Return once :meth:`cancel` was called for the stream (the producer awaits this
        beside the generation). Cancelling the awaiting task must be safe."""

    async def aclose(self) -> None:  # noqa: B027  (optional for stores that hold nothing)
        """Release what the store holds (connections); the default does nothing."""
