"""llmsse.starlette without a network: TestClient, and the ASGI callable driven by hand."""

from __future__ import annotations

import contextlib
import importlib
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

import llmsse
from integration.servers import AsyncSource, Pause, SyncSource
from llmsse.result import StreamResult
from llmsse.starlette import SSEResponse, sse_response


def events(body: bytes) -> list[tuple[str, str]]:
    return [(event.event, event.data) for event in llmsse.parse(body)]


def starlette_client(endpoint: Any) -> TestClient:
    return TestClient(Starlette(routes=[Route("/", endpoint)]))


# --- headers and body -------------------------------------------------------------------------


def test_headers_are_the_sse_ones() -> None:
    client = starlette_client(lambda request: sse_response(["Hi"]))
    response = client.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "connection" not in response.headers  # illegal on HTTP/2
    assert "content-length" not in response.headers
    assert events(response.content) == [
        ("message", "Hi"),
        ("done", '{"finish_reason":null,"usage":null}'),
    ]


def test_user_headers_and_status() -> None:
    def endpoint(request: Request) -> SSEResponse:
        return sse_response(
            ["x"], status=201, headers={"Cache-Control": "no-store", "X-Request-Id": "42"}
        )

    response = starlette_client(endpoint).get("/")
    assert response.status_code == 201
    assert response.headers["cache-control"] == "no-store"  # replaced, not duplicated
    assert response.headers.get_list("cache-control") == ["no-store"]
    assert response.headers["x-request-id"] == "42"
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


def test_head_request_sends_headers_and_closes_the_source() -> None:
    source = SyncSource(["never read", Pause(30)])
    results: list[StreamResult] = []
    client = starlette_client(lambda request: sse_response(source, on_complete=results.append))
    response = client.head("/")
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.content == b""
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]


def test_openai_format() -> None:
    response = starlette_client(lambda request: sse_response(["a", "b"], format="openai")).get("/")
    datas = [event.data for event in llmsse.parse(response.content)]
    assert datas[-1] == "[DONE]"
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"


def test_multiline_text_is_one_event() -> None:
    response = starlette_client(lambda request: sse_response(["line 1\nline 2"])).get("/")
    assert events(response.content)[0] == ("message", "line 1\nline 2")


def test_on_complete_once_finished_and_background_runs_after() -> None:
    seen: list[str] = []

    def endpoint(request: Request) -> SSEResponse:
        return SSEResponse(
            ["Hello", " world"],
            background=BackgroundTask(lambda: seen.append("background")),
            on_complete=lambda result: seen.append(f"{result.outcome}:{result.text}"),
        )

    starlette_client(endpoint).get("/")
    assert seen == ["finished:Hello world", "background"]


def test_sync_source_is_not_read_on_the_event_loop_thread() -> None:
    source = SyncSource(["a", "b"])
    loop_threads: list[str] = []

    async def endpoint(request: Request) -> SSEResponse:
        loop_threads.append(threading.current_thread().name)
        return sse_response(source)

    response = starlette_client(endpoint).get("/")
    assert events(response.content)[:2] == [("message", "a"), ("message", "b")]
    assert source.threads and loop_threads[0] not in source.threads
    assert len(source.close_times) == 1


# --- FastAPI ----------------------------------------------------------------------------------


def test_fastapi_return_value_and_response_class() -> None:
    app = FastAPI()

    @app.get("/returned")
    async def returned() -> SSEResponse:
        return sse_response(["one"])

    @app.get("/sync-gen", response_class=SSEResponse)
    def sync_gen() -> Iterator[str]:
        yield "two"

    @app.get("/async-gen", response_class=SSEResponse)
    async def async_gen() -> AsyncIterator[str]:
        yield "three"

    client = TestClient(app)
    for path, text in (("/returned", "one"), ("/sync-gen", "two"), ("/async-gen", "three")):
        response = client.get(path)
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8", path
        assert response.headers["x-accel-buffering"] == "no", path
        assert events(response.content)[0] == ("message", text), path
    schema = client.get("/openapi.json").json()
    content = schema["paths"]["/sync-gen"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in content


def test_fastapi_async_source_in_sync_route() -> None:
    app = FastAPI()

    async def pieces() -> AsyncIterator[str]:
        yield "from"
        yield " async"

    @app.get("/")
    def route() -> SSEResponse:
        return sse_response(pieces())

    response = TestClient(app).get("/")
    assert [data for _, data in events(response.content)[:2]] == ["from", " async"]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize("source", ["a str", b"bytes", 42, {"choices": []}, None])
def test_bad_source_is_a_type_error_at_the_call(source: Any) -> None:
    with pytest.raises(TypeError, match="source must be"):
        sse_response(source)


def test_unawaited_coroutine_is_a_type_error() -> None:
    async def create() -> list[str]:
        return []

    coroutine = create()
    with pytest.raises(TypeError, match="await"):
        sse_response(coroutine)
    coroutine.close()


def test_unknown_format_is_a_value_error_at_the_call() -> None:
    with pytest.raises(ValueError, match="format"):
        sse_response(["x"], format="nope")


def test_bad_on_error_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="on_error"):
        sse_response(["x"], on_error="not callable")


def test_missing_starlette_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(sys.modules):
        if name == "starlette" or name.startswith("starlette."):
            monkeypatch.setitem(sys.modules, name, None)
    monkeypatch.setitem(sys.modules, "starlette", None)
    monkeypatch.delitem(sys.modules, "llmsse.starlette")
    with pytest.raises(ImportError, match=r"pip install 'llmsse\[starlette\]'"):
        importlib.import_module("llmsse.starlette")
    # monkeypatch puts the real modules back; the adapter imports again afterwards
    monkeypatch.undo()
    assert importlib.import_module("llmsse.starlette").SSEResponse is SSEResponse


# --- errors before and after the first event --------------------------------------------------


class Boom(Exception):
    pass


def failing(after: int) -> Iterator[str]:
    yield from ["piece"] * after
    raise Boom("secret upstream detail")


def test_error_after_start_is_the_terminal_error_event() -> None:
    results: list[StreamResult] = []
    response = starlette_client(
        lambda request: sse_response(failing(1), on_complete=results.append)
    ).get("/")
    assert response.status_code == 200
    got = events(response.content)
    assert got[0] == ("message", "piece")
    assert got[-1][0] == "error"
    assert "secret" not in response.text
    assert [result.outcome for result in results] == ["failed"]


def prefetch_app() -> tuple[FastAPI, list[StreamResult]]:
    app = FastAPI()
    results: list[StreamResult] = []

    @app.exception_handler(Boom)
    async def boom_handler(request: Request, exc: Exception) -> JSONResponse:
        return JSONResponse({"error": "upstream unavailable"}, status_code=502)

    @app.get("/handled")
    async def handled(after: int) -> SSEResponse:
        response = sse_response(failing(after), on_complete=results.append)
        try:
            await response.prefetch()
        except Boom:
            raise HTTPException(503, "try again") from None
        return response

    @app.get("/unhandled")
    async def unhandled(after: int) -> SSEResponse:
        response = sse_response(failing(after), on_complete=results.append)
        await response.prefetch()  # Boom reaches the app's exception handler
        return response

    @app.get("/returned-anyway")
    async def returned_anyway() -> SSEResponse:
        response = sse_response(failing(0), on_complete=results.append)
        with contextlib.suppress(Boom):
            await response.prefetch()
        return response

    return app, results


def test_prefetch_turns_an_early_failure_into_an_http_error() -> None:
    app, results = prefetch_app()
    client = TestClient(app)
    response = client.get("/handled", params={"after": 0})
    assert response.status_code == 503
    assert response.json() == {"detail": "try again"}
    response = client.get("/unhandled", params={"after": 0})
    assert response.status_code == 502
    response = client.get("/returned-anyway")
    assert response.status_code == 502
    assert [result.outcome for result in results] == ["failed"] * 3


def test_prefetch_keeps_the_first_event_and_later_errors_stay_events() -> None:
    app, results = prefetch_app()
    response = TestClient(app).get("/handled", params={"after": 2})
    assert response.status_code == 200
    got = events(response.content)
    assert got[:2] == [("message", "piece"), ("message", "piece")]
    assert got[-1][0] == "error"
    assert [result.outcome for result in results] == ["failed"]


def test_prefetch_keeps_the_retry_preamble_and_drops_heartbeats() -> None:
    async def endpoint(request: Request) -> SSEResponse:
        response = sse_response(SyncSource([Pause(0.3), "late"]), heartbeat=0.05, retry=2000)
        await response.prefetch()
        return response

    body = starlette_client(endpoint).get("/").content
    assert body.startswith(b"retry: 2000\n")
    assert b": ping" not in body.split(b"data: late")[0]
    assert events(body)[0] == ("message", "late")


def test_prefetch_with_async_on_error_still_maps_later_errors() -> None:
    async def on_error(exc: BaseException) -> str:
        return "mapped"

    async def endpoint(request: Request) -> SSEResponse:
        response = sse_response(failing(1), on_error=on_error)
        await response.prefetch()
        return response

    got = events(starlette_client(endpoint).get("/").content)
    assert got[-1][0] == "error" and "mapped" in got[-1][1]


# --- the ASGI callable on its own: disconnects, under asyncio and trio ------------------------


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


async def run_until_disconnect(
    response: StreamingResponse, disconnect_after: int, spec_version: str = "2.3"
) -> list[bytes]:
    """Drive the response like a server whose client leaves after ``disconnect_after`` events."""
    sent: list[bytes] = []
    gone = anyio.Event()

    async def receive() -> dict[str, Any]:
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.body" and message["body"]:
            sent.append(message["body"])
            if len(sent) >= disconnect_after:
                gone.set()

    scope = {"type": "http", "asgi": {"spec_version": spec_version}, "method": "GET", "headers": []}
    with anyio.fail_after(5):
        await response(scope, receive, send)
    return sent


@pytest.mark.anyio
async def test_plain_streaming_response_misses_an_idle_disconnect_under_asgi_2_4() -> None:
    # The trap SSEResponse exists for: Starlette listens for http.disconnect only below ASGI
    # 2.4, and otherwise waits for a send to fail, which an idle stream never attempts.
    source = AsyncSource(["Hello", Pause(30)])
    response = StreamingResponse(llmsse.aiter_sse(source, heartbeat=None))
    started = time.monotonic()
    with anyio.move_on_after(0.5) as waited:
        await run_until_disconnect(response, disconnect_after=1, spec_version="2.4")
    assert waited.cancelled_caught  # still streaming, the client long gone
    # Only our own timeout, cancelling the response, closed the source.
    assert source.closed_at is None or source.closed_at - started >= 0.45


@pytest.mark.anyio
@pytest.mark.parametrize("spec_version", ["2.3", "2.4"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_disconnect_while_idle_closes_the_source_at_once(
    kind: str, spec_version: str
) -> None:
    steps = ["Hello", Pause(30)]
    source = SyncSource(steps) if kind == "sync" else AsyncSource(steps)
    results: list[StreamResult] = []
    response = sse_response(source, heartbeat=None, on_complete=results.append)
    started = time.monotonic()
    sent = await run_until_disconnect(response, disconnect_after=1, spec_version=spec_version)
    assert sent == [b"data: Hello\n\n"]
    assert source.closed_at is not None and source.closed_at - started < 1
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]


@pytest.mark.anyio
async def test_aclose_of_an_unsent_response_closes_the_source() -> None:
    source = AsyncSource(["never sent"])
    results: list[StreamResult] = []
    response = sse_response(source, on_complete=results.append)
    await response.prefetch()
    await response.aclose()
    await response.aclose()
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]


@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["sync", "async"])
@pytest.mark.parametrize("heartbeat", [None, 15.0])
async def test_aclose_before_the_first_event_still_closes_the_source(
    kind: str, heartbeat: float | None
) -> None:
    source = SyncSource(["never sent"]) if kind == "sync" else AsyncSource(["never sent"])
    results: list[StreamResult] = []
    response = sse_response(source, heartbeat=heartbeat, on_complete=results.append)
    await response.aclose()
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]


@pytest.mark.anyio
async def test_client_gone_before_the_headers_were_sent() -> None:
    source = AsyncSource(["never sent"])
    results: list[StreamResult] = []
    response = sse_response(source, on_complete=results.append)

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        await anyio.sleep(1)  # a slow server: the disconnect wins the race

    scope = {"type": "http", "asgi": {"spec_version": "2.3"}, "method": "GET", "headers": []}
    with anyio.fail_after(5):
        await response(scope, receive, send)
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]


@pytest.mark.anyio
async def test_asgi_2_4_send_failure_ends_the_stream_and_closes_the_source() -> None:
    # An ASGI 2.4 server raises OSError from send() once the client is gone.
    source = AsyncSource(["a", Pause(0.05)] * 100)
    results: list[StreamResult] = []
    response = sse_response(source, heartbeat=None, on_complete=results.append)
    bodies = 0

    async def receive() -> dict[str, Any]:
        await anyio.sleep_forever()
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        nonlocal bodies
        if message["type"] == "http.response.body":
            bodies += 1
            if bodies == 2:
                raise OSError("client gone")

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}, "method": "GET", "headers": []}
    with anyio.fail_after(5):
        await response(scope, receive, send)
    assert len(source.close_times) == 1
    assert [result.outcome for result in results] == ["disconnected"]
