"""Server-sent event responses for Starlette and FastAPI.

::

    from llmsse.starlette import sse_response

    @app.post("/chat")
    async def chat(body: Chat):
        stream = await client.chat.completions.create(model=..., messages=..., stream=True)
        return sse_response(stream)

The response streams through :func:`llmsse.aiter_sse`: async sources stay on the event loop,
sync ones (``OpenAI()``'s ``Stream``, generators) are read in a worker thread, so neither kind
blocks other requests. It also listens for the client going away, whatever the server's ASGI
version: Starlette's own ``StreamingResponse`` does so only below ASGI 2.4; under a 2.4 server it
notices a disconnect when a ``send`` fails, which an idle stream (a model thinking) never tries,
and it never closes its body iterator itself. Here the upstream is closed and ``on_complete``
told ``"disconnected"`` as soon as the server reports the disconnect.

``await resume_response(request, stream_id)`` serves a resumable stream started with
:func:`llmsse.resumable.astart_stream` (docs/resumable.md).
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import anyio

from llmsse import aiter_sse, sse_headers
from llmsse.aio import events_of

try:
    from starlette.background import BackgroundTask
    from starlette.requests import Request
    from starlette.responses import PlainTextResponse, Response, StreamingResponse
    from starlette.types import Receive, Scope, Send
except ImportError as exc:  # pragma: no cover - tested with starlette hidden from sys.modules
    raise ImportError(
        "llmsse.starlette needs Starlette (FastAPI depends on it): pip install 'llmsse[starlette]'"
    ) from exc

if TYPE_CHECKING:
    from llmsse.formats import FormatSpec
    from llmsse.resumable import Store

__all__ = ["SSEResponse", "resume_response", "sse_response"]


class SSEResponse(StreamingResponse):
    """A ``StreamingResponse`` that streams an LLM source as server-sent events.

    ``content`` is any llmsse source: an openai ``Stream`` or ``AsyncStream``, or an iterable or
    async iterable of chat-completion chunks, ``str`` pieces or ``ServerSentEvent``. Keyword
    options (``format``, ``heartbeat``, ``retry``, ``ids``, ``on_complete``, ``on_error``) are
    those of :func:`llmsse.aiter_sse`; a bad source raises ``TypeError`` and an unknown format
    ``ValueError`` here, before any byte is sent.

    FastAPI accepts it as a return value and as ``response_class`` (a generator endpoint with
    ``response_class=SSEResponse`` streams what the generator yields). The headers are
    :func:`llmsse.sse_headers` (no ``Connection``), then ``headers`` on top.

    When the client goes away the upstream is closed and ``on_complete`` receives
    ``outcome == "disconnected"``, even if the stream is idle at that moment (a ``HEAD``
    request gets the headers and the upstream is closed at once). To turn a failure
    of the source before its first event into an ordinary HTTP error, ``await``
    :meth:`prefetch` in the route.
    """

    media_type = "text/event-stream"

    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
        **options: Any,
    ) -> None:
        user_on_error = options.get("on_error")
        if user_on_error is not None and not callable(user_on_error):
            raise TypeError(
                f"on_error must be callable or None, got {type(user_on_error).__name__}"
            )
        options["on_error"] = self._wrap_on_error(user_on_error)
        stream = aiter_sse(content, **options)
        merged = {
            name.lower(): value
            for name, value in sse_headers(options.get("format", "text")).items()
        }
        if media_type is not None:
            merged["content-type"] = media_type
        merged.update((name.lower(), value) for name, value in (headers or {}).items())
        super().__init__(stream, status_code, merged, media_type, background)
        self._stream = stream
        self._prefetched: list[bytes] = []
        self._prefetching = False
        self._prefetch_failure: BaseException | None = None
        self._closed = False

    def _wrap_on_error(self, on_error: Any) -> Any:
        # The pipeline asks on_error what to send when the source fails. While prefetch() waits
        # for the first event the answer is "raise": the exception then reaches the route,
        # which can still answer with any status, since no header has been sent.
        if on_error is not None and inspect.iscoroutinefunction(on_error):

            async def on_error_async(exc: BaseException) -> Any:
                if self._prefetching:
                    raise exc
                return await on_error(exc)

            return on_error_async

        def on_error_sync(exc: BaseException) -> Any:
            if self._prefetching:
                raise exc
            return None if on_error is None else on_error(exc)

        return on_error_sync

    async def prefetch(self) -> None:
        """Wait for the stream's first event before the response starts.

        Call it in an ``async def`` route before returning the response. If the source fails
        before producing an event, its exception is raised here (the source is already closed
        and ``on_complete`` told ``"failed"``), so the route can answer with a proper HTTP
        error, or let an exception handler do it::

            response = sse_response(generate(prompt))
            try:
                await response.prefetch()
            except openai.RateLimitError:
                raise HTTPException(429, "Too busy, try again later")
            return response

        Heartbeats produced while waiting are dropped: no byte reaches the client until the
        route returns. Errors after the first event are the stream's terminal error event.
        """
        if self._prefetched or self._prefetch_failure is not None:
            return
        self._prefetching = True
        try:
            async for chunk in self._stream:
                if chunk.startswith(b":"):  # a heartbeat comment, pointless before the headers
                    continue
                self._prefetched.append(chunk)
                if chunk.startswith(b"data:") or b"\ndata:" in chunk:
                    return  # the first event (not just a "retry:" preamble)
        except Exception as exc:
            self._prefetch_failure = exc
            raise
        finally:
            self._prefetching = False

    async def aclose(self) -> None:
        """Close the stream and with it the upstream; idempotent.

        Sending the response does this on every way out. Call it yourself only for a response
        you built (or prefetched) and then decided not to return.
        """
        if self._closed:
            return
        self._closed = True
        await self._stream.aclose()  # type: ignore[attr-defined]

    async def stream_response(self, send: Send) -> None:
        """Send the status, the headers and then every event as soon as it exists."""
        await send(
            {"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers}
        )
        for chunk in self._prefetched:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        self._prefetched = []
        async for chunk in events_of(self._stream):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._prefetch_failure is not None:
            # prefetch() failed and the route returned the response anyway: nothing is sent
            # yet, so let the app's exception handlers answer.
            raise self._prefetch_failure
        if self._closed:
            raise RuntimeError("this SSEResponse was closed and cannot be sent")
        if scope.get("method") == "HEAD":
            # Nobody reads the body of a HEAD response: stop the model instead of running it.
            try:
                await send(
                    {
                        "type": "http.response.start",
                        "status": self.status_code,
                        "headers": self.raw_headers,
                    }
                )
                await send({"type": "http.response.body", "body": b"", "more_body": False})
            finally:
                with anyio.CancelScope(shield=True):
                    await self.aclose()
            return
        failure: Exception | None = None
        try:
            async with anyio.create_task_group() as task_group:
                task_group.start_soon(_cancel_on_disconnect, receive, task_group.cancel_scope)
                try:
                    await self.stream_response(send)
                except OSError:
                    pass  # an ASGI 2.4 server's send() failing: the client is gone
                except Exception as exc:  # on_error chose to re-raise: re-raised below
                    failure = exc
                finally:
                    task_group.cancel_scope.cancel()
        finally:
            # Cancelling the loop above interrupts the pipeline wherever it waits (it closes
            # the source then); aclose() covers a pipeline suspended between events.
            with anyio.CancelScope(shield=True):
                await self.aclose()
        if failure is not None:
            raise failure
        if self.background is not None:
            await self.background()


async def _cancel_on_disconnect(receive: Receive, scope: anyio.CancelScope) -> None:
    # Under every ASGI version the server answers receive() with http.disconnect once the
    # client is gone, idle stream or not; request body messages left unread are skipped.
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            scope.cancel()
            return


def sse_response(
    source: Any,
    *,
    status: int = 200,
    headers: Mapping[str, str] | None = None,
    **options: Any,
) -> SSEResponse:
    """Return an :class:`SSEResponse` streaming ``source`` as server-sent events.

    Args:
        source: An openai ``Stream``/``AsyncStream``, or an iterable or async iterable of
            chat-completion chunks, ``str`` pieces or ``ServerSentEvent``.
        status: The HTTP status code.
        headers: Extra response headers, applied over the SSE headers.
        **options: Pipeline options of :func:`llmsse.aiter_sse`: ``format``, ``heartbeat``,
            ``retry``, ``ids``, ``on_complete``, ``on_error``.

    Raises:
        TypeError: ``source`` is not a source, or an option has the wrong type.
        ValueError: Unknown ``format`` or a bad option value.
    """
    return SSEResponse(source, status_code=status, headers=headers, **options)


class _ResumedResponse(SSEResponse):
    """An :class:`SSEResponse` whose events come from a store instead of a source: the same
    headers, HEAD and disconnect handling; closing it stops this reader only."""

    def __init__(self, reader: Any, headers: Mapping[str, str]) -> None:
        StreamingResponse.__init__(self, reader, 200, headers)
        self._stream = reader
        self._prefetched = []
        self._prefetching = False
        self._prefetch_failure = None
        self._closed = False


async def resume_response(
    request: Request,
    stream_id: str,
    *,
    store: Store | None = None,
    format: FormatSpec = "text",
    heartbeat: float | None = 15.0,
    retry: int | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """Serve a resumable stream from where the client left off (see docs/resumable.md)::

        @app.get("/chat/{stream_id}/stream")
        async def resume(request: Request, stream_id: str):
            return await resume_response(request, stream_id)

    The client's position is its ``Last-Event-ID`` header (``EventSource`` sends it when it
    reconnects), else the ``last_event_id`` query parameter, else none (the whole stream).

    Returns:
        ``404`` when the store does not know the stream; ``400`` for a malformed last
        event id; ``204`` when the stream is finished and nothing follows the client's last
        event (``EventSource`` stops reconnecting, the AI SDK reads "nothing to resume");
        otherwise a ``200`` SSE response: the missed events, then the live tail. When the
        client leaves, this reader stops; the generation goes on.

    Args:
        request: The request (for its ``Last-Event-ID`` header or query parameter).
        stream_id: The id :func:`llmsse.resumable.astart_stream` returned.
        store: The store the stream was started in (``None``: the default memory store).
        format: The format the stream was started with (heartbeats and headers follow it).
        heartbeat: Seconds of silence before a heartbeat comment; ``None`` for none.
        retry: Reconnection time (ms) for ``EventSource``, sent with the first bytes.
        headers: Extra response headers, applied over the SSE headers.
    """
    from llmsse.resumable._http import Refusal, open_reader, probed

    reader = open_reader(
        stream_id,
        request.headers,
        request.query_params,
        store=store,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
    )
    if not isinstance(reader, Refusal):
        reader = probed(reader, await reader.probe())
    if isinstance(reader, Refusal):
        if reader.status == 204:
            return Response(status_code=204)
        return PlainTextResponse(reader.message, status_code=reader.status)
    merged = {name.lower(): value for name, value in sse_headers(format).items()}
    merged.update((name.lower(), value) for name, value in (headers or {}).items())
    return _ResumedResponse(reader, merged)
