"""llmsse.starlette on real servers (uvicorn, hypercorn) over 127.0.0.1, Starlette and FastAPI.

Sources: the real openai SDK (``OpenAI()`` and ``AsyncOpenAI()``) against an offline fake of the
chat-completions API, and scripted sync/async upstreams. Every app sits behind Starlette's
``GZipMiddleware`` (which must leave ``text/event-stream`` alone) and the client asks for gzip.
"""

from __future__ import annotations

import gzip
import itertools
import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx
import openai
import pytest
from fastapi import FastAPI, HTTPException
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

import llmsse
from llmsse.result import StreamResult
from llmsse.starlette import SSEResponse, sse_response

from .servers import AsyncSource, FakeOpenAI, Pause, SyncSource, serve_asgi

pytestmark = pytest.mark.integration

#: Scripts for the scripted upstreams (``/source/...?script=``), like the fake API's ones.
SCRIPTS: dict[str, list[Any]] = {
    "slow": ["Hello", Pause(0.15), " big", Pause(0.15), " world"],
    "idle": ["Hello", Pause(30)],
    "busy": ["x", Pause(0.02)] * 1500,
    "fail": ["Hello", ValueError("secret upstream detail")],
    # Blocks its reading thread for a while: the server must go on serving others meanwhile.
    "blocking": ["Hello", Pause(1.0), " world"],
    # Thinks before its first piece: heartbeats must go out meanwhile.
    "thinking": [Pause(0.35), "Hello"],
    # A short nap after the first piece, for a generator that cannot be closed while in it.
    "napping": ["Hello", Pause(1.5), " late", Pause(30)],
}

KINDS = ["openai-sync", "openai-async", "source-sync", "source-async", "gen-sync", "gen-async"]

SERVERS = [
    ("starlette", "uvicorn"),
    ("starlette", "hypercorn"),
    ("fastapi", "uvicorn"),
    ("fastapi", "hypercorn"),
    ("starlette", "hypercorn-trio"),
]
#: The servers whose event loop is asyncio: AsyncOpenAI's HTTP client (httpx on httpcore's
#: asyncio backend) runs on nothing else, so its routes are not served under hypercorn-trio.
ASYNCIO_SERVERS = [pair for pair in SERVERS if pair[1] != "hypercorn-trio"]
FASTAPI_SERVERS = [pair for pair in SERVERS if pair[0] == "fastapi"]
#: uvicorn does not speak HTTP/2; hypercorn does (prior knowledge, over cleartext).
HTTP2_SERVERS = [pair for pair in SERVERS if pair[1].startswith("hypercorn")]


# --- parametrisation: only the (server, source) combinations that exist ------------------------


def server_id(pair: tuple[str, str]) -> str:
    return "-".join(pair)


def serves(pair: tuple[str, str], kind: str) -> bool:
    """Whether ``pair`` can serve a ``kind`` route: an AsyncOpenAI one needs asyncio."""
    return kind != "openai-async" or pair in ASYNCIO_SERVERS


#: With ``on_servers()``: ``served`` stays module-scoped, one server per pair for the module.
SERVED = {"indirect": ["served"], "scope": "module"}


def on_servers(
    *axes: list[str],
    servers: list[tuple[str, str]] = SERVERS,
    unless: Callable[..., bool] = lambda *values: False,
) -> list[Any]:
    """The ``(served, *values)`` cases over ``servers`` by ``axes`` that exist, for
    ``parametrize(("served", ...), on_servers(...), **SERVED)``.

    ``axes[-1]``, if any, is the route's kind (``serves()``); ``unless(*values)`` drops more.
    Ids are those the fixture's own ``params`` give: ``starlette-uvicorn-<values...>``.
    """
    return [
        pytest.param(pair, *values, id="-".join([server_id(pair), *values]))
        for pair in servers
        for values in itertools.product(*axes)
        if not (values and not serves(pair, values[-1])) and not unless(*values)
    ]


@dataclass
class GeneratorRecord:
    """What a plain generator source did: like ``SyncSource``'s record, kept by the generator."""

    produced_at: list[float] = field(default_factory=list)
    close_times: list[float] = field(default_factory=list)

    @property
    def closed_at(self) -> float | None:
        return self.close_times[0] if self.close_times else None


def sync_generator(script: str, record: GeneratorRecord) -> Iterator[Any]:
    try:
        for step in SCRIPTS[script]:
            if isinstance(step, Pause):
                time.sleep(step.seconds)  # blocking, as sync generators are
            elif isinstance(step, BaseException):
                raise step
            else:
                record.produced_at.append(time.monotonic())
                yield step
    finally:
        record.close_times.append(time.monotonic())


async def async_generator(script: str, record: GeneratorRecord) -> AsyncIterator[Any]:
    try:
        for step in SCRIPTS[script]:
            if isinstance(step, Pause):
                await anyio.sleep(step.seconds)
            elif isinstance(step, BaseException):
                raise step
            else:
                record.produced_at.append(time.monotonic())
                yield step
    finally:
        record.close_times.append(time.monotonic())


@dataclass
class Recorder:
    """What the app did, by the ``tag`` each request carries."""

    sources: dict[str, SyncSource | AsyncSource | GeneratorRecord] = field(default_factory=dict)
    results: dict[str, list[tuple[float, StreamResult]]] = field(default_factory=dict)

    def on_complete(self, tag: str) -> Callable[[StreamResult], None]:
        def record(result: StreamResult) -> None:
            self.results.setdefault(tag, []).append((time.monotonic(), result))

        return record

    def make_source(self, tag: str, script: str, *, sync: bool) -> SyncSource | AsyncSource:
        source = SyncSource(SCRIPTS[script]) if sync else AsyncSource(SCRIPTS[script])
        self.sources[tag] = source
        return source

    def make_generator(self, tag: str, script: str, *, sync: bool) -> Any:
        record = self.sources[tag] = GeneratorRecord()
        return sync_generator(script, record) if sync else async_generator(script, record)


def options(request: Request, recorder: Recorder) -> dict[str, Any]:
    heartbeat = request.query_params.get("heartbeat", "15")
    return {
        "heartbeat": None if heartbeat == "none" else float(heartbeat),
        "on_complete": recorder.on_complete(request.query_params["tag"]),
    }


def model(request: Request) -> str:
    return f"{request.query_params['script']}#{request.query_params['tag']}"


def big_text(request: Request) -> PlainTextResponse:
    return PlainTextResponse("compressible " * 200)


def starlette_app(base_url: str, recorder: Recorder) -> Starlette:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    aclient = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)

    # A sync endpoint: Starlette runs it in a worker thread, where the blocking create() belongs.
    def openai_sync(request: Request) -> Response:
        stream = client.chat.completions.create(model=model(request), messages=[], stream=True)
        return sse_response(stream, **options(request, recorder))

    async def openai_async(request: Request) -> Response:
        stream = await aclient.chat.completions.create(
            model=model(request), messages=[], stream=True
        )
        return sse_response(stream, **options(request, recorder))

    # Sync source in an async endpoint, async source in a sync one.
    async def source_sync(request: Request) -> Response:
        tag, script = request.query_params["tag"], request.query_params["script"]
        source = recorder.make_source(tag, script, sync=True)
        return sse_response(source, **options(request, recorder))

    def source_async(request: Request) -> Response:
        tag, script = request.query_params["tag"], request.query_params["script"]
        source = recorder.make_source(tag, script, sync=False)
        return sse_response(source, **options(request, recorder))

    async def gen_sync(request: Request) -> Response:
        tag, script = request.query_params["tag"], request.query_params["script"]
        return sse_response(
            recorder.make_generator(tag, script, sync=True), **options(request, recorder)
        )

    def gen_async(request: Request) -> Response:
        tag, script = request.query_params["tag"], request.query_params["script"]
        return sse_response(
            recorder.make_generator(tag, script, sync=False), **options(request, recorder)
        )

    async def prefetched(request: Request) -> Response:
        async def answer() -> AsyncIterator[Any]:
            stream = await aclient.chat.completions.create(
                model=model(request), messages=[], stream=True
            )
            async for item in stream:
                yield item

        response = sse_response(answer(), **options(request, recorder))
        try:
            await response.prefetch()
        except openai.NotFoundError:
            return JSONResponse({"error": "no such model"}, status_code=404)
        return response

    return Starlette(
        routes=[
            Route("/openai-sync", openai_sync),
            Route("/openai-async", openai_async),
            Route("/source-sync", source_sync),
            Route("/source-async", source_async),
            Route("/gen-sync", gen_sync),
            Route("/gen-async", gen_async),
            Route("/prefetched", prefetched),
            Route("/big", big_text),
        ],
        middleware=[Middleware(GZipMiddleware, minimum_size=10)],
    )


def fastapi_app(base_url: str, recorder: Recorder) -> FastAPI:
    client = openai.OpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    aclient = openai.AsyncOpenAI(base_url=base_url, api_key="sk-test", max_retries=0)
    app = FastAPI()
    app.add_middleware(GZipMiddleware, minimum_size=10)

    # A BaseHTTPMiddleware in the stack, as many FastAPI apps have: it must not hide disconnects.
    @app.middleware("http")
    async def tag_responses(request: Request, call_next: Any) -> Response:
        response: Response = await call_next(request)
        response.headers["x-middleware"] = "seen"
        return response

    @app.get("/generator", response_class=SSEResponse)
    async def generator(script: str, tag: str) -> AsyncIterator[Any]:
        source = recorder.make_source(tag, script, sync=False)
        try:
            async for item in source:
                yield item
        finally:  # FastAPI interrupts the generator but does not close what it holds
            await source.close()

    @app.get("/openai-sync")
    def openai_sync(request: Request, script: str, tag: str) -> SSEResponse:
        stream = client.chat.completions.create(model=f"{script}#{tag}", messages=[], stream=True)
        return sse_response(stream, **options(request, recorder))

    @app.get("/openai-async")
    async def openai_async(request: Request, script: str, tag: str) -> SSEResponse:
        stream = await aclient.chat.completions.create(
            model=f"{script}#{tag}", messages=[], stream=True
        )
        return sse_response(stream, **options(request, recorder))

    @app.get("/source-sync")
    async def source_sync(request: Request, script: str, tag: str) -> SSEResponse:
        source = recorder.make_source(tag, script, sync=True)
        return sse_response(source, **options(request, recorder))

    @app.get("/source-async")
    def source_async(request: Request, script: str, tag: str) -> SSEResponse:
        source = recorder.make_source(tag, script, sync=False)
        return sse_response(source, **options(request, recorder))

    @app.get("/gen-sync")
    async def gen_sync(request: Request, script: str, tag: str) -> SSEResponse:
        generator = recorder.make_generator(tag, script, sync=True)
        return sse_response(generator, **options(request, recorder))

    @app.get("/gen-async")
    def gen_async(request: Request, script: str, tag: str) -> SSEResponse:
        generator = recorder.make_generator(tag, script, sync=False)
        return sse_response(generator, **options(request, recorder))

    @app.get("/prefetched")
    async def prefetched(request: Request, script: str, tag: str) -> SSEResponse:
        async def answer() -> AsyncIterator[Any]:
            stream = await aclient.chat.completions.create(
                model=f"{script}#{tag}", messages=[], stream=True
            )
            async for item in stream:
                yield item

        response = sse_response(answer(), **options(request, recorder))
        try:
            await response.prefetch()
        except openai.NotFoundError:
            raise HTTPException(404, "no such model") from None
        return response

    app.add_route("/big", big_text)
    return app


@dataclass
class Served:
    framework: str
    server: str
    url: str
    recorder: Recorder
    fake: FakeOpenAI


# Tests that run on only some pairs parametrise ``served`` themselves (``on_servers()``).
@pytest.fixture(scope="module", params=SERVERS, ids=server_id)
def served(request: pytest.FixtureRequest, fake_openai: FakeOpenAI) -> Iterator[Served]:
    framework, server = request.param
    recorder = Recorder()
    build = starlette_app if framework == "starlette" else fastapi_app
    with serve_asgi(build(fake_openai.base_url, recorder), server) as url:
        yield Served(framework, server, url, recorder, fake_openai)


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    # httpx asks for gzip by default; say so anyway, the GZip checks depend on it.
    with httpx.Client(timeout=10, headers={"accept-encoding": "gzip"}) as client:
        yield client


# --- helpers ----------------------------------------------------------------------------------


@dataclass
class Received:
    response: httpx.Response
    events: list[tuple[float, llmsse.ServerSentEvent]]
    body: bytes


def read_events(
    http: httpx.Client, url: str, *, stop_after: int | None = None
) -> tuple[Received, float]:
    """Stream ``url``; timestamp each event. Hang up after ``stop_after`` events; return when."""
    decoder = llmsse.SSEDecoder()
    events: list[tuple[float, llmsse.ServerSentEvent]] = []
    body = b""
    with http.stream("GET", url) as response:
        for data in response.iter_raw():
            now = time.monotonic()
            body += data
            events.extend((now, event) for event in decoder.feed(data))
            if stop_after is not None and len(events) >= stop_after:
                break
        hung_up = time.monotonic()
    return Received(response, events, body), hung_up


def stream_url(served: Served, kind: str, script: str, **params: str) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:12]
    query = "&".join(f"{k}={v}" for k, v in {"script": script, "tag": tag, **params}.items())
    return f"{served.url}/{kind}?{query}", tag


def produced_at(served: Served, kind: str, tag: str, script: str) -> list[float]:
    """When the upstream produced each text piece (for openai: when the fake API sent it)."""
    if kind.startswith("openai"):
        (call,) = served.fake.calls_for(f"{script}#{tag}")
        return call.sent_at[1:]  # the first chunk is the empty role chunk
    return served.recorder.sources[tag].produced_at


def upstream_closed_at(served: Served, kind: str, tag: str, script: str) -> float | None:
    if kind.startswith("openai"):
        calls = served.fake.calls_for(f"{script}#{tag}")
        return calls[0].closed_at if calls else None
    source = served.recorder.sources.get(tag)
    return source.closed_at if source is not None else None


def wait_for(check: Callable[[], Any], timeout: float = 2.0) -> Any:
    deadline = time.monotonic() + timeout
    while not (value := check()) and time.monotonic() < deadline:
        time.sleep(0.01)
    return value


def assert_sse_headers(response: httpx.Response) -> None:
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "connection" not in {k.lower() for k in response.headers if k.lower() == "connection"}
    # GZipMiddleware is installed and the client asked for gzip: the stream is not compressed.
    assert "content-encoding" not in response.headers
    assert "content-length" not in response.headers


# --- tests ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("served", "kind"), on_servers(KINDS), **SERVED)
def test_events_arrive_as_they_are_produced(served: Served, http: httpx.Client, kind: str) -> None:
    url, tag = stream_url(served, kind, "slow")
    received, _ = read_events(http, url)
    assert_sse_headers(received.response)
    parsed = llmsse.parse(received.body)
    assert [(e.event, e.data) for e in parsed[:3]] == [
        ("message", "Hello"),
        ("message", " big"),
        ("message", " world"),
    ]
    assert parsed[-1].event == "done"
    # The first event reached the client before the upstream produced the last piece.
    first_arrival = received.events[0][0]
    assert first_arrival < produced_at(served, kind, tag, "slow")[-1]
    (result,) = wait_for(lambda: served.recorder.results.get(tag))
    assert result[1].outcome == "finished" and result[1].text == "Hello big world"


@pytest.mark.parametrize(
    ("served", "script", "kind"),
    # A plain sync generator blocked in time.sleep() cannot be closed until the sleep returns
    # (no thread can interrupt it): (idle, gen-sync) would sleep its 30 s. What happens instead
    # is test_a_blocked_sync_generator_is_closed_once_its_sleep_returns.
    on_servers(
        ["idle", "busy"], KINDS, unless=lambda script, kind: (script, kind) == ("idle", "gen-sync")
    ),
    **SERVED,
)
def test_disconnect_closes_the_upstream_within_a_second(
    served: Served, http: httpx.Client, kind: str, script: str
) -> None:
    # heartbeat off: an idle stream sends nothing at all, so only receive() can tell.
    url, tag = stream_url(served, kind, script, heartbeat="none")
    received, hung_up = read_events(http, url, stop_after=1)
    assert received.events[0][1].data in ("Hello", "x")
    closed = wait_for(lambda: upstream_closed_at(served, kind, tag, script))
    assert closed is not None, "the upstream was never closed"
    assert closed - hung_up < 1.0
    results = wait_for(lambda: served.recorder.results.get(tag))
    assert results, "on_complete was not called"
    (when, result), *more = results
    assert not more
    assert result.outcome == "disconnected"
    assert when - hung_up < 1.0
    if not kind.startswith("openai"):
        assert len(served.recorder.sources[tag].close_times) == 1


def test_a_blocked_sync_generator_is_closed_once_its_sleep_returns(
    served: Served, http: httpx.Client
) -> None:
    # No thread can interrupt a plain generator inside time.sleep(), nor close it meanwhile
    # (SyncSource). The client's leaving is still the end of the stream at once (on_complete,
    # nothing more sent); the generator itself is closed at once if no thread is inside it,
    # else as soon as its sleep returns, not after the 30 s pause that follows.
    nap = SCRIPTS["napping"][1].seconds
    url, tag = stream_url(served, "gen-sync", "napping", heartbeat="none")
    received, hung_up = read_events(http, url, stop_after=1)
    assert received.events[0][1].data == "Hello"
    results = wait_for(lambda: served.recorder.results.get(tag))
    assert results, "on_complete was not called"
    (when, result), *more = results
    assert not more
    assert result.outcome == "disconnected" and result.text == "Hello"
    assert when - hung_up < 1.0
    record = served.recorder.sources[tag]
    closed = wait_for(lambda: record.closed_at, timeout=nap + 1.0)
    assert closed is not None, "the generator was never closed"
    assert closed - record.produced_at[0] < nap + 0.5
    assert len(record.close_times) == 1


@pytest.mark.parametrize("kind", ["openai-sync", "source-sync"])
def test_a_sync_stream_does_not_block_other_requests(
    served: Served, http: httpx.Client, kind: str
) -> None:
    # The sync upstream blocks its reading thread (1 s pause, or the fake API thinking);
    # meanwhile the server answers another request at once.
    script = "blocking" if kind == "source-sync" else "idle"
    url, _ = stream_url(served, kind, script, heartbeat="none")
    other: dict[str, float] = {}

    def reader() -> None:
        with httpx.Client(timeout=10) as client, client.stream("GET", url) as response:
            for _ in response.iter_raw():
                other["first"] = time.monotonic()
                break

    thread = threading.Thread(target=reader)
    thread.start()
    assert wait_for(lambda: "first" in other)
    time.sleep(0.1)  # now inside the pause
    started = time.monotonic()
    response = http.get(f"{served.url}/big")
    assert response.status_code == 200
    assert time.monotonic() - started < 0.5
    thread.join(timeout=5)


def test_gzip_middleware_is_active_for_other_responses(served: Served, http: httpx.Client) -> None:
    response = http.get(f"{served.url}/big")
    assert response.headers["content-encoding"] == "gzip"
    with http.stream("GET", f"{served.url}/big") as streamed:
        assert gzip.decompress(b"".join(streamed.iter_raw())) == b"compressible " * 200


@pytest.mark.parametrize(("served", "kind"), on_servers(KINDS), **SERVED)
def test_upstream_failure_is_the_terminal_error_event(
    served: Served, http: httpx.Client, kind: str
) -> None:
    url, tag = stream_url(served, kind, "fail")
    received, _ = read_events(http, url)
    assert_sse_headers(received.response)
    parsed = llmsse.parse(received.body)
    assert parsed[0].data == "Hello"
    assert parsed[-1].event == "error"
    assert "secret" not in received.body.decode()
    (result,) = wait_for(lambda: served.recorder.results.get(tag))
    assert result[1].outcome == "failed"


# The prefetched route opens an AsyncOpenAI stream: asyncio servers only.
@pytest.mark.parametrize("served", on_servers(servers=ASYNCIO_SERVERS), **SERVED)
def test_prefetch_turns_an_early_failure_into_an_http_error(
    served: Served, http: httpx.Client
) -> None:
    url, tag = stream_url(served, "prefetched", "no-such-model")
    response = http.get(url)
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/json")
    (result,) = wait_for(lambda: served.recorder.results.get(tag))
    assert result[1].outcome == "failed"

    url, tag = stream_url(served, "prefetched", "slow")
    received, _ = read_events(http, url)
    assert_sse_headers(received.response)
    assert [e.data for _, e in received.events[:3]] == ["Hello", " big", " world"]


@pytest.mark.parametrize("served", on_servers(servers=FASTAPI_SERVERS), **SERVED)
def test_fastapi_generator_endpoint_and_middleware(served: Served, http: httpx.Client) -> None:
    url, tag = stream_url(served, "generator", "slow")
    received, _ = read_events(http, url)
    assert_sse_headers(received.response)
    assert received.response.headers["x-middleware"] == "seen"
    assert [e.data for _, e in received.events[:3]] == ["Hello", " big", " world"]
    assert received.events[0][0] < served.recorder.sources[tag].produced_at[-1]

    url, tag = stream_url(served, "generator", "idle", heartbeat="none")
    received, hung_up = read_events(http, url, stop_after=1)
    closed = wait_for(lambda: served.recorder.sources[tag].closed_at)
    assert closed is not None and closed - hung_up < 1.0


def h2_open_stream(base_url: str, path: str) -> tuple[Any, Any, dict[str, str], bytes]:
    """Open an HTTP/2 (prior knowledge) GET with the h2 library; read until the first event.

    httpx cannot be used for this: closing a response early does not reset its HTTP/2 stream.
    """
    import socket

    import h2.config  # hypercorn's own dependency
    import h2.connection
    import h2.events

    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(
        1,
        [(":method", "GET"), (":path", path), (":scheme", "http"), (":authority", host)],
        end_stream=True,
    )
    sock.sendall(conn.data_to_send())
    headers: dict[str, str] = {}
    body = b""
    while b"\n\n" not in body:
        data = sock.recv(65536)
        assert data, "connection closed before the first event"
        for event in conn.receive_data(data):
            if isinstance(event, h2.events.ResponseReceived):
                headers = {k.decode(): v.decode() for k, v in event.headers}
            elif isinstance(event, h2.events.DataReceived):
                body += event.data
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
        sock.sendall(conn.data_to_send())
    return sock, conn, headers, body


@pytest.mark.parametrize("served", on_servers(servers=HTTP2_SERVERS), **SERVED)
def test_http2_stream_reset_closes_the_upstream(served: Served) -> None:
    # HTTP/2 (hypercorn, prior knowledge): the headers must be legal there (no Connection),
    # and a client cancelling one stream (RST_STREAM) on a connection it keeps open is a
    # disconnect of that request alone.
    url, tag = stream_url(served, "source-async", "idle", heartbeat="none")
    path = url.removeprefix(served.url)
    sock, conn, headers, body = h2_open_stream(served.url, path)
    try:
        assert headers[":status"] == "200"
        assert headers["content-type"] == "text/event-stream; charset=utf-8"
        assert "connection" not in headers
        assert body == b"data: Hello\n\n"
        conn.reset_stream(1)
        sock.sendall(conn.data_to_send())
        hung_up = time.monotonic()
        closed = wait_for(lambda: served.recorder.sources[tag].closed_at)
        assert closed is not None and closed - hung_up < 1.0
    finally:
        sock.close()


@pytest.mark.parametrize("kind", ["source-sync", "source-async"])
def test_heartbeats_reach_the_client_before_the_first_token(
    served: Served, http: httpx.Client, kind: str
) -> None:
    url, _ = stream_url(served, kind, "thinking", heartbeat="0.1")
    received, _ = read_events(http, url)
    head = received.body.split(b"data: Hello")[0]
    assert head.count(b": ping\n\n") >= 2  # each one flushed on its own, not held back
    assert [e.data for _, e in received.events[:1]] == ["Hello"]


# --- the page code published in docs/starlette.md ----------------------------------------------

DOCS = Path(__file__).resolve().parents[2] / "docs" / "starlette.md"


# Node.js is no Python package: skipped without it, except on CI (CI set), where it must run.
@pytest.mark.skipif(
    shutil.which("node") is None and not os.environ.get("CI"),
    reason="needs Node.js 18+ (fetch, TextDecoderStream): install Node.js to run it",
)
def test_the_documented_fetch_reader_reads_the_stream() -> None:
    match = re.search(r"```js\n(async function streamChat.*?\n})\n", DOCS.read_text(), re.S)
    assert match, "streamChat() not found in docs/starlette.md"
    app = FastAPI()

    @app.post("/chat")
    async def chat(fail: bool = False) -> SSEResponse:
        async def answer() -> AsyncIterator[Any]:
            yield llmsse.ServerSentEvent(data="hmm", event="reasoning")
            yield "Hello\nworld"
            await anyio.sleep(0.05)  # a heartbeat in the middle
            yield " again"
            if fail:
                raise RuntimeError("secret")

        return sse_response(answer(), heartbeat=0.01)

    with serve_asgi(app, "uvicorn") as url:
        # The documented function, unchanged but for the URL, once per ending.
        script = "\n".join(
            match.group(1)
            .replace("async function streamChat", f"async function {name}")
            .replace('fetch("/chat"', f'fetch("{url}/chat{query}"')
            for name, query in (("streamDone", ""), ("streamError", "?fail=true"))
        )
        script += """
async function run(streamChat) {
  let text = ""; const events = [];
  try {
    const done = await streamChat([{ role: "user", content: "Hi" }], {
      onText: (t) => { text += t; },
      onEvent: (name, data) => events.push([name, data]),
    });
    return { text, events, done };
  } catch (error) {
    return { text, events, error: error.message };
  }
}
Promise.all([run(streamDone), run(streamError)]).then((r) => console.log(JSON.stringify(r)));
"""
        out = subprocess.run(
            ["node", "-e", script], capture_output=True, text=True, timeout=20, check=True
        )
    done, failed = json.loads(out.stdout)
    for got in (done, failed):
        assert got["text"] == "Hello\nworld again"
        assert got["events"] == [["reasoning", "hmm"]]
    assert done["done"] == {"finish_reason": None, "usage": None}
    assert failed["error"] == "The response could not be completed."
