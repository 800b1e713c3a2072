"""Real servers on 127.0.0.1 for the integration tests, each run in a thread of the test process.

Running the servers in-process (not as subprocesses) lets a test look at what the app recorded
(sources, close times, ``on_complete`` results) directly. Everything listens on 127.0.0.1 only,
on a free port, and is stopped when its context manager exits.

    with serve_asgi(app, "uvicorn") as base_url:          # or "hypercorn", "hypercorn-trio"
        httpx.get(base_url + "/path")

    with serve_wsgi(wsgi_app) as base_url:                 # werkzeug's threaded dev server
        ...

    with FakeOpenAI() as fake:                             # an offline chat-completions API
        client = openai.OpenAI(base_url=fake.base_url, api_key="sk-test", max_retries=0)
        fake.script("slow", [chunk("Hi"), Pause(0.5), chunk(" there"), chunk(finish="stop")])
        client.chat.completions.create(model="slow", messages=[], stream=True)
        fake.calls[-1].closed_at                           # when the client hung up

``SyncSource`` / ``AsyncSource`` are scripted upstreams (items and ``Pause(seconds)``) that
record when each item was produced and when, how often and from where they were closed; a pause
ends early when the source is closed, like a socket read does.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import anyio

__all__ = [
    "AsyncSource",
    "Call",
    "FakeOpenAI",
    "Pause",
    "SyncSource",
    "chunk",
    "free_port",
    "serve_asgi",
    "serve_wsgi",
    "wait_for_port",
]

START_TIMEOUT = 10.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_port(port: int, timeout: float = START_TIMEOUT) -> None:
    """Return once 127.0.0.1:``port`` accepts connections; ``TimeoutError`` after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listens on 127.0.0.1:{port}") from None
            time.sleep(0.02)


@contextlib.contextmanager
def serve_asgi(app: Any, server: str = "uvicorn") -> Iterator[str]:
    """Serve an ASGI ``app`` on 127.0.0.1 with ``server`` in a thread; yield its base URL.

    ``server`` is ``"uvicorn"``, ``"hypercorn"`` (asyncio) or ``"hypercorn-trio"``. Open streams
    are cut after one second when the block exits.
    """
    port = free_port()
    if server == "uvicorn":
        runner, stop = _uvicorn(app, port)
    elif server in ("hypercorn", "hypercorn-trio"):
        runner, stop = _hypercorn(app, port, trio=server == "hypercorn-trio")
    else:
        raise ValueError(f"unknown server {server!r}: uvicorn, hypercorn or hypercorn-trio")
    thread = threading.Thread(target=runner, name=f"{server}:{port}", daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        stop()
        thread.join(timeout=5)


def _uvicorn(app: Any, port: int) -> tuple[Callable[[], None], Callable[[], None]]:
    import uvicorn

    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)

    def stop() -> None:
        server.should_exit = True

    return server.run, stop


def _hypercorn(app: Any, port: int, *, trio: bool) -> tuple[Callable[[], None], Callable[[], None]]:
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.graceful_timeout = 1
    config.accesslog = None
    config.errorlog = None
    stopping = threading.Event()

    async def shutdown_trigger() -> None:
        # Polling keeps this one function valid under asyncio and trio alike.
        while not stopping.is_set():
            await anyio.sleep(0.05)

    if trio:
        import trio as trio_module
        from hypercorn.trio import serve as trio_serve

        def run() -> None:
            trio_module.run(
                functools.partial(trio_serve, shutdown_trigger=shutdown_trigger), app, config
            )
    else:
        from hypercorn.asyncio import serve as asyncio_serve

        def run() -> None:
            asyncio.run(asyncio_serve(app, config, shutdown_trigger=shutdown_trigger))

    return run, stopping.set


@contextlib.contextmanager
def serve_wsgi(app: Any) -> Iterator[str]:
    """Serve a WSGI ``app`` on 127.0.0.1 with werkzeug's threaded server; yield its base URL."""
    from werkzeug.serving import make_server

    port = free_port()
    server = make_server("127.0.0.1", port, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name=f"wsgi:{port}", daemon=True)
    thread.start()
    try:
        wait_for_port(port)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        thread.join(timeout=5)


# --- scripted upstreams -----------------------------------------------------------------------


@dataclass(frozen=True)
class Pause:
    """A step of a script: produce nothing for ``seconds`` (a model thinking)."""

    seconds: float


class _Record:
    def __init__(self, steps: Sequence[Any]) -> None:
        self.steps = list(steps)
        self.position = 0
        #: ``time.monotonic()`` at which each item was handed out.
        self.produced_at: list[float] = []
        #: ``time.monotonic()`` of every close call (a correct consumer closes once).
        self.close_times: list[float] = []
        #: Names of the threads that asked for items.
        self.threads: set[str] = set()

    @property
    def closed_at(self) -> float | None:
        """When the source was first closed, or ``None``."""
        return self.close_times[0] if self.close_times else None

    @property
    def finished(self) -> bool:
        """Whether every step was consumed."""
        return self.position >= len(self.steps)


class SyncSource(_Record):
    """A scripted sync upstream (``__next__`` + ``close()``), like ``openai.Stream``."""

    def __init__(self, steps: Sequence[Any]) -> None:
        super().__init__(steps)
        self._closed = threading.Event()

    def __iter__(self) -> SyncSource:
        return self

    def __next__(self) -> Any:
        self.threads.add(threading.current_thread().name)
        while self.position < len(self.steps):
            step = self.steps[self.position]
            self.position += 1
            if isinstance(step, Pause):
                if self._closed.wait(step.seconds):
                    break
                continue
            if isinstance(step, BaseException):
                raise step
            self.produced_at.append(time.monotonic())
            return step
        raise StopIteration

    def close(self) -> None:
        """Close the upstream: a pending pause ends at once, nothing more is produced."""
        self.close_times.append(time.monotonic())
        self._closed.set()


class AsyncSource(_Record):
    """A scripted async upstream (``__anext__``, ``async close()``), like ``openai.AsyncStream``."""

    def __init__(self, steps: Sequence[Any]) -> None:
        super().__init__(steps)
        self._closed = threading.Event()

    def __aiter__(self) -> AsyncSource:
        return self

    async def __anext__(self) -> Any:
        self.threads.add(threading.current_thread().name)
        while self.position < len(self.steps):
            step = self.steps[self.position]
            self.position += 1
            if isinstance(step, Pause):
                deadline = time.monotonic() + step.seconds
                while not self._closed.is_set() and time.monotonic() < deadline:
                    await anyio.sleep(min(0.01, max(0.0, deadline - time.monotonic())))
                if self._closed.is_set():
                    break
                continue
            if isinstance(step, BaseException):
                raise step
            self.produced_at.append(time.monotonic())
            return step
        raise StopAsyncIteration

    async def close(self) -> None:
        """Close the upstream: a pending pause ends at once, nothing more is produced."""
        self.close_times.append(time.monotonic())
        self._closed.set()


# --- an offline chat-completions API ----------------------------------------------------------


def chunk(
    content: str | None = None,
    *,
    finish: str | None = None,
    reasoning: str | None = None,
    role: str | None = None,
) -> dict[str, Any]:
    """One chat-completion chunk as the API sends it (choice 0)."""
    delta: dict[str, Any] = {}
    if role is not None:
        delta["role"] = role
    if content is not None:
        delta["content"] = content
    if reasoning is not None:
        delta["reasoning_content"] = reasoning
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "fake",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


@dataclass
class Call:
    """One streaming request the fake API served."""

    model: str
    started_at: float
    #: When each scripted chunk was written to the socket.
    sent_at: list[float] = field(default_factory=list)
    #: When the client was seen gone (EOF or a failed write), or ``None``.
    closed_at: float | None = None
    #: Whether the whole script, ``[DONE]`` included, was written.
    completed: bool = False


class FakeOpenAI:
    """A chat-completions endpoint on 127.0.0.1 that streams scripted chunks.

    ``script(model, steps)`` registers what a request for ``model`` gets: chunk dicts, ``Pause``
    steps and, for an error in the middle of the stream, ``{"error": {...}}`` dicts. A model
    named ``"name#tag"`` gets the script of ``"name"``, so a test can find its own call with
    ``calls_for("name#tag")``. An unknown
    model is answered with HTTP 404 (the SDK raises ``NotFoundError`` at ``create()``). A script
    ends with ``data: [DONE]`` unless it contains an error. While pausing the server watches the
    socket, so ``Call.closed_at`` tells when the client hung up even on an idle stream.
    """

    def __init__(self) -> None:
        self.scripts: dict[str, list[Any]] = {}
        self.calls: list[Call] = []
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The ``base_url`` to give ``OpenAI()`` / ``AsyncOpenAI()``."""
        assert self._server is not None, "use FakeOpenAI as a context manager"
        return f"http://127.0.0.1:{self._server.server_address[1]}/v1"

    def script(self, model: str, steps: Sequence[Any]) -> None:
        """Register the stream served for requests naming ``model``."""
        self.scripts[model] = list(steps)

    def calls_for(self, model: str) -> list[Call]:
        """The calls made for ``model``, oldest first."""
        return [call for call in self.calls if call.model == model]

    def __enter__(self) -> FakeOpenAI:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length", "0"))
                request = json.loads(self.rfile.read(length) or b"{}")
                fake._serve(self, str(request.get("model")))

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        assert self._server is not None and self._thread is not None
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _serve(self, handler: BaseHTTPRequestHandler, model: str) -> None:
        steps = self.scripts.get(model.partition("#")[0])
        if steps is None:
            body = json.dumps(
                {
                    "error": {
                        "message": f"no model {model}",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                }
            ).encode()
            handler.send_response(404)
            handler.send_header("content-type", "application/json")
            handler.send_header("content-length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body)
            return
        call = Call(model=model, started_at=time.monotonic())
        self.calls.append(call)
        handler.send_response(200)
        handler.send_header("content-type", "text/event-stream")
        handler.send_header("transfer-encoding", "chunked")
        handler.send_header("connection", "close")
        handler.end_headers()
        handler.close_connection = True
        sock = handler.connection
        failed = False
        try:
            for step in steps:
                if isinstance(step, Pause):
                    if _peer_closed_within(sock, step.seconds):
                        call.closed_at = time.monotonic()
                        return
                    continue
                failed = failed or "error" in step
                _write_chunk(handler, b"data: " + json.dumps(step).encode() + b"\n\n")
                call.sent_at.append(time.monotonic())
            if not failed:
                _write_chunk(handler, b"data: [DONE]\n\n")
            _write_chunk(handler, b"")
            call.completed = True
            # Stay until the client hangs up, so closed_at is known for complete calls too.
            _peer_closed_within(sock, 5.0)
            call.closed_at = time.monotonic()
        except OSError:
            call.closed_at = time.monotonic()


def _write_chunk(handler: BaseHTTPRequestHandler, data: bytes) -> None:
    # HTTP/1.1 chunked transfer coding; an empty chunk ends the body.
    handler.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
    handler.wfile.flush()


def _peer_closed_within(sock: socket.socket, seconds: float) -> bool:
    """Wait up to ``seconds``; return ``True`` as soon as the peer closes the connection."""
    deadline = time.monotonic() + seconds
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], min(remaining, 0.05))
        if readable:
            try:
                if sock.recv(1, socket.MSG_PEEK) == b"":
                    return True
            except OSError:
                return True
            # The client sent more bytes (it should not); treat the stream as still open.
            time.sleep(0.01)
    return False
