"""What the WSGI adapters (Flask, Django) share; no framework is imported here.

Two problems WSGI leaves to the application:

* A WSGI server notices that the client left only when a write fails, and on Linux
  the first write after the client closed usually still succeeds (the kernel sends
  it and the peer answers with a reset), so an idle stream is closed only at the
  *second* heartbeat. :class:`DisconnectWatch` looks at the connection itself
  before each chunk (a zero-timeout poll and a one-byte ``MSG_PEEK``), which brings
  that down to the first heartbeat.
* An async source cannot be iterated by a WSGI server. :class:`BackgroundIterator`
  drives it on one event loop per process, in a daemon thread, and hands the chunks
  to the server thread. One loop (not one per request) so that an ``AsyncOpenAI``
  client made at import time keeps a connection pool bound to a single loop.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import select
import socket
import threading
import time
from collections.abc import AsyncIterator, Coroutine, Iterator, Mapping
from typing import Any, TypeVar

from llmsse.aio import events_of

__all__ = [
    "BackgroundIterator",
    "DisconnectWatch",
    "connection_socket",
    "on_background_loop",
    "peer_closed",
    "refuse_stream_of_closed_loop",
    "run_on_background_loop",
]

T = TypeVar("T")

# How long closing a stream on the background loop may take before the server thread
# gives up waiting (the close itself still runs to its end on the loop).
_CLOSE_TIMEOUT = 10.0

# Keys under which WSGI servers expose the client connection: werkzeug's development
# server and gunicorn (sync, gthread, ...). Other servers rely on failing writes.
_SOCKET_KEYS = ("werkzeug.socket", "gunicorn.socket")


def connection_socket(environ: Mapping[str, Any] | None) -> socket.socket | None:
    """The client's socket from a WSGI ``environ``, when the server exposes it."""
    if environ is None:
        return None
    for key in _SOCKET_KEYS:
        sock = environ.get(key)
        if isinstance(sock, socket.socket):
            return sock
    return None


def peer_closed(sock: socket.socket) -> bool:
    """Whether the client has closed its side of ``sock`` (EOF or reset), without blocking.

    Data waiting to be read (a request body the view did not read, a pipelined
    request) counts as "still there": only an orderly EOF or an error means gone.
    """
    try:
        fd = sock.fileno()
        if fd < 0:
            return True
        if hasattr(select, "poll"):
            poller = select.poll()
            poller.register(fd, select.POLLIN | select.POLLPRI)
            events = poller.poll(0)
            if not events:
                return False
            if events[0][1] & (select.POLLERR | select.POLLNVAL):
                return True
        else:  # pragma: no cover - Windows
            readable, _, _ = select.select([fd], [], [], 0)
            if not readable:
                return False
        # The plain socket's recv, also for an ssl.SSLSocket (which refuses flags):
        # we only ask whether the TCP stream has ended, never read any TLS record.
        peek = socket.socket.recv(sock, 1, socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0))
    except (BlockingIOError, InterruptedError):
        return False
    except (OSError, ValueError):
        return True
    return peek == b""


class DisconnectWatch(Iterator[bytes]):
    """Iterate ``chunks`` until the client behind ``sock`` is gone, then close ``chunks``.

    With heartbeats on, the pipeline yields at least one chunk per interval, so a
    client that left is noticed at the next chunk rather than the next failing write.
    ``close()`` closes ``chunks`` even when iteration never started.
    """

    __slots__ = ("_check_at", "_chunks", "_sock")

    #: At most one check per this many seconds: a fast stream must not pay a poll per
    #: event, and an idle one (heartbeats seconds apart) is checked at every chunk.
    INTERVAL = 0.05

    def __init__(self, chunks: Iterator[bytes], sock: socket.socket) -> None:
        self._chunks = chunks
        self._sock = sock
        self._check_at = 0.0

    def __next__(self) -> bytes:
        chunk = next(self._chunks)
        now = time.monotonic()
        if now >= self._check_at:
            self._check_at = now + self.INTERVAL
            if peer_closed(self._sock):
                self.close()
                raise StopIteration
        return chunk

    def close(self) -> None:
        """Close the chunks (and so the upstream); safe to call more than once."""
        close = getattr(self._chunks, "close", None)
        if close is not None:
            close()


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_loop_pid = 0


def _background_loop() -> asyncio.AbstractEventLoop:
    global _loop, _loop_pid
    with _loop_lock:
        # A forked worker (gunicorn --preload) inherits the loop object but not its
        # thread: start a new one in each process.
        if _loop is None or _loop_pid != os.getpid() or _loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(
                target=loop.run_forever, name="llmsse-async-bridge", daemon=True
            )
            thread.start()
            _loop, _loop_pid = loop, os.getpid()
        return _loop


def run_on_background_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` on the process's background loop and return its result (or raise).

    For sync code (a WSGI view) that needs something done on the loop where it lives,
    such as starting a resumable stream's producer. Refuses to run on the loop's own
    thread, where waiting would deadlock.
    """
    loop = _background_loop()
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is loop:
        coroutine.close()
        raise RuntimeError("run_on_background_loop() called on the background loop itself")
    return asyncio.run_coroutine_threadsafe(coroutine, loop).result()


async def on_background_loop(coroutine: Coroutine[Any, Any, T]) -> T:
    """Await ``coroutine`` run on the process's background loop, from another event loop.

    For an ``async def`` view under WSGI, whose loop closes when the view returns: what
    must outlive it (a resumable stream's producer) is started on the background loop.
    """
    loop = _background_loop()
    if asyncio.get_running_loop() is loop:
        return await coroutine
    return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coroutine, loop))


async def _anext(iterator: AsyncIterator[T]) -> T:
    return await iterator.__anext__()


async def _aclose(iterator: AsyncIterator[Any]) -> None:
    aclose = getattr(iterator, "aclose", None)
    if aclose is not None:
        await aclose()


class BackgroundIterator(Iterator[T]):
    """Iterate an async iterator from sync code, on the process's background event loop.

    Each item is awaited on the loop while the calling thread waits for it. ``close()``
    (a WSGI server calls it when the client left or the response ended) closes
    ``chunks`` on the loop and waits for that, even when iteration never started.
    """

    __slots__ = ("_chunks", "_closed", "_items", "_loop")

    def __init__(self, chunks: AsyncIterator[T]) -> None:
        self._chunks = chunks
        self._items: AsyncIterator[T] | None = None
        self._loop = _background_loop()
        self._closed = False

    def __next__(self) -> T:
        if self._closed:
            raise StopIteration
        items = self._items
        if items is None:
            # aiter_sse's events ready at once come as one item: one trip between the
            # threads (and one write) per burst instead of per event.
            items = self._items = events_of(self._chunks)
        future = asyncio.run_coroutine_threadsafe(_anext(items), self._loop)
        try:
            return future.result()
        except StopAsyncIteration:
            self.close()
            raise StopIteration from None
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Close ``chunks`` on the loop (once) and wait up to 10 s for it."""
        if self._closed:
            return
        self._closed = True
        closing = asyncio.run_coroutine_threadsafe(_aclose(self._chunks), self._loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            closing.result(timeout=_CLOSE_TIMEOUT)


def refuse_stream_of_closed_loop(source: object, adapter: str) -> None:
    """Raise ``RuntimeError`` for an async stream opened inside an ``async def`` view under WSGI.

    Flask, and Django under WSGI, run an ``async def`` view on an event loop of their own
    (asgiref's) and close it when the view returns, before the response streams. A stream
    opened there (``await client.chat.completions.create(stream=True)``, whose HTTP
    response is already open) is bound to that dead loop and would fail or stall. What is
    opened lazily, like an async generator that makes the call when first iterated, runs
    on the background loop and is fine.
    """
    if getattr(source, "response", None) is None:  # openai's AsyncStream keeps its response
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return
    raise RuntimeError(
        f"llmsse.{adapter}.sse_response got an async stream opened inside an `async def` view "
        "served by WSGI, whose event loop closes before the response streams. Use the sync "
        "OpenAI() client, or pass an async generator that opens the stream itself: "
        "`async def answer(): stream = await client.chat.completions.create(..., stream=True); "
        "async for chunk in stream: yield chunk` and `sse_response(answer())`. "
        f"See docs/{adapter}.md."
    )
