"""Starting a resumable stream: a detached producer that writes the events into a store."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio

from llmsse._errors import OnError
from llmsse._options import check_options
from llmsse._sources import check_source
from llmsse._spawn import Background
from llmsse.aio import aiter_sse
from llmsse.formats import FormatSpec
from llmsse.result import StreamResult
from llmsse.resumable._args import check_seconds, check_stream_id, resolve_store
from llmsse.resumable._store import Store

__all__ = ["acancel_stream", "astart_stream", "cancel_stream", "label_blocks", "start_stream"]

logger = logging.getLogger("llmsse")

# Producers hold no reference to themselves (the event loop keeps tasks only weakly).
_running: set[Background] = set()


async def astart_stream(
    source: Any,
    *,
    store: Store | None = None,
    stream_id: str | None = None,
    format: FormatSpec = "text",
    on_complete: Callable[[StreamResult], Any] | None = None,
    on_error: OnError | None = None,
    ttl: float = 3600.0,
    expire: float = 300.0,
) -> str:
    """Start generating ``source`` into ``store``, detached from the request; return its id.

    The producer is a background task on the running event loop (asyncio or trio). It
    streams ``source`` through :func:`llmsse.aiter_sse` with ``ids=True`` and writes every
    event into the store under the id it carries on the wire (1, 2, 3, ...), so that
    :func:`aresume_sse` can serve it to any number of readers, from any event. It keeps
    going when readers disconnect; only :func:`acancel_stream` (or the end of the source)
    stops it. Appends made while a previous one is in flight are sent as one batch.

    Args:
        source: Any llmsse source (an openai ``Stream``/``AsyncStream``, an iterable or
            async iterable of chunks, ``str`` pieces or ``ServerSentEvent``). Events from
            ``ServerSentEvent`` items get the stream's ids in place of their own.
        store: Where the events go; ``None`` is the process-wide :class:`MemoryStore`.
        stream_id: The id to use (1-200 printable ASCII characters, no spaces), e.g. the
            chat id; ``None`` makes a random URL-safe one.
        format: The wire format, as for :func:`llmsse.aiter_sse`. Readers should pass the
            same one to :func:`aresume_sse`.
        on_complete: Called once when the generation ends, however it ends (a cancel
            reports ``"disconnected"``); may be a coroutine function.
        on_error: Maps an upstream exception to the error event, as for ``aiter_sse``.
        ttl: Seconds after which a stream whose producer vanished (a crashed worker) is
            dropped: the store drops a live stream that the producer has not written to
            for this long. While the model is silent the producer pushes it back every
            third of ``ttl``, so a short one (a minute) is safe with a model that thinks
            for longer, and readers of a crashed worker's stream get ``stream_lost`` soon.
        expire: Seconds a finished stream stays readable.

    Returns:
        The stream id.

    Raises:
        TypeError, ValueError: a bad argument (nothing is started then).
        ValueError: ``stream_id`` is taken by a stream the store still holds (the
            source is left as it is: close it if it is open).
    """
    check_source(source)
    check_options(format, None, None, True, on_complete, on_error)
    target = resolve_store(store)
    if stream_id is not None:
        check_stream_id(stream_id)
    ttl = check_seconds("ttl", ttl)
    expire = check_seconds("expire", expire, zero=True)
    if stream_id is None:
        stream_id = secrets.token_urlsafe(16)
    if not await target.create(stream_id, ttl=ttl):
        raise ValueError(f"stream id {stream_id!r} is already taken")
    events = aiter_sse(
        source,
        format=format,
        ids=True,
        heartbeat=None,
        on_complete=on_complete,
        on_error=on_error,
    )
    producer = _Producer(target, stream_id, events, ttl=ttl, expire=expire)
    task = Background(producer.run)
    _running.add(task)
    producer.done = lambda: _running.discard(task)
    return stream_id


def start_stream(source: Any, **options: Any) -> str:
    """:func:`astart_stream` for sync code (a WSGI view): same arguments, same result.

    The producer runs on the process's background event loop (the one the WSGI adapters
    drive async sources on), so it outlives the request. An async source must be created
    lazily on that loop: pass an async generator that makes the ``AsyncOpenAI`` call.
    """
    from llmsse._wsgi import run_on_background_loop

    return run_on_background_loop(astart_stream(source, **options))


async def acancel_stream(stream_id: str, *, store: Store | None = None) -> bool:
    """Stop a stream's producer, from any process sharing the store (a stop button).

    The upstream is closed and the stream finishes: readers get what was produced so far,
    then the end of the stream (no terminal event). Returns ``False`` when the stream is
    missing or already finished.
    """
    check_stream_id(stream_id)
    return await resolve_store(store).cancel(stream_id)


def cancel_stream(stream_id: str, *, store: Store | None = None) -> bool:
    """:func:`acancel_stream` for sync code, run on the background event loop."""
    from llmsse._wsgi import run_on_background_loop

    check_stream_id(stream_id)
    target = resolve_store(store)
    return run_on_background_loop(target.cancel(stream_id))


class _Producer:
    """Moves the events of one generation into the store; ends it on every way out."""

    def __init__(
        self,
        store: Store,
        stream_id: str,
        events: AsyncIterator[bytes],
        *,
        ttl: float,
        expire: float,
    ):
        self.store = store
        self.stream_id = stream_id
        self.events = events
        self.keepalive = ttl / 3  # pushes the ttl back this often while nothing is appended
        self.expire = expire
        self.pending: list[tuple[int, bytes]] = []
        self.generating = True
        self.wake: anyio.Event | None = None
        self.done: Callable[[], None] = lambda: None

    async def run(self) -> None:
        try:
            async with anyio.create_task_group() as group:
                watch = anyio.CancelScope()
                generation = anyio.CancelScope()
                group.start_soon(self._watch_cancel, watch, generation)
                group.start_soon(self._write)
                with generation:
                    try:
                        await self._generate()
                    except Exception:
                        # on_error re-raised: what was produced is still written below.
                        logger.exception("llmsse: resumable stream %r failed", self.stream_id)
                watch.cancel()
                self.generating = False
                self._wake_writer()
        except anyio.get_cancelled_exc_class():
            raise  # the loop is shutting down; finish below all the same
        except Exception:
            # The store failed (which stopped the generation): nobody awaits this task.
            logger.exception("llmsse: resumable stream %r could not be stored", self.stream_id)
        finally:
            try:
                with anyio.CancelScope(shield=True):
                    await self.store.finish(self.stream_id, expire=self.expire)
            except Exception:
                logger.exception("llmsse: could not finish resumable stream %r", self.stream_id)
            self.done()

    async def _generate(self) -> None:
        seq = 0
        rest = b""
        try:
            async for chunk in self.events:
                if rest:
                    chunk = rest + chunk
                seq, labelled, rest = label_blocks(chunk, seq)
                if labelled:
                    self.pending.extend(labelled)
                    self._wake_writer()
        finally:
            with anyio.CancelScope(shield=True):
                await self.events.aclose()  # type: ignore[attr-defined]
        if rest.strip(b"\n"):
            seq, labelled, _ = label_blocks(rest + b"\n\n", seq)
            self.pending.extend(labelled)

    def _wake_writer(self) -> None:
        if self.wake is not None:
            self.wake.set()
            self.wake = None

    async def _write(self) -> None:
        while True:
            if not self.pending:
                if not self.generating:
                    return
                wake = self.wake = anyio.Event()
                with anyio.move_on_after(self.keepalive):
                    await wake.wait()
                if not wake.is_set():
                    # The model is silent (thinking): tell the store this producer lives.
                    await self.store.touch(self.stream_id)
                continue
            batch, self.pending = self.pending, []
            await self.store.append(self.stream_id, batch)

    async def _watch_cancel(self, watch: anyio.CancelScope, generation: anyio.CancelScope) -> None:
        with watch:
            await self.store.wait_cancelled(self.stream_id)
            generation.cancel()


def label_blocks(chunk: bytes, seq: int) -> tuple[int, list[tuple[int, bytes]], bytes]:
    """Split encoded events into ``(id, block)`` pairs numbered from ``seq + 1``.

    A block that carries ``id: <its number>`` (the formats' own numbering with
    ``ids=True``) is kept byte for byte; any other (``data: [DONE]`` of the "openai"
    format, a ``ServerSentEvent`` item with its own id or none) gets its ``id:`` line
    replaced, so every stored event is resumable exactly once. Returns the last id used,
    the pairs, and an incomplete trailing block to prepend to the next chunk.
    """
    parts = chunk.split(b"\n\n")
    rest = parts.pop()  # b"" when the chunk ends with a complete block
    out: list[tuple[int, bytes]] = []
    for part in parts:
        if not part:
            continue
        seq += 1
        block = part + b"\n\n"
        tag = b"id: %d\n" % seq
        if not (block.startswith(tag) or b"\n" + tag in block):
            lines = [
                line + b"\n"
                for line in part.split(b"\n")
                if line and line != b"id" and not line.startswith(b"id:")
            ]
            # In the encoder's field order: comments, event, then id.
            at = 0
            while at < len(lines) and lines[at].startswith((b":", b"event:", b"event\n")):
                at += 1
            lines.insert(at, tag)
            block = b"".join(lines) + b"\n"
        out.append((seq, block))
    return seq, out, rest
