"""Django adapter: ``sse_response(source)`` returns an :class:`SSEResponse`, a
``StreamingHttpResponse`` that streams under both WSGI and ASGI.

Django serves a streaming response well only when its iterator matches the server:
a sync iterator under ASGI is collected into a list in a thread, and an async one
under WSGI is collected with ``async_to_sync`` (both with a warning, both buffering
the whole answer). So the response finds out which kind of handler is serving the
request (``request_started`` hands over the WSGI ``environ``; an ASGI request runs on,
or in a worker thread of, an event loop) and builds the matching pipeline:

=============  ===========================================  ==============================
               sync source (``OpenAI()``, generator)        async source (``AsyncOpenAI()``)
=============  ===========================================  ==============================
ASGI           :func:`llmsse.aiter_sse`, source in threads  :func:`llmsse.aiter_sse` on the loop
WSGI           :func:`llmsse.iter_sse`                      :func:`llmsse.aiter_sse` on a
                                                            background loop (``llmsse._wsgi``)
=============  ===========================================  ==============================

``Content-Encoding: identity`` keeps ``GZipMiddleware`` away: it would buffer the whole
stream under WSGI and gzip every event as a separate member under ASGI.

When the client leaves: under ASGI, Django cancels the response and the stream is
closed at once; under WSGI, werkzeug's server and gunicorn expose the connection and
the stream is closed at the next chunk (a heartbeat when idle); other WSGI servers
(``runserver``) close it when a write fails, one or two chunks later.

Resumable streams (docs/resumable.md): ``start_stream``/``astart_stream`` start one (a
sync ``on_complete`` runs in a thread, for the ORM), ``resume_response`` (sync views) and
``aresume_response`` (``async def`` views) serve it from the client's ``Last-Event-ID``.
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import os
from collections.abc import AsyncIterator, Iterator, Mapping
from typing import TYPE_CHECKING, Any

try:
    from asgiref.sync import SyncToAsync, async_to_sync, sync_to_async
    from django.core.signals import request_finished, request_started
    from django.http import HttpResponse as _HttpResponse
    from django.http import StreamingHttpResponse
except ImportError as exc:  # pragma: no cover - exercised without django installed
    raise ImportError("llmsse.django needs Django: pip install 'llmsse[django]'") from exc

from llmsse import aiter_sse, is_async_source, sse_headers
from llmsse._wsgi import (
    BackgroundIterator,
    DisconnectWatch,
    connection_socket,
    on_background_loop,
    refuse_stream_of_closed_loop,
    run_on_background_loop,
)
from llmsse.aio import events_of
from llmsse.pipeline import iter_sse_batched

if TYPE_CHECKING:
    from django.http import HttpRequest, HttpResponse

    from llmsse.formats import FormatSpec
    from llmsse.resumable import ResumedStream, Store
    from llmsse.resumable._http import Refusal

__all__ = [
    "SSEResponse",
    "aresume_response",
    "astart_stream",
    "resume_response",
    "sse_response",
    "start_stream",
]

# The WSGI environ of the request being served, set by ``request_started``; None under
# ASGI or outside a request. A ContextVar, because asgiref carries context into the
# loops it runs ``async def`` views in under WSGI. (Under ASGI the signal is sent with
# ``asend``, whose receivers run in tasks of their own: nothing set there comes back,
# so ASGI is recognised by the event loop instead, see _serving_asgi.)
_environ: contextvars.ContextVar[Mapping[str, Any] | None] = contextvars.ContextVar(
    "llmsse_django_environ", default=None
)


def _on_request_started(
    sender: Any, environ: Mapping[str, Any] | None = None, **kwargs: Any
) -> None:
    _environ.set(environ)


def _on_request_finished(sender: Any, **kwargs: Any) -> None:
    _environ.set(None)


request_started.connect(_on_request_started, dispatch_uid="llmsse.django.request_started")
request_finished.connect(_on_request_finished, dispatch_uid="llmsse.django.request_finished")


def _serving_asgi() -> bool:
    """Whether the response will be consumed on an event loop (no WSGI request is being served).

    True in an ``async def`` view, and in a sync view that an ASGI handler runs in an
    asgiref worker thread (``sync_to_async`` marks its threads with the loop it serves).
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        return True
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    return (
        loop is not None
        and not loop.is_closed()
        and getattr(local, "main_event_loop_pid", None) == os.getpid()
    )


class SSEResponse(StreamingHttpResponse):  # type: ignore[misc]  # Django is untyped
    """A ``StreamingHttpResponse`` of Server-Sent Events, for WSGI and ASGI.

    Takes the same arguments as :func:`sse_response`. ``is_async`` is true when the
    response is served by an ASGI handler (or, outside a request, when the source is
    async), so middleware that wraps ``streaming_content`` keeps the right kind.
    """

    def __init__(
        self,
        source: Any,
        *,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        **options: Any,
    ) -> None:
        environ = _environ.get()
        content: Iterator[bytes] | AsyncIterator[bytes]
        if is_async_source(source):
            if environ is not None:
                refuse_stream_of_closed_loop(source, "django")
            chunks = aiter_sse(source, **_for_a_loop(options))
            content = chunks if environ is None else BackgroundIterator(chunks)
        elif environ is None and _serving_asgi():
            content = aiter_sse(source, **_for_a_loop(options))
        else:
            content = iter_sse_batched(source, **_for_a_thread(options))
        sock = connection_socket(environ)
        if sock is not None and isinstance(content, Iterator):
            content = DisconnectWatch(content, sock)

        response_headers = sse_headers(options.get("format", "text"))
        response_headers["Content-Encoding"] = "identity"
        if headers:
            response_headers.update(headers)
        super().__init__(content, status=status, headers=response_headers)
        self._llmsse_content = self._iterator

    def __iter__(self) -> Iterator[bytes]:
        # Served synchronously although built for a loop (made outside a request):
        # drive it on the background loop instead of Django's collect-everything path.
        if self.is_async and self._iterator is self._llmsse_content:
            chunks = BackgroundIterator(self._llmsse_content)
            self._resource_closers.append(chunks.close)
            return chunks
        return super().__iter__()  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self._iterator is not self._llmsse_content:
            # Replaced by middleware: Django's own rules apply.
            return super().__aiter__()  # type: ignore[no-any-return]
        if self.is_async:
            return _aclosing_iter(self._llmsse_content)
        # Served on a loop although built for a thread (made outside a request).
        return _iterate_in_thread(self._llmsse_content)


def _for_a_loop(options: dict[str, Any]) -> dict[str, Any]:
    # on_complete is where an app saves the message, usually with the ORM, which refuses
    # to run on an event loop (SynchronousOnlyOperation): run a sync callback in a thread.
    on_complete = options.get("on_complete")
    if on_complete is not None and not inspect.iscoroutinefunction(on_complete):
        options = {**options, "on_complete": sync_to_async(on_complete)}
    return options


def _for_a_thread(options: dict[str, Any]) -> dict[str, Any]:
    # The same view may serve WSGI or ASGI: accept an async on_complete under WSGI too.
    on_complete = options.get("on_complete")
    if on_complete is not None and inspect.iscoroutinefunction(on_complete):
        options = {**options, "on_complete": async_to_sync(on_complete)}
    return options


def sse_response(
    source: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> SSEResponse:
    """Stream ``source`` to the client as Server-Sent Events.

    Works in sync and ``async def`` views, under WSGI and ASGI.

    Args:
        source: An openai ``Stream`` / ``AsyncStream`` of chat-completion chunks, or an
            iterable / async iterable of chunks, ``str`` pieces or ``ServerSentEvent``.
            Under WSGI an async source is iterated on a background event loop, so it
            must be created lazily there: pass an async generator that makes the
            ``AsyncOpenAI`` call (see docs/django.md).
        status: The HTTP status.
        headers: Extra response headers; they override the defaults (which include
            ``Content-Encoding: identity`` to keep ``GZipMiddleware`` from buffering).
        **options: Passed to :func:`llmsse.iter_sse` / :func:`llmsse.aiter_sse`
            (``format``, ``heartbeat``, ``retry``, ``ids``, ``on_complete``, ``on_error``).
            ``on_complete`` may be sync or async under either handler: a sync one is run
            in a thread when the stream is read on an event loop, so it can use the ORM.

    Returns:
        An :class:`SSEResponse`.

    Raises:
        TypeError: ``source`` is not a source.
        ValueError: Unknown ``format``.
    """
    return SSEResponse(source, status=status, headers=headers, **options)


async def _aclosing_iter(chunks: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    # Django's own __aiter__ leaves the inner iterator to the garbage collector when
    # it is closed between two chunks (a disconnect during send()); close it now.
    try:
        async for chunk in events_of(chunks):
            yield chunk
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


async def _iterate_in_thread(chunks: Iterator[bytes]) -> AsyncIterator[bytes]:
    import anyio.to_thread

    try:
        while True:
            chunk = await anyio.to_thread.run_sync(next, chunks, None)
            if chunk is None:
                return
            yield chunk
    finally:
        close = getattr(chunks, "close", None)
        if close is not None:
            await anyio.to_thread.run_sync(close)


# --- resumable streams (llmsse.resumable) ---------------------------------------------------


def start_stream(source: Any, **options: Any) -> str:
    """:func:`llmsse.resumable.start_stream` for a sync view: the producer runs on the
    background event loop, and a sync ``on_complete`` in a thread, so it can use the ORM.

    Takes the same arguments and returns the stream id.
    """
    from llmsse import resumable

    stream_id: str = resumable.start_stream(source, **_for_a_loop(options))
    return stream_id


async def astart_stream(source: Any, **options: Any) -> str:
    """:func:`llmsse.resumable.astart_stream` for an ``async def`` view.

    Under ASGI the producer runs on the server's event loop; under WSGI (whose loop for an
    ``async def`` view closes when the view returns) on the background event loop. A sync
    ``on_complete`` runs in a thread, so it can use the ORM.
    """
    from llmsse import resumable

    options = _for_a_loop(options)
    if _environ.get() is None:
        return await resumable.astart_stream(source, **options)
    return await on_background_loop(resumable.astart_stream(source, **options))


def resume_response(
    request: HttpRequest,
    stream_id: str,
    *,
    store: Store | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """Serve a resumable stream from where the client left off, in a sync view (WSGI or ASGI)::

        def resume(request, stream_id):
            return resume_response(request, stream_id)

    In an ``async def`` view use ``await aresume_response(...)``. The client's position is
    its ``Last-Event-ID`` header, else the ``last_event_id`` query parameter, else none.

    Returns:
        ``404`` (unknown stream), ``400`` (malformed last event id), ``204`` (finished,
        nothing after the client's last event) or a ``200`` :class:`SSEResponse`-like
        streaming response: the missed events, then the live tail. When the client
        leaves, this reader stops; the generation goes on.

    Args are those of :func:`llmsse.starlette.resume_response`.
    """
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        pass
    else:
        raise RuntimeError(
            "llmsse.django.resume_response() waits for the store: in an `async def` view "
            "use `await aresume_response(request, stream_id)`"
        )
    from llmsse.resumable._http import Refusal, probed

    reader = _open_reader(request, stream_id, store, format, heartbeat, retry)
    if not isinstance(reader, Refusal):
        if _environ.get() is not None:
            status = run_on_background_loop(reader.probe())
        else:  # an ASGI handler's worker thread: wait on the server's loop
            status = async_to_sync(reader.probe)()
        reader = probed(reader, status)
    return _resume_answer(reader, format, headers)


async def aresume_response(
    request: HttpRequest,
    stream_id: str,
    *,
    store: Store | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> HttpResponse:
    """:func:`resume_response` for an ``async def`` view (under ASGI or WSGI)."""
    from llmsse.resumable._http import Refusal, probed

    reader = _open_reader(request, stream_id, store, format, heartbeat, retry)
    if not isinstance(reader, Refusal):
        if _environ.get() is None:
            status = await reader.probe()
        else:
            status = await on_background_loop(reader.probe())
        reader = probed(reader, status)
    return _resume_answer(reader, format, headers)


def _open_reader(
    request: HttpRequest,
    stream_id: str,
    store: Store | None,
    format: FormatSpec,
    heartbeat: float | None,
    retry: int | None,
) -> ResumedStream | Refusal:
    from llmsse.resumable._http import open_reader

    return open_reader(
        stream_id,
        request.headers,
        request.GET,
        store=store,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
    )


def _resume_answer(
    reader: ResumedStream | Refusal,
    format: FormatSpec,
    headers: Mapping[str, str] | None,
) -> HttpResponse:
    from llmsse.resumable._http import Refusal

    if isinstance(reader, Refusal):
        if reader.status == 204:
            return _HttpResponse(status=204)
        return _HttpResponse(reader.message, status=reader.status, content_type="text/plain")
    environ = _environ.get()
    content: Iterator[bytes] | AsyncIterator[bytes]
    if environ is None:
        content = reader
    else:
        content = BackgroundIterator(reader)
        sock = connection_socket(environ)
        if sock is not None:
            content = DisconnectWatch(content, sock)
    response_headers = sse_headers(format)
    response_headers["Content-Encoding"] = "identity"
    if headers:
        response_headers.update(headers)
    response = _ResumedResponse(content, status=200, headers=response_headers)
    response._llmsse_reader = reader
    return response


class _ResumedResponse(StreamingHttpResponse):  # type: ignore[misc]  # Django is untyped
    """Streams a store's events; served on a loop (ASGI) or a thread (WSGI) as it was built."""

    def __iter__(self) -> Iterator[bytes]:
        if self.is_async:  # built under ASGI, served synchronously: read on the background loop
            chunks = BackgroundIterator(self._llmsse_reader)
            self._resource_closers.append(chunks.close)
            return chunks
        return super().__iter__()  # type: ignore[no-any-return]

    def __aiter__(self) -> AsyncIterator[bytes]:
        if self.is_async:
            return _aclosing_iter(self._iterator)
        return _iterate_in_thread(self._iterator)
