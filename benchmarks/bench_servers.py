"""End-to-end SSE benchmarks on real servers over loopback: llmsse beside its peers.

Run from the repository root::

    python benchmarks/bench_servers.py                 # ~5-8 min on a quiet 2-CPU machine
    python benchmarks/bench_servers.py --quick         # ~1-2 min smoke run
    python benchmarks/bench_servers.py --json out.json # also save raw samples + machine facts

Every server runs in its own process (pinned to CPU 0 when there are 2 CPUs or more), the
client in this one (pinned to CPU 1); everything listens on 127.0.0.1 only, and every server
is killed at the end, also on error or Ctrl-C. The sections:

1. ``long``: one stream of N events (default 50,000) through uvicorn; events/s received and
   server CPU seconds per 10,000 events, for five contenders on the same FastAPI app:
   ``floor`` (a ``StreamingResponse`` of llmsse's own bytes, pre-encoded), ``naive`` (the
   f-string loop in a ``StreamingResponse``), ``llmsse`` (``sse_response``, text format,
   async source, heartbeats on), ``sse-starlette`` (``EventSourceResponse`` of dicts) and
   ``fastapi.sse`` (a generator endpoint with ``response_class=EventSourceResponse``
   yielding ``ServerSentEvent(raw_data=...)``).
2. ``concurrent``: 200 streams at once (default 500 events each), total events/s.
3. ``idle``: server RSS growth per open stream at 1,000 and 3,000 idle streams that get only
   heartbeats (a fresh server per contender and round).
4. ``disconnect``: time from the client closing its socket to the upstream source being
   closed (the source writes a monotonic timestamp to a file), for a stream that is sending
   (an event every 20 ms) and an idle one (heartbeat 1 s), per adapter and server:
   Starlette/FastAPI under uvicorn, Flask under gunicorn (gthread), Django under uvicorn.
5. ``wsgi-django``: one long stream through Flask under gunicorn (gthread, sync source) and
   Django under uvicorn (async source), llmsse against the hand-written loop in each.

Rounds are interleaved (the order rotates each round); figures are medians over rounds and
ratios are medians of the per-round paired ratios. This is a benchmark, never a test: it
prints PASS/MISS and exits 0 (``--strict`` exits 1 on a miss).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import errno
import json
import os
import random
import resource
import select
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from typing import Any, ClassVar

HERE = os.path.dirname(os.path.abspath(__file__))
if HERE not in sys.path:
    sys.path.insert(0, HERE)

from bench_encode import CORPUS, _tokens, machine_facts  # noqa: E402

# At module level: FastAPI resolves the routes' (string) annotations in this module's globals.
from starlette.requests import Request  # noqa: E402

ASGI_CONTENDERS = ["floor", "naive", "llmsse", "llmsse/event", "sse-starlette", "fastapi.sse"]
try:  # the bench extra; without it that row is skipped (the smoke test runs without it)
    import sse_starlette  # noqa: F401
except ImportError:
    ASGI_CONTENDERS.remove("sse-starlette")
ROUTES = {
    "floor": "/floor",
    "naive": "/naive",
    "llmsse": "/llmsse",
    "llmsse/event": "/llmsse-per-event",
    "sse-starlette": "/sse-starlette",
    "fastapi.sse": "/fastapi",
}
ROUTES = {name: route for name, route in ROUTES.items() if name in ASGI_CONTENDERS}
NOTES = {
    "floor": "StreamingResponse of pre-encoded bytes",
    "naive": 'f"data: {piece}\\n\\n" loop (wrong on line breaks)',
    "llmsse": "sse_response(async source), heartbeat=15 s",
    "llmsse/event": "StreamingResponse(aiter_sse(...)): one send per event",
    "sse-starlette": "EventSourceResponse of {'data': piece}, ping=15 s",
    "fastapi.sse": "response_class=EventSourceResponse, ServerSentEvent(raw_data=...)",
}
WSGI_NOTES = {
    "gunicorn": {
        "naive": "flask.Response(generator of f-strings), sync source",
        "llmsse": "llmsse.flask.sse_response(sync source), heartbeat=15 s",
    },
    "uvicorn": {
        "naive": "StreamingHttpResponse(async generator of f-strings)",
        "llmsse": "llmsse.django.sse_response(async source), heartbeat=15 s",
    },
}
DRIP_INTERVAL = 0.02  # seconds between events of a "sending" stream in the disconnect test
IDLE_HEARTBEAT_DISCONNECT = 1.0
START_TIMEOUT = 20.0


def pieces() -> list[str]:
    """The text deltas every source sends, cycled: prose, markdown and code, ~4 chars each."""
    return _tokens(CORPUS, random.Random(1))


# ======================================================================================
# Server side (runs in the server process: ``bench_servers.py --serve KIND``)
# ======================================================================================


class Recorder:
    """Appends ``tag monotonic-time kind`` lines to a file; one line per source."""

    def __init__(self, path: str | None) -> None:
        self.path = path

    def __call__(self, tag: str, kind: str) -> None:
        if not tag or not self.path:
            return
        line = f"{tag} {time.monotonic():.6f} {kind}\n".encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)


def _params(get: Callable[[str, str], str]) -> dict[str, Any]:
    return {
        "mode": get("mode", "stream"),
        "n": int(get("n", "1000")),
        "tag": get("tag", ""),
        "idle": float(get("idle", "30")),
        "hb": float(get("hb", "15")),
    }


async def async_source(record: Recorder, mode: str, n: int, tag: str, idle: float, **_: Any) -> Any:
    """An upstream model: ``n`` pieces at once, one per 20 ms (drip), or nothing (idle)."""
    ps = PIECES
    count = len(ps)
    ended = False
    try:
        if mode == "stream":
            for i in range(n):
                yield ps[i % count]
        elif mode == "drip":
            for i in range(n):
                await asyncio.sleep(DRIP_INTERVAL)
                yield ps[i % count]
        else:  # idle: think for ``idle`` seconds, then end
            await asyncio.sleep(idle)
        ended = True
    finally:
        record(tag, "end" if ended else "closed")


class SyncSource:
    """A sync upstream (an HTTP stream): ``close()`` interrupts a pending read, as closing a
    socket does; when dropped without ``close()`` it records ``collected``."""

    def __init__(
        self, record: Recorder, mode: str, n: int, tag: str, idle: float, **_: Any
    ) -> None:
        self.record, self.mode, self.n, self.tag, self.idle = record, mode, n, tag, idle
        self.i = 0
        self.done = False
        self.wake = threading.Event()

    def __iter__(self) -> SyncSource:
        return self

    def _finish(self, kind: str) -> None:
        if not self.done:
            self.done = True
            self.record(self.tag, kind)

    def __next__(self) -> str:
        if self.done:
            raise StopIteration
        if self.mode == "idle":
            if not self.wake.wait(self.idle):
                self._finish("end")
            raise StopIteration
        if self.i >= self.n:
            self._finish("end")
            raise StopIteration
        if self.mode == "drip" and self.wake.wait(DRIP_INTERVAL):
            raise StopIteration
        self.i += 1
        return PIECES[(self.i - 1) % len(PIECES)]

    def close(self) -> None:
        self._finish("closed")
        self.wake.set()

    def __del__(self) -> None:
        self._finish("collected")


PIECES: list[str] = []
ENCODED: list[bytes] = []
PING = b": ping\n\n"


def _init_pieces() -> None:
    from llmsse import ServerSentEvent

    PIECES[:] = pieces()
    ENCODED[:] = [ServerSentEvent(data=p).encode() for p in PIECES]


async def floor_body(mode: str, n: int, hb: float, idle: float, **_: Any) -> Any:
    """The floor: llmsse's bytes pre-encoded; when idle, a bare heartbeat loop."""
    if mode == "idle":
        deadline = time.monotonic() + idle
        while time.monotonic() < deadline:
            await asyncio.sleep(hb)
            yield PING
        return
    enc = ENCODED
    count = len(enc)
    for i in range(n):
        yield enc[i % count]


async def naive_body(source: Any) -> Any:
    async for piece in source:
        yield f"data: {piece}\n\n"


def build_asgi_app(record: Recorder, fastapi_ping: float) -> Any:
    """One ASGI app: the five Starlette-family contenders (FastAPI routes) and /dj/* (Django)."""
    import fastapi.routing
    from fastapi import FastAPI
    from fastapi.responses import PlainTextResponse, StreamingResponse
    from fastapi.sse import EventSourceResponse, ServerSentEvent

    from llmsse import aiter_sse
    from llmsse.starlette import sse_response

    fastapi.routing._PING_INTERVAL = fastapi_ping  # type: ignore[attr-defined]
    fa = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    def q(request: Request) -> dict[str, Any]:
        return _params(lambda k, d: request.query_params.get(k, d))

    @fa.get("/ping")
    async def ping() -> PlainTextResponse:
        return PlainTextResponse("pong")

    @fa.get("/floor")
    async def floor(request: Request) -> StreamingResponse:
        return StreamingResponse(floor_body(**q(request)), media_type="text/event-stream")

    @fa.get("/naive")
    async def naive(request: Request) -> StreamingResponse:
        p = q(request)
        return StreamingResponse(
            naive_body(async_source(record, **p)), media_type="text/event-stream"
        )

    @fa.get("/llmsse")
    async def llmsse_route(request: Request) -> Any:
        p = q(request)
        return sse_response(async_source(record, **p), heartbeat=p["hb"])

    @fa.get("/llmsse-per-event")
    async def llmsse_per_event(request: Request) -> StreamingResponse:
        # The same pipeline without sse_response's send loop, which sends the events that
        # are ready at once in one message: the cost of one send per event.
        p = q(request)
        events = aiter_sse(async_source(record, **p), heartbeat=p["hb"])
        return StreamingResponse(events, media_type="text/event-stream")

    @fa.get("/sse-starlette")
    async def sse_starlette(request: Request) -> Any:
        from sse_starlette import EventSourceResponse as SSEStarletteResponse

        p = q(request)

        async def events() -> Any:
            async for piece in async_source(record, **p):
                yield {"data": piece}

        return SSEStarletteResponse(events(), ping=p["hb"])

    @fa.get("/fastapi", response_class=EventSourceResponse)
    async def fastapi_sse(
        mode: str = "stream", n: int = 1000, tag: str = "", idle: float = 30.0
    ) -> Any:
        async for piece in async_source(record, mode, n, tag, idle):
            yield ServerSentEvent(raw_data=piece)

    dj = build_django(record, asgi=True)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"].startswith("/dj/"):
            await dj(scope, receive, send)
        else:
            await fa(scope, receive, send)

    return app


def build_django(record: Recorder, asgi: bool) -> Any:
    import django
    from django.conf import settings

    class URLConf:
        urlpatterns: ClassVar[list[Any]] = []

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench",
        ALLOWED_HOSTS=["*"],
        ROOT_URLCONF=URLConf,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
    )
    django.setup()
    from django.core.handlers.asgi import ASGIHandler
    from django.http import StreamingHttpResponse
    from django.urls import path

    from llmsse.django import sse_response

    def q(request: Any) -> dict[str, Any]:
        return _params(lambda k, d: request.GET.get(k, d))

    async def naive(request: Any) -> StreamingHttpResponse:
        p = q(request)
        return StreamingHttpResponse(
            naive_body(async_source(record, **p)),
            content_type="text/event-stream",
            headers={"Cache-Control": "no-cache"},
        )

    async def llmsse_view(request: Any) -> Any:
        p = q(request)
        return sse_response(async_source(record, **p), heartbeat=p["hb"])

    URLConf.urlpatterns = [path("dj/naive", naive), path("dj/llmsse", llmsse_view)]
    return ASGIHandler()


def build_flask(record: Recorder) -> Any:
    import flask

    from llmsse.flask import sse_response

    app = flask.Flask("bench")

    def q() -> dict[str, Any]:
        return _params(lambda k, d: flask.request.args.get(k, d))

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    @app.get("/naive")
    def naive() -> flask.Response:
        src = SyncSource(record, **q())

        def body() -> Iterator[str]:
            for piece in src:
                yield f"data: {piece}\n\n"

        return flask.Response(
            body(), mimetype="text/event-stream", headers={"Cache-Control": "no-cache"}
        )

    @app.get("/llmsse")
    def llmsse_view() -> flask.Response:
        p = q()
        return sse_response(SyncSource(record, **p), heartbeat=p["hb"])

    return app


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 65536
    want = min(want, 65536)
    if soft < want:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def serve(kind: str, port: int, record_path: str | None, fastapi_ping: float) -> None:
    raise_fd_limit()
    _init_pieces()
    record = Recorder(record_path)
    if kind == "uvicorn":
        import uvicorn

        app = build_asgi_app(record, fastapi_ping)
        uvicorn.run(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            access_log=False,
            lifespan="off",
            backlog=4096,
        )
    elif kind == "gunicorn":
        from gunicorn.app.base import BaseApplication

        flask_app = build_flask(record)

        class Gunicorn(BaseApplication):  # type: ignore[misc]
            def load_config(self) -> None:
                for key, value in {
                    "bind": f"127.0.0.1:{port}",
                    "workers": 1,
                    "worker_class": "gthread",
                    "threads": 32,
                    "loglevel": "warning",
                    "accesslog": None,
                    "timeout": 120,
                    "graceful_timeout": 1,
                }.items():
                    self.cfg.set(key, value)

            def load(self) -> Any:
                return flask_app

        Gunicorn().run()
    else:
        raise SystemExit(f"unknown server kind {kind!r}")


# ======================================================================================
# Client side: raw sockets, so the client costs far less than the server per event
# ======================================================================================


def _request(path: str) -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


def http_get(port: int, path: str, timeout: float, capture: bool = False) -> dict[str, Any]:
    """One request read to EOF; returns elapsed seconds, bytes and (capture) the raw response."""
    buf = bytearray(1 << 18)
    view = memoryview(buf)
    parts: list[bytes] = []
    total = 0
    deadline = time.monotonic() + timeout
    t0 = time.perf_counter()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(_request(path))
        while True:
            if time.monotonic() > deadline:
                raise TimeoutError(f"GET {path} took more than {timeout:.0f} s")
            got = sock.recv_into(buf)
            if not got:
                break
            total += got
            if capture:
                parts.append(bytes(view[:got]))
    t1 = time.perf_counter()
    return {"elapsed": t1 - t0, "bytes": total, "raw": b"".join(parts) if capture else None}


def http_get_many(port: int, path: str, k: int, timeout: float) -> dict[str, Any]:
    """``k`` concurrent requests, each read to EOF with one epoll loop."""
    ep = select.epoll()
    socks: dict[int, socket.socket] = {}
    buf = bytearray(1 << 16)
    total = 0
    t0 = time.perf_counter()
    deadline = time.monotonic() + timeout
    try:
        req = _request(path)
        for _ in range(k):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            s.sendall(req)
            s.setblocking(False)
            socks[s.fileno()] = s
            ep.register(s.fileno(), select.EPOLLIN)
        while socks:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{k} x GET {path} took more than {timeout:.0f} s")
            for fd, _ev in ep.poll(1.0):
                s = socks[fd]
                try:
                    got = s.recv_into(buf)
                except BlockingIOError:
                    continue
                if got:
                    total += got
                else:
                    ep.unregister(fd)
                    s.close()
                    del socks[fd]
        t1 = time.perf_counter()
    finally:
        for s in socks.values():
            s.close()
        ep.close()
    return {"elapsed": t1 - t0, "bytes": total}


def _rst_close(s: socket.socket) -> None:
    # Close with a reset: no TIME_WAIT, so thousands of connections per round do not use up
    # the ephemeral ports.
    with contextlib.suppress(OSError):
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    s.close()


def open_idle(port: int, path: str, k: int, timeout: float) -> list[socket.socket]:
    """Open ``k`` streams and return once every one has its response headers."""
    ep = select.epoll()
    pending: dict[int, tuple[socket.socket, bytearray]] = {}
    done: list[socket.socket] = []
    req = _request(path)
    deadline = time.monotonic() + timeout
    try:
        opened = 0
        while opened < k or pending:
            if time.monotonic() > deadline:
                raise TimeoutError(f"only {len(done)} of {k} idle streams started")
            while opened < k and len(pending) < 200:
                s = socket.create_connection(("127.0.0.1", port), timeout=10)
                s.sendall(req)
                s.setblocking(False)
                pending[s.fileno()] = (s, bytearray())
                ep.register(s.fileno(), select.EPOLLIN)
                opened += 1
            for fd, _ev in ep.poll(0.5):
                s, got = pending[fd]
                try:
                    data = s.recv(65536)
                except BlockingIOError:
                    continue
                if not data:
                    raise ConnectionError("an idle stream ended early")
                got += data
                if b"\r\n\r\n" in got:
                    if not got.startswith(b"HTTP/1.1 200"):
                        raise ConnectionError(bytes(got[:200]).decode(errors="replace"))
                    ep.unregister(fd)
                    del pending[fd]
                    done.append(s)
    except BaseException:
        for s in done:
            _rst_close(s)
        for s, _ in pending.values():
            _rst_close(s)
        raise
    finally:
        ep.close()
    return done


def dechunk(raw: bytes) -> tuple[bytes, bytes]:
    """Split an HTTP/1.1 response into (headers, body), undoing chunked transfer coding."""
    head, _, rest = raw.partition(b"\r\n\r\n")
    if b"transfer-encoding: chunked" not in head.lower():
        return head, rest
    out = []
    pos = 0
    while True:
        eol = rest.index(b"\r\n", pos)
        size = int(rest[pos:eol].split(b";")[0], 16)
        if size == 0:
            break
        out.append(rest[eol + 2 : eol + 2 + size])
        pos = eol + 2 + size + 2
    return head, b"".join(out)


def text_of(body: bytes) -> tuple[str, int]:
    from llmsse import parse

    events = parse(body)
    data = [ev.data for ev in events if ev.event in (None, "", "message") and ev.data is not None]
    return "".join(data), len(data)


# ======================================================================================
# Server processes
# ======================================================================================


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pin(cpu: int) -> Callable[[], None]:
    def pin() -> None:
        if hasattr(os, "sched_setaffinity") and (os.cpu_count() or 1) >= 2:
            os.sched_setaffinity(0, {cpu})

    return pin


def _proc_stat(pid: int) -> list[str]:
    with open(f"/proc/{pid}/stat", encoding="ascii") as f:
        return f.read().rsplit(")", 1)[1].split()


class Server:
    """A server process (and its process group), killed on exit however the run ends."""

    live: ClassVar[list[Server]] = []

    def __init__(self, kind: str, record: str | None = None, fastapi_ping: float = 15.0) -> None:
        self.kind = kind
        self.port = _free_port()
        cmd = [sys.executable, os.path.abspath(__file__), "--serve", kind, "--port", str(self.port)]
        cmd += ["--fastapi-ping", str(fastapi_ping)]
        if record:
            cmd += ["--record", record]
        self.proc = subprocess.Popen(
            cmd, preexec_fn=_pin(0), start_new_session=True, stdin=subprocess.DEVNULL
        )
        Server.live.append(self)
        self._wait_ready()
        self.pids = self._tree()
        # the process that serves the requests: gunicorn's worker, else the process itself
        self.worker = self.pids[-1]

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} server exited with {self.proc.returncode}")
            try:
                r = http_get(self.port, "/ping", timeout=5, capture=True)
                if r["raw"].startswith(b"HTTP/1.1 200"):
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.kind} server did not start")
            time.sleep(0.1)

    def _tree(self) -> list[int]:
        pids = [self.proc.pid]
        for _ in range(50):  # gunicorn forks its worker after binding: wait for it
            children = []
            for entry in os.listdir("/proc"):
                if entry.isdigit():
                    with contextlib.suppress(OSError, IndexError):
                        if int(_proc_stat(int(entry))[1]) in pids:
                            children.append(int(entry))
            if children or self.kind != "gunicorn":
                return pids + sorted(children)
            time.sleep(0.1)
        return pids

    def cpu(self) -> float:
        """User + system CPU seconds of the server's processes (all their threads)."""
        tick = os.sysconf("SC_CLK_TCK")
        total = 0
        for pid in self.pids:
            with contextlib.suppress(OSError):
                f = _proc_stat(pid)
                total += int(f[11]) + int(f[12])
        return total / tick

    def rss_kb(self) -> int:
        with open(f"/proc/{self.worker}/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        raise RuntimeError("no VmRSS")

    def stop(self) -> None:
        if self in Server.live:
            Server.live.remove(self)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(timeout=10)

    @classmethod
    def stop_all(cls) -> None:
        for server in list(cls.live):
            server.stop()


# ======================================================================================
# The sections
# ======================================================================================


def rotate(items: list[Any], r: int) -> list[Any]:
    k = r % len(items)
    return items[k:] + items[:k]


def expected_text(n: int) -> str:
    ps = pieces()
    return "".join(ps[i % len(ps)] for i in range(n))


def verify(port: int, route: str, n: int, timeout: float) -> dict[str, Any]:
    """Untimed: the whole stream captured and decoded; does the text come back exactly?"""
    r = http_get(port, f"{route}?n={n}", timeout, capture=True)
    head, body = dechunk(r["raw"])
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"{route}: {r['raw'][:300]!r}")
    got, events = text_of(body)
    return {
        "status_line": head.split(b"\r\n", 1)[0].decode(),
        "text_ok": got == expected_text(n),
        "data_events": events,
        "crlf": b"\r\n" in body,
        "body_bytes": len(body),
    }


def section_long(
    server: Server,
    routes: dict[str, str],
    n: int,
    rounds: int,
    budget: float,
    timeout: float,
) -> dict[str, Any]:
    names = list(routes)
    checks = {name: verify(server.port, routes[name], min(n, 5000), timeout) for name in names}
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in names}
    start = time.monotonic()
    for r in range(rounds):
        for name in rotate(names, r):
            c0 = server.cpu()
            res = http_get(server.port, f"{routes[name]}?n={n}", timeout)
            c1 = server.cpu()
            samples[name].append(
                {
                    "elapsed_s": res["elapsed"],
                    "events_per_s": n / res["elapsed"],
                    "server_cpu_s": c1 - c0,
                    "cpu_s_per_10k": (c1 - c0) / n * 10_000,
                    "bytes": res["bytes"],
                }
            )
        if r >= 1 and time.monotonic() - start > budget:
            print(f"  (time budget reached after {r + 1} rounds)", file=sys.stderr)
            break
    return {"events": n, "samples": samples, "checks": checks}


def section_concurrent(
    server: Server, k: int, n: int, rounds: int, budget: float, timeout: float
) -> dict[str, Any]:
    samples: dict[str, list[dict[str, float]]] = {name: [] for name in ASGI_CONTENDERS}
    start = time.monotonic()
    for r in range(rounds):
        for name in rotate(ASGI_CONTENDERS, r):
            c0 = server.cpu()
            res = http_get_many(server.port, f"{ROUTES[name]}?n={n}", k, timeout)
            c1 = server.cpu()
            samples[name].append(
                {
                    "elapsed_s": res["elapsed"],
                    "events_per_s": k * n / res["elapsed"],
                    "server_cpu_s": c1 - c0,
                    "cpu_s_per_10k": (c1 - c0) / (k * n) * 10_000,
                }
            )
        if r >= 1 and time.monotonic() - start > budget:
            print(f"  (time budget reached after {r + 1} rounds)", file=sys.stderr)
            break
    return {"streams": k, "events_per_stream": n, "samples": samples}


def section_idle(
    counts: list[int], rounds: int, heartbeat: float, timeout: float
) -> dict[str, Any]:
    # llmsse/event differs from llmsse only in how a burst is sent: no row of its own here.
    names = [name for name in ASGI_CONTENDERS if name != "llmsse/event"]
    samples: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    hold = heartbeat + 0.5  # every stream has sent (or been due) one heartbeat
    for r in range(rounds):
        for name in rotate(names, r):
            server = Server("uvicorn", fastapi_ping=heartbeat)
            socks: list[socket.socket] = []
            try:
                path = f"{ROUTES[name]}?mode=idle&hb={heartbeat}&idle={timeout * 4:.0f}"
                # warm the route (first-request costs are not per-stream costs)
                for s in open_idle(server.port, path, 20, timeout):
                    _rst_close(s)
                time.sleep(0.5)
                base = server.rss_kb()
                row: dict[str, Any] = {"baseline_kb": base}
                for count in counts:
                    socks += open_idle(server.port, path, count - len(socks), timeout)
                    time.sleep(hold)
                    rss = server.rss_kb()
                    row[str(count)] = {"rss_kb": rss, "kb_per_stream": (rss - base) / count}
                samples[name].append(row)
            finally:
                for s in socks:
                    _rst_close(s)
                server.stop()
    return {"counts": counts, "heartbeat_s": heartbeat, "samples": samples}


def _read_records(path: str) -> dict[str, tuple[float, str]]:
    out: dict[str, tuple[float, str]] = {}
    with contextlib.suppress(FileNotFoundError), open(path, encoding="ascii") as f:
        for line in f:
            tag, t, kind = line.split()
            out.setdefault(tag, (float(t), kind))
    return out


def disconnect_trial(
    port: int, route: str, mode: str, record: str, wait: float, tag: str
) -> dict[str, Any]:
    hb = IDLE_HEARTBEAT_DISCONNECT if mode == "idle" else 15.0
    path = f"{route}?mode={mode}&n=1000&idle=30&hb={hb}&tag={tag}"
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    got = bytearray()
    try:
        s.sendall(_request(path))
        s.settimeout(0.1)
        deadline = time.monotonic() + (1.5 if mode == "idle" else 5.0)
        while time.monotonic() < deadline:
            try:
                data = s.recv(65536)
            except TimeoutError:
                data = None
            if data == b"":
                break
            if data:
                got += data
            if mode == "drip" and got.count(b"data:") >= 3:
                break
            if mode == "idle" and b"\r\n\r\n" in got:
                time.sleep(0.2)
                break
    finally:
        t_close = time.monotonic()
        s.close()  # an orderly close (FIN), as a browser tab going away
    limit = t_close + wait
    while time.monotonic() < limit:
        rec = _read_records(record).get(tag)
        if rec is not None:
            break
        time.sleep(0.005)
    rec = _read_records(record).get(tag)
    if rec is None:
        return {"seconds": None, "kind": "not closed", "headers": b"\r\n\r\n" in got}
    t, kind = rec
    return {
        "seconds": t - t_close if kind != "end" else None,
        "kind": kind,
        "headers": b"\r\n\r\n" in got,
    }


def section_disconnect(
    servers: dict[str, Server], record: str, trials: int, wait: float
) -> dict[str, Any]:
    cases = [
        ("uvicorn", "starlette: llmsse", "/llmsse"),
        ("uvicorn", "starlette: naive", "/naive"),
        ("uvicorn", "starlette: sse-starlette", "/sse-starlette"),
        ("uvicorn", "starlette: fastapi.sse", "/fastapi"),
        ("gunicorn", "flask: llmsse", "/llmsse"),
        ("gunicorn", "flask: naive", "/naive"),
        ("uvicorn", "django: llmsse", "/dj/llmsse"),
        ("uvicorn", "django: naive", "/dj/naive"),
    ]
    cases = [
        c for c in cases if c[0] != "uvicorn" or c[2].startswith("/dj/") or c[2] in ROUTES.values()
    ]
    results: dict[str, dict[str, list[dict[str, Any]]]] = {
        name: {"drip": [], "idle": []} for _, name, _ in cases
    }
    counter = 0
    for t in range(trials):
        for mode in ("drip", "idle"):
            for server_kind, name, route in rotate(cases, t):
                counter += 1
                tag = f"t{os.getpid()}x{counter}"
                res = disconnect_trial(servers[server_kind].port, route, mode, record, wait, tag)
                results[name][mode].append(res)
    return {
        "drip_interval_s": DRIP_INTERVAL,
        "idle_heartbeat_s": IDLE_HEARTBEAT_DISCONNECT,
        "wait_s": wait,
        "results": results,
    }


# ======================================================================================
# Reporting
# ======================================================================================


def med(samples: list[dict[str, Any]], key: str) -> float:
    return statistics.median(s[key] for s in samples)


def paired(a: list[dict[str, Any]], b: list[dict[str, Any]], key: str) -> float:
    return statistics.median(x[key] / y[key] for x, y in zip(a, b, strict=False))


def print_rate_table(title: str, res: dict[str, Any], ref: str, cpu: bool = True) -> None:
    print(f"\n{title}")
    hdr = f"  {'contender':<16}{'events/s':>10}{'best':>10}{'vs ' + ref:>12}"
    hdr += f"{'cpu s/10k':>11}" if cpu else ""
    print(hdr + "  note")
    samples = res["samples"]
    for name, s in samples.items():
        if not s:
            continue
        line = (
            f"  {name:<16}{med(s, 'events_per_s'):>10,.0f}"
            f"{max(x['events_per_s'] for x in s):>10,.0f}"
            f"{paired(s, samples[ref], 'events_per_s'):>11.2f}x"
        )
        if cpu:
            line += f"{med(s, 'cpu_s_per_10k'):>11.3f}"
        check = res.get("checks", {}).get(name)
        note = res.get("notes", NOTES).get(name, "")
        if check is not None and not check["text_ok"]:
            note = "TEXT WRONG; " + note
        print(line + "  " + note)


def summarize(results: dict[str, Any]) -> list[dict[str, Any]]:
    targets: list[dict[str, Any]] = []
    long = results.get("long")
    if long:
        s = long["samples"]
        ratio = paired(s["llmsse"], s["floor"], "events_per_s")
        targets.append(
            {
                "target": "llmsse >= 0.9x the floor's events/s (long stream, heartbeats on)",
                "value": ratio,
                "limit": 0.9,
                "ok": ratio >= 0.9,
            }
        )
        if "llmsse/event" in s:
            ratio = paired(s["llmsse/event"], s["floor"], "events_per_s")
            targets.append(
                {
                    "target": "  the same pipeline sending one event per send (llmsse/event)",
                    "value": ratio,
                    "limit": 0.9,
                    "ok": ratio >= 0.9,
                }
            )
    idle = results.get("idle")
    if idle:
        for count in idle["counts"]:
            v = statistics.median(
                row[str(count)]["kb_per_stream"] for row in idle["samples"]["llmsse"]
            )
            targets.append(
                {
                    "target": f"llmsse idle stream <= 35 KB at {count} streams",
                    "value": v,
                    "limit": 35.0,
                    "ok": v <= 35.0,
                }
            )
    return targets


def report(results: dict[str, Any]) -> None:
    if "long" in results:
        n = results["long"]["events"]
        print_rate_table(f"1. One long stream, uvicorn, {n:,} events", results["long"], "floor")
    if "concurrent" in results:
        c = results["concurrent"]
        print_rate_table(
            f"2. {c['streams']} concurrent streams x {c['events_per_stream']:,} events, uvicorn"
            " (total events/s)",
            c,
            "floor",
        )
    if "idle" in results:
        idle = results["idle"]
        counts = idle["counts"]
        print(f"\n3. Idle streams, uvicorn, heartbeat {idle['heartbeat_s']:g} s: server RSS growth")
        print("  " + f"{'contender':<16}" + "".join(f"{f'KB/stream @{c}':>18}" for c in counts))
        for name, rows in idle["samples"].items():
            if rows:
                vals = [statistics.median(r[str(c)]["kb_per_stream"] for r in rows) for c in counts]
                print(f"  {name:<16}" + "".join(f"{v:>18.1f}" for v in vals))
    if "disconnect" in results:
        d = results["disconnect"]
        print(
            f"\n4. Disconnect: client closes -> upstream closed (ms, median; 'sending' = an event "
            f"every {d['drip_interval_s'] * 1000:.0f} ms, 'idle' = heartbeat "
            f"{d['idle_heartbeat_s']:g} s where the contender has one; waited {d['wait_s']:g} s)"
        )
        print(f"  {'adapter':<28}{'sending':>14}{'idle':>14}")
        for name, modes in d["results"].items():
            cells = [fmt_disconnect(modes[m]) for m in ("drip", "idle")]
            print(f"  {name:<28}{cells[0]:>14}{cells[1]:>14}")
    if "wsgi-django" in results:
        for key, res in results["wsgi-django"].items():
            print_rate_table(f"5. {key}, one long stream of {res['events']:,} events", res, "naive")


def fmt_disconnect(trials: list[dict[str, Any]]) -> str:
    secs = [t["seconds"] for t in trials if t["seconds"] is not None]
    if not trials:
        return "-"
    if len(secs) < len(trials):
        missing = len(trials) - len(secs)
        if not secs:
            return "never"
        return f"{statistics.median(secs) * 1000:.0f} ({missing} never)"
    return f"{statistics.median(secs) * 1000:.0f}"


def facts() -> dict[str, Any]:
    f = machine_facts()
    for dist in ("uvicorn", "h11", "httptools", "uvloop", "flask", "gunicorn", "django", "anyio"):
        try:
            f["packages"][dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            f["packages"][dist] = None
    return f


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--serve", choices=["uvicorn", "gunicorn"], help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--record", help=argparse.SUPPRESS)
    ap.add_argument("--fastapi-ping", type=float, default=15.0, help=argparse.SUPPRESS)
    ap.add_argument("--quick", action="store_true", help="a ~1-2 minute smoke run")
    ap.add_argument(
        "--sections",
        default="long,concurrent,idle,disconnect,wsgi-django",
        help="comma-separated subset of the sections to run",
    )
    ap.add_argument(
        "--contenders",
        help="comma-separated subset of the uvicorn contenders (floor and llmsse always run)",
    )
    ap.add_argument("--events", type=int, help="events in the long stream (default 50000)")
    ap.add_argument("--rounds", type=int, help="rounds of the rate sections (default 5)")
    ap.add_argument("--streams", type=int, help="concurrent streams (default 200)")
    ap.add_argument("--stream-events", type=int, help="events per concurrent stream (500)")
    ap.add_argument("--idle", help="idle stream counts, e.g. 1000,3000 (default)")
    ap.add_argument("--idle-rounds", type=int, help="rounds of the idle section (default 2)")
    ap.add_argument(
        "--idle-heartbeat",
        type=float,
        default=2.0,
        help="heartbeat of the idle streams, seconds (default 2)",
    )
    ap.add_argument("--trials", type=int, help="disconnect trials per case (default 5)")
    ap.add_argument("--wait", type=float, help="disconnect: longest wait for the close (3 s)")
    ap.add_argument("--wsgi-events", type=int, help="events in section 5 (default 20000)")
    ap.add_argument(
        "--budget",
        type=float,
        help="seconds after which a rate section stops adding rounds (at least 2; default 90)",
    )
    ap.add_argument("--json", metavar="PATH", help="write raw samples and machine facts here")
    ap.add_argument("--strict", action="store_true", help="exit 1 if a target is missed")
    args = ap.parse_args(argv)

    if args.serve:
        serve(args.serve, args.port, args.record, args.fastapi_ping)
        return 0

    if args.contenders:
        keep = {"floor", "llmsse", "llmsse/event", *(c.strip() for c in args.contenders.split(","))}
        ASGI_CONTENDERS[:] = [c for c in ASGI_CONTENDERS if c in keep]
        for name in list(ROUTES):
            if name not in keep:
                del ROUTES[name]
    q = args.quick
    events = args.events or (5_000 if q else 50_000)
    rounds = args.rounds or (3 if q else 5)
    streams = args.streams or (50 if q else 200)
    stream_events = args.stream_events or (200 if q else 500)
    counts = [int(c) for c in (args.idle or ("200,600" if q else "1000,3000")).split(",")]
    idle_rounds = args.idle_rounds or 1 if q else args.idle_rounds or 2
    trials = args.trials or (2 if q else 5)
    wait = args.wait or (2.0 if q else 3.0)
    wsgi_events = args.wsgi_events or (3_000 if q else 20_000)
    budget = args.budget or (20.0 if q else 90.0)
    sections = [s.strip() for s in args.sections.split(",") if s.strip()]
    timeout = 120.0

    fd_limit = raise_fd_limit()
    if max(counts) + 100 > fd_limit:
        print(f"fd limit {fd_limit} is too low for {max(counts)} streams", file=sys.stderr)
        return 2
    _pin(1)()
    f = facts()
    print(
        f"llmsse server benchmark: Python {f['python']} on {f['platform']}, {f['cpu_count']} "
        f"CPUs ({f['cpu_model']}); server pinned to CPU 0, client to CPU 1"
    )
    pk = f["packages"]
    print("  " + ", ".join(f"{k} {v}" for k, v in pk.items() if v is not None))
    results: dict[str, Any] = {}
    record_dir = tempfile.mkdtemp(prefix="llmsse-bench-")
    record = os.path.join(record_dir, "closed.txt")
    t_start = time.monotonic()
    # Ctrl-C or a kill of the client: the servers go too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        if "long" in sections or "concurrent" in sections:
            server = Server("uvicorn")
            try:
                for name in ASGI_CONTENDERS:  # warm-up: imports, first-request costs
                    http_get(server.port, f"{ROUTES[name]}?n=2000", timeout)
                if "long" in sections:
                    print(f"\n[long] {events:,} events x {len(ASGI_CONTENDERS)} contenders ...")
                    results["long"] = section_long(server, ROUTES, events, rounds, budget, timeout)
                if "concurrent" in sections:
                    print(f"[concurrent] {streams} x {stream_events} events ...")
                    results["concurrent"] = section_concurrent(
                        server, streams, stream_events, rounds, budget, timeout
                    )
            finally:
                server.stop()
        if "idle" in sections:
            print(
                f"[idle] {counts} streams x {len(ASGI_CONTENDERS) - 1} contenders x "
                f"{idle_rounds} rounds ..."
            )
            results["idle"] = section_idle(counts, idle_rounds, args.idle_heartbeat, 60.0)
        if "disconnect" in sections or "wsgi-django" in sections:
            servers = {
                "uvicorn": Server("uvicorn", record=record),
                "gunicorn": Server("gunicorn", record=record),
            }
            try:
                if "disconnect" in sections:
                    print(f"[disconnect] {trials} trials x 8 cases x 2 modes ...")
                    results["disconnect"] = section_disconnect(servers, record, trials, wait)
                if "wsgi-django" in sections:
                    print(f"[wsgi-django] {wsgi_events:,} events ...")
                    wd = {}
                    for label, kind, routes in (
                        (
                            "Flask under gunicorn (gthread)",
                            "gunicorn",
                            {"naive": "/naive", "llmsse": "/llmsse"},
                        ),
                        (
                            "Django under uvicorn (ASGI)",
                            "uvicorn",
                            {"naive": "/dj/naive", "llmsse": "/dj/llmsse"},
                        ),
                    ):
                        srv = servers[kind]
                        for route in routes.values():
                            http_get(srv.port, f"{route}?n=2000", timeout)
                        wd[label] = section_long(srv, routes, wsgi_events, rounds, budget, timeout)
                        wd[label]["notes"] = WSGI_NOTES[kind]
                    results["wsgi-django"] = wd
            finally:
                for srv in servers.values():
                    srv.stop()
    finally:
        Server.stop_all()
        with contextlib.suppress(OSError):
            os.remove(record)
            os.rmdir(record_dir)

    elapsed = time.monotonic() - t_start
    report(results)
    targets = summarize(results)
    if targets:
        print("\nTargets (issue: end-to-end benchmarks), medians of per-round paired ratios:")
        for t in targets:
            print(f"  [{'PASS' if t['ok'] else 'MISS'}] {t['target']:<66} {t['value']:.2f}")
    print(f"\n(total run time {elapsed:.0f} s)")
    if args.json:
        out = {
            "benchmark": "bench_servers",
            "time_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": f,
            "config": {
                "quick": q,
                "sections": sections,
                "events": events,
                "rounds": rounds,
                "streams": streams,
                "stream_events": stream_events,
                "idle_counts": counts,
                "idle_rounds": idle_rounds,
                "disconnect_trials": trials,
                "wsgi_events": wsgi_events,
                "server_cpu": 0,
                "client_cpu": 1,
                "run_seconds": elapsed,
            },
            "results": results,
            "targets": targets,
        }
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(out, fh, indent=2)
            fh.write("\n")
        print(f"raw results written to {args.json}")
    if args.strict and not all(t["ok"] for t in targets):
        return 1
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        Server.stop_all()
        sys.exit(130)
    except OSError as exc:
        if exc.errno == errno.EMFILE:
            print("too many open files: raise the fd limit (ulimit -n)", file=sys.stderr)
        raise
