"""llmsse.django with Django's test clients (WSGI-style Client, ASGI-style AsyncClient)."""

from __future__ import annotations

import importlib
import sys
import warnings
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from django.http import HttpRequest, StreamingHttpResponse
from django.middleware.gzip import GZipMiddleware
from django.test import AsyncClient, Client, RequestFactory
from django.test.utils import override_settings
from django.urls import path

import llmsse
from integration.apps import django_app  # configures Django when nothing else has
from integration.servers import AsyncSource, Pause, SyncSource
from llmsse.django import SSEResponse, sse_response
from llmsse.result import StreamResult

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"  # Django's ASGI handler is asyncio-only


async def _agen(*pieces: str) -> AsyncIterator[str]:
    for piece in pieces:
        yield piece


class _OpenedStream:
    """Looks like an openai AsyncStream: an async iterable holding an open response."""

    response = object()

    def __aiter__(self) -> AsyncIterator[str]:
        return _agen("from the stream")


def sync_view(request: HttpRequest) -> SSEResponse:
    return sse_response(iter(["Hel", "lo\r\nworld"]), heartbeat=None)


def sync_view_async_source(request: HttpRequest) -> SSEResponse:
    return sse_response(_agen("a", "b"), heartbeat=None)


async def async_view(request: HttpRequest) -> SSEResponse:
    return sse_response(_agen("a", "b"))


async def async_view_sync_source(request: HttpRequest) -> SSEResponse:
    return sse_response(iter(["a", "b"]))


async def async_view_opened_stream(request: HttpRequest) -> SSEResponse:
    return sse_response(_OpenedStream())


def custom(request: HttpRequest) -> SSEResponse:
    return sse_response(["x"], status=201, headers={"Cache-Control": "no-store"})


urlpatterns = [
    path("sync", sync_view),
    path("sync-async-source", sync_view_async_source),
    path("async", async_view),
    path("async-sync-source", async_view_sync_source),
    path("async-opened", async_view_opened_stream),
    path("custom", custom),
]


@pytest.fixture(autouse=True)
def _settings() -> Iterator[None]:
    with override_settings(**{**django_app.SETTINGS, "ROOT_URLCONF": __name__}):
        yield


@pytest.fixture(autouse=True)
def _no_django_fallbacks() -> Iterator[None]:
    # Django warns ("must consume ... iterators") whenever it collects a stream into a list.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _texts(body: bytes) -> list[str]:
    return [e.data for e in llmsse.parse(body) if e.event == "message"]


def _check_headers(response: Any) -> None:
    assert response["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response["Cache-Control"] == "no-cache"
    assert response["X-Accel-Buffering"] == "no"
    assert response["Content-Encoding"] == "identity"
    assert not response.has_header("Connection")


@pytest.mark.parametrize(
    ("url", "texts"),
    [
        ("/sync", ["Hel", "lo\nworld"]),
        ("/sync-async-source", ["a", "b"]),
        ("/async", ["a", "b"]),
        ("/async-sync-source", ["a", "b"]),
    ],
)
def test_wsgi_style_client(url: str, texts: list[str]) -> None:
    response = Client().get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert isinstance(response, SSEResponse)
    assert not response.is_async  # what a WSGI server can iterate
    _check_headers(response)
    body = b"".join(response.streaming_content)
    assert _texts(body) == texts
    assert llmsse.parse(body)[-1].event == "done"


@pytest.mark.parametrize(
    ("url", "texts"),
    [
        ("/sync", ["Hel", "lo\nworld"]),
        ("/sync-async-source", ["a", "b"]),
        ("/async", ["a", "b"]),
        ("/async-sync-source", ["a", "b"]),
        ("/async-opened", ["from the stream"]),
    ],
)
async def test_asgi_style_client(url: str, texts: list[str]) -> None:
    response = await AsyncClient().get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response.is_async  # served on the loop, sync sources in worker threads
    _check_headers(response)
    body = b"".join([part async for part in response.streaming_content])
    assert _texts(body) == texts


def test_status_and_headers_override_the_defaults() -> None:
    response = Client().get("/custom")
    assert response.status_code == 201
    assert response["Cache-Control"] == "no-store"


def test_async_stream_opened_in_an_async_view_under_wsgi_is_refused_with_advice() -> None:
    with pytest.raises(RuntimeError, match=r"async generator.*docs/django\.md"):
        Client().get("/async-opened")


def test_bad_source_and_unknown_format_fail_at_the_call() -> None:
    with pytest.raises(TypeError, match="source must be"):
        sse_response(42)
    with pytest.raises(ValueError):
        sse_response(["x"], format="nope")


def test_gzip_middleware_leaves_the_stream_alone() -> None:
    request = RequestFactory().get("/", HTTP_ACCEPT_ENCODING="gzip")
    ours = sse_response(iter(["x"] * 100), heartbeat=None)
    iterator = ours._iterator
    assert GZipMiddleware(lambda r: ours)(request) is ours
    assert ours._iterator is iterator and ours["Content-Encoding"] == "identity"
    # Without it, Django wraps the stream in one gzip stream that is flushed only at the end.
    plain = StreamingHttpResponse(iter([b"data: x\n\n"] * 100), content_type="text/event-stream")
    assert GZipMiddleware(lambda r: plain)(request)["Content-Encoding"] == "gzip"


def test_made_outside_a_request_it_still_serves_either_way() -> None:
    sync_from_async = sse_response(_agen("a"), heartbeat=None)
    assert sync_from_async.is_async
    assert _texts(b"".join(sync_from_async)) == ["a"]  # background loop, no collecting
    sync_from_async.close()


async def test_made_outside_a_request_a_sync_source_is_served_on_a_loop_from_threads() -> None:
    def made() -> SSEResponse:
        return sse_response(iter(["a", "b"]), heartbeat=None)

    import anyio.to_thread

    response = await anyio.to_thread.run_sync(made)  # no loop, no request: built for WSGI
    assert not response.is_async
    assert _texts(b"".join([part async for part in response])) == ["a", "b"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_wsgi_close_closes_the_upstream(kind: str) -> None:
    results: list[StreamResult] = []
    steps = ["first", Pause(30.0), "never"]
    source = SyncSource(steps) if kind == "sync" else AsyncSource(steps)
    from llmsse.django import _environ

    token = _environ.set({})  # as during a WSGI request
    try:
        response = sse_response(source, heartbeat=5.0, on_complete=results.append)
    finally:
        _environ.reset(token)
    body = iter(response)
    while b"first" not in next(body):
        pass
    response.close()  # what a WSGI server does when the client has gone
    assert len(source.close_times) == 1
    assert [(r.outcome, r.text) for r in results] == [("disconnected", "first")]


@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_asgi_cancel_closes_the_upstream(kind: str) -> None:
    import anyio

    results: list[StreamResult] = []
    steps = ["first", Pause(30.0), "never"]
    source = SyncSource(steps) if kind == "sync" else AsyncSource(steps)
    response = sse_response(source, heartbeat=5.0, on_complete=results.append)
    assert response.is_async

    async def consume() -> None:
        async for part in response:
            if b"first" in part:
                started.set()

    started = anyio.Event()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(consume)
            await started.wait()
            tg.cancel_scope.cancel()  # what Django's ASGI handler does on http.disconnect
    assert len(source.close_times) == 1
    assert [r.outcome for r in results] == ["disconnected"]


def test_missing_django_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django.http", None)
    monkeypatch.delitem(sys.modules, "llmsse.django")
    with pytest.raises(ImportError, match=r"pip install 'llmsse\[django\]'"):
        importlib.import_module("llmsse.django")


def _loop_running() -> bool:
    import asyncio

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


async def test_a_sync_on_complete_runs_off_the_loop_where_the_orm_works() -> None:
    seen: list[bool] = []
    response = sse_response(_agen("a"), on_complete=lambda result: seen.append(_loop_running()))
    assert response.is_async
    assert _texts(b"".join([part async for part in response])) == ["a"]
    assert seen == [False]


def test_an_async_on_complete_works_under_wsgi_too() -> None:
    results: list[StreamResult] = []

    async def save(result: StreamResult) -> None:
        results.append(result)

    response = sse_response(iter(["a"]), on_complete=save, heartbeat=None)
    assert not response.is_async
    assert _texts(b"".join(response)) == ["a"]
    assert [r.outcome for r in results] == ["finished"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_wsgi_response_never_iterated_still_closes_the_upstream(kind: str) -> None:
    from llmsse.django import _environ

    source = SyncSource(["a"]) if kind == "sync" else AsyncSource(["a"])
    token = _environ.set({})  # as during a WSGI request
    try:
        response = sse_response(source)
    finally:
        _environ.reset(token)
    response.close()
    assert len(source.close_times) == 1
