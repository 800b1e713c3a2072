"""Resumable streams: a generation that outlives its HTTP connection.

::

    from llmsse.resumable import astart_stream, aresume_sse

    stream_id = await astart_stream(stream)                # a detached producer writes the events
    async for chunk in aresume_sse(stream_id, last_event_id=request_last_event_id):
        ...                                                # the missed events, then the live tail

The producer writes every event, under the ``id:`` it carries, into a :class:`Store`;
readers replay from the client's ``Last-Event-ID`` and follow the live tail. The default
:class:`MemoryStore` serves one worker process; :class:`RedisStore` (``pip install
'llmsse[redis]'``) lets a reconnect served by another process resume the same stream.
The framework adapters expose it as ``resume_response(...)``; see docs/resumable.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llmsse.resumable._args import default_store
from llmsse.resumable._producer import acancel_stream, astart_stream, cancel_stream, start_stream
from llmsse.resumable._reader import (
    ResumedStream,
    ResumeStatus,
    StreamNotFound,
    aresume_sse,
    resume_sse,
)
from llmsse.resumable._store import Batch, Store, StreamState
from llmsse.resumable.memory import MemoryStore

if TYPE_CHECKING:
    from llmsse.resumable.redis import RedisStore

__all__ = [
    "Batch",
    "MemoryStore",
    "RedisStore",
    "ResumeStatus",
    "ResumedStream",
    "Store",
    "StreamNotFound",
    "StreamState",
    "acancel_stream",
    "aresume_sse",
    "astart_stream",
    "cancel_stream",
    "default_store",
    "resume_sse",
    "start_stream",
]


def __getattr__(name: str) -> Any:
    # RedisStore imports redis: only when it is asked for.
    if name == "RedisStore":
        from llmsse.resumable.redis import RedisStore

        return RedisStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
