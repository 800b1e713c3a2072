"""llmsse.flask with Flask's test client, and the WSGI helpers it shares with llmsse.django."""

from __future__ import annotations

import importlib
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import flask
import pytest

import llmsse
from _chunks import chunk
from integration.servers import AsyncSource, Pause, SyncSource
from llmsse._wsgi import BackgroundIterator, DisconnectWatch, peer_closed
from llmsse.flask import sse_response
from llmsse.result import StreamResult


def _app(make: Any, **options: Any) -> flask.Flask:
    app = flask.Flask(__name__)

    @app.get("/")
    def stream() -> flask.Response:
        return sse_response(make(), **options)

    return app


def _events(app: flask.Flask, path: str = "/") -> tuple[Any, list[llmsse.ServerSentEvent]]:
    response = app.test_client().get(path)
    return response, llmsse.parse(response.data)


def _texts(events: list[llmsse.ServerSentEvent]) -> list[str]:
    return [e.data for e in events if e.event == "message"]


def test_headers_and_body_of_a_sync_source() -> None:
    response, events = _events(_app(lambda: iter(["Hel", "lo\r\nworld"])))
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-cache"
    assert response.headers["X-Accel-Buffering"] == "no"
    assert "Connection" not in response.headers
    assert "Content-Length" not in response.headers
    assert _texts(events) == ["Hel", "lo\nworld"]
    assert events[-1].event == "done"


def test_chat_completion_chunks_and_the_openai_format() -> None:
    source = [chunk({"role": "assistant", "content": "Hi"}), chunk({}, "stop")]
    response = _app(lambda: iter(source), format="openai").test_client().get("/")
    assert response.data.endswith(b"data: [DONE]\n\n")
    assert '"Hi"' in llmsse.parse(response.data)[0].data


def test_status_and_headers_override_the_defaults() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    def stream() -> flask.Response:
        return sse_response(["x"], status=201, headers={"Cache-Control": "no-store", "X-A": "1"})

    response = app.test_client().get("/")
    assert response.status_code == 201
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["X-A"] == "1"


def test_bad_source_and_unknown_format_fail_at_the_call() -> None:
    with pytest.raises(TypeError, match="source must be"):
        sse_response("just a string")
    with pytest.raises(ValueError):
        sse_response(["x"], format="nope")


async def _agen(*pieces: str) -> AsyncIterator[str]:
    for piece in pieces:
        yield piece


def test_async_source_in_a_sync_view_streams_from_the_background_loop() -> None:
    source = AsyncSource(["a", Pause(0.05), "b"])
    _, events = _events(_app(lambda: source, heartbeat=None))
    assert _texts(events) == ["a", "b"]
    assert source.threads == {"llmsse-async-bridge"}
    assert len(source.close_times) == 1


def test_async_generator_returned_from_an_async_view() -> None:
    app = flask.Flask(__name__)

    @app.get("/")
    async def stream() -> flask.Response:
        return sse_response(_agen("x", "y"))

    assert _texts(_events(app)[1]) == ["x", "y"]


class _OpenedStream:
    """Looks like an openai AsyncStream: an async iterable holding an open response."""

    response = object()

    def __aiter__(self) -> AsyncIterator[str]:
        return _agen("never")


def test_async_stream_opened_in_an_async_view_is_refused_with_advice() -> None:
    app = flask.Flask(__name__)
    app.config["PROPAGATE_EXCEPTIONS"] = True

    @app.get("/")
    async def stream() -> flask.Response:
        return sse_response(_OpenedStream())

    with pytest.raises(RuntimeError, match=r"async generator.*docs/flask\.md"):
        app.test_client().get("/")


def test_the_same_object_is_fine_in_a_sync_view() -> None:
    _, events = _events(_app(_OpenedStream, heartbeat=None))
    assert _texts(events) == ["never"]


@pytest.mark.parametrize("heartbeat", [None, 5.0])
def test_the_source_sees_the_request_context(heartbeat: float | None) -> None:
    def answer() -> Iterator[str]:
        yield flask.request.args["q"]
        yield flask.g.get("user", "?")

    app = flask.Flask(__name__)

    @app.get("/")
    def stream() -> flask.Response:
        flask.g.user = "ada"
        return sse_response(answer(), heartbeat=heartbeat)

    assert _texts(_events(app, "/?q=hello")[1]) == ["hello", "ada"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_closing_the_response_closes_the_upstream(kind: str) -> None:
    results: list[StreamResult] = []
    steps = ["first", Pause(30.0), "never"]
    source = SyncSource(steps) if kind == "sync" else AsyncSource(steps)
    app = _app(lambda: source, heartbeat=5.0, on_complete=results.append)
    response = app.test_client().get("/", buffered=False)
    body = iter(response.response)
    while b"first" not in next(body):
        pass
    response.close()  # what a WSGI server does when the client has gone
    assert len(source.close_times) == 1
    assert [r.outcome for r in results] == ["disconnected"]
    assert [r.text for r in results] == ["first"]


def test_missing_flask_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "flask", None)
    monkeypatch.delitem(sys.modules, "llmsse.flask")
    with pytest.raises(ImportError, match=r"pip install 'llmsse\[flask\]'"):
        importlib.import_module("llmsse.flask")


# --- llmsse._wsgi -------------------------------------------------------------------------------


def test_peer_closed_sees_eof_but_not_pending_data() -> None:
    ours, theirs = socket.socketpair()
    with ours, theirs:
        assert not peer_closed(ours)
        theirs.sendall(b"GET /next HTTP/1.1\r\n")  # a pipelined request: still connected
        assert not peer_closed(ours)
        assert ours.recv(100)
        theirs.close()
        assert peer_closed(ours)


def test_disconnect_watch_stops_and_closes_the_chunks() -> None:
    closed = threading.Event()

    def chunks() -> Iterator[bytes]:
        try:
            while True:
                yield b": ping\n\n"
        finally:
            closed.set()

    ours, theirs = socket.socketpair()
    with ours:
        watched = DisconnectWatch(chunks(), ours)
        assert next(watched) == b": ping\n\n"
        theirs.close()
        # A fast stream is checked at most every INTERVAL seconds, not at every chunk.
        start = time.monotonic()
        rest = list(watched)
        assert time.monotonic() - start < DisconnectWatch.INTERVAL + 0.5
        assert rest and set(rest) == {b": ping\n\n"}
        assert closed.is_set()
        # After a pause (an idle stream between heartbeats) the very next chunk is checked.
    ours, theirs = socket.socketpair()
    with ours:
        watched = DisconnectWatch(chunks(), ours)
        assert next(watched) == b": ping\n\n"
        theirs.close()
        time.sleep(DisconnectWatch.INTERVAL * 2)
        assert list(watched) == []


def test_background_iterator_uses_one_loop_and_closes_on_close() -> None:
    loops: list[Any] = []
    closed: list[bool] = []

    async def numbers() -> AsyncIterator[int]:
        import asyncio

        loops.append(asyncio.get_running_loop())
        try:
            for n in range(10):
                yield n
        finally:
            closed.append(True)

    assert list(BackgroundIterator(numbers())) == list(range(10))
    partial = BackgroundIterator(numbers())
    assert next(partial) == 0
    partial.close()
    assert closed == [True, True]
    assert loops[0] is loops[1]


def test_background_iterator_raises_what_the_iterator_raises() -> None:
    async def broken() -> AsyncIterator[int]:
        yield 1
        raise LookupError("boom")

    with pytest.raises(LookupError, match="boom"):
        list(BackgroundIterator(broken()))


def test_on_complete_runs_in_the_request_context() -> None:
    seen: list[str] = []
    app = flask.Flask(__name__)

    @app.get("/")
    def stream() -> flask.Response:
        flask.g.user = "ada"
        return sse_response(["x"], on_complete=lambda result: seen.append(flask.g.user))

    app.test_client().get("/")
    assert seen == ["ada"]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_a_response_never_iterated_still_closes_the_upstream(kind: str) -> None:
    results: list[StreamResult] = []
    source = SyncSource(["a"]) if kind == "sync" else AsyncSource(["a"])
    app = flask.Flask(__name__)

    @app.route("/", methods=["GET", "HEAD"])
    def stream() -> flask.Response:
        return sse_response(source, on_complete=results.append)

    app.test_client().head("/").close()  # werkzeug sends no body for HEAD
    assert len(source.close_times) == 1
    assert [r.outcome for r in results] == ["disconnected"]
