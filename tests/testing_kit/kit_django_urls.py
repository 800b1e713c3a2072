"""URLs for the Django tests of the kit (ROOT_URLCONF while they run)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.urls import path


def _events() -> Iterator[bytes]:
    yield b"data: Hello\n"
    yield b"data: world\n\n"
    yield b'event: done\ndata: {"finish_reason":"stop","usage":null}\n\n'


async def _aevents() -> AsyncIterator[bytes]:
    for part in _events():
        yield part


def sync_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(
        _events(), content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


async def async_stream(request: HttpRequest) -> StreamingHttpResponse:
    return StreamingHttpResponse(
        _aevents(), content_type="text/event-stream", headers={"Cache-Control": "no-cache"}
    )


def plain(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"data: x\n\n", content_type="text/event-stream")


def llmsse_view(request: HttpRequest) -> StreamingHttpResponse:
    from llmsse.django import sse_response
    from llmsse.testing import chunks

    return sse_response(chunks("Hello\nfrom Django", usage=True), heartbeat=None)


urlpatterns = [
    path("sync", sync_stream),
    path("async", async_stream),
    path("plain", plain),
    path("llmsse", llmsse_view),
]
