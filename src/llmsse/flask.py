"""Flask adapter: ``sse_response(source)`` returns a streamed ``flask.Response``.

Flask runs under WSGI, so:

* a sync source (``OpenAI()`` stream, generator) goes through :func:`llmsse.iter_sse`
  in the server's worker thread;
* an async source goes through :func:`llmsse.aiter_sse` on one background event loop
  per process (see ``llmsse._wsgi``), because a WSGI server can only iterate;
* the request context stays available to the source while it streams
  (``flask.stream_with_context``);
* when the client leaves, the stream is closed at the next chunk (a heartbeat when
  idle) on werkzeug's server and gunicorn, which expose the connection; other WSGI
  servers close it when a write fails, one or two chunks later.

``resume_response(stream_id)`` serves a resumable stream started with
:func:`llmsse.resumable.start_stream` (docs/resumable.md).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

try:
    import flask
except ImportError as exc:  # pragma: no cover - exercised without flask installed
    raise ImportError("llmsse.flask needs Flask: pip install 'llmsse[flask]'") from exc

from llmsse import aiter_sse, is_async_source, sse_headers
from llmsse._wsgi import (
    BackgroundIterator,
    DisconnectWatch,
    connection_socket,
    refuse_stream_of_closed_loop,
    run_on_background_loop,
)
from llmsse.pipeline import iter_sse_batched

if TYPE_CHECKING:
    from llmsse.formats import FormatSpec
    from llmsse.resumable import Store

__all__ = ["resume_response", "sse_response"]


def sse_response(
    source: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> flask.Response:
    """Stream ``source`` to the client as Server-Sent Events.

    Args:
        source: An openai ``Stream`` / ``AsyncStream`` of chat-completion chunks, or an
            iterable / async iterable of chunks, ``str`` pieces or ``ServerSentEvent``.
            Under WSGI an async source must be created lazily, on the loop that will
            iterate it: pass an async generator that makes the ``AsyncOpenAI`` call
            (see docs/flask.md), not a stream created inside an ``async def`` view.
        status: The HTTP status.
        headers: Extra response headers; they override the SSE defaults.
        **options: Passed to :func:`llmsse.iter_sse` / :func:`llmsse.aiter_sse`
            (``format``, ``heartbeat``, ``retry``, ``ids``, ``on_complete``, ``on_error``).

    Returns:
        A streamed ``flask.Response`` with the SSE headers.

    Raises:
        TypeError: ``source`` is not a source.
        ValueError: Unknown ``format``.
        RuntimeError: An already-opened async stream passed from an ``async def`` view
            (its event loop ends when the view returns).
    """
    body: Iterator[bytes]
    if is_async_source(source):
        refuse_stream_of_closed_loop(source, "flask")
        body = BackgroundIterator(aiter_sse(source, **options))
    else:
        body = iter_sse_batched(source, **options)

    if flask.has_request_context():
        sock = connection_socket(flask.request.environ)
        if sock is not None:
            body = DisconnectWatch(body, sock)
        body = _InContext(body)

    response_headers = sse_headers(options.get("format", "text"))
    if headers:
        response_headers.update(headers)
    return flask.Response(body, status=status, headers=response_headers)


class _InContext(Iterator[bytes]):
    """``flask.stream_with_context`` over ``body``, whose ``close()`` always reaches ``body``.

    Flask's wrapper closes the body only once iteration has started; a response that is
    never iterated (a HEAD request, an error in an ``after_request`` hook) would leave
    the upstream open.
    """

    __slots__ = ("_body", "_wrapped")

    def __init__(self, body: Iterator[bytes]) -> None:
        self._body = body
        self._wrapped: Iterator[bytes] = flask.stream_with_context(body)

    def __iter__(self) -> Iterator[bytes]:
        # The server iterates Flask's generator itself (one Python call less per event);
        # it still calls close() on this object.
        return self._wrapped

    def __next__(self) -> bytes:
        return next(self._wrapped)

    def close(self) -> None:
        """Close the wrapper (popping the request context), then the body."""
        try:
            self._wrapped.close()  # type: ignore[attr-defined]
        finally:
            close = getattr(self._body, "close", None)
            if close is not None:
                close()


def resume_response(
    stream_id: str,
    *,
    store: Store | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> flask.Response:
    """Serve a resumable stream from where the client of ``flask.request`` left off::

        @app.get("/chat/<stream_id>/stream")
        def resume(stream_id):
            return resume_response(stream_id)

    Start the stream with :func:`llmsse.resumable.start_stream` (the producer runs on the
    process's background event loop, outliving the request). The client's position is
    its ``Last-Event-ID`` header, else the ``last_event_id`` query parameter, else none.

    Returns:
        ``404`` (unknown stream), ``400`` (malformed last event id), ``204`` (finished,
        nothing after the client's last event) or a streamed ``200`` SSE response: the
        missed events, then the live tail. When the client leaves, this reader stops;
        the generation goes on.

    Args are those of :func:`llmsse.starlette.resume_response`, without the request.
    """
    from llmsse.resumable._http import Refusal, open_reader, probed

    request = flask.request
    reader = open_reader(
        stream_id,
        request.headers,
        request.args,
        store=store,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
    )
    if not isinstance(reader, Refusal):
        reader = probed(reader, run_on_background_loop(reader.probe()))
    if isinstance(reader, Refusal):
        return flask.Response(reader.message, status=reader.status, mimetype="text/plain")
    body: Iterator[bytes] = BackgroundIterator(reader)
    sock = connection_socket(request.environ)
    if sock is not None:
        body = DisconnectWatch(body, sock)
    response_headers = sse_headers(format)
    if headers:
        response_headers.update(headers)
    return flask.Response(body, status=200, headers=response_headers)
