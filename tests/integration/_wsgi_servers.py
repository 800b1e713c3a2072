"""gunicorn for the Flask and Django integration tests, and an SSE reader for all of them.

gunicorn runs the app in worker processes, so the apps record what happened to their
sources in files (``integration/apps/_record.py``); the werkzeug and uvicorn helpers of
``integration.servers`` run in this process.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import httpx

import llmsse
from integration.servers import free_port, wait_for_port

__all__ = ["SSEReader", "serve_gunicorn"]

_TESTS = Path(__file__).resolve().parent.parent
_GUNICORN = Path(sys.executable).with_name("gunicorn")


@contextlib.contextmanager
def serve_gunicorn(
    app: str, worker: str, env: Mapping[str, str], *, workers: int = 2, threads: int = 4
) -> Iterator[str]:
    """Run ``gunicorn`` on 127.0.0.1 with ``worker`` ("sync" or "gthread"); yield its base URL.

    The process is stopped (SIGTERM, then SIGKILL after 5 s) when the block exits.
    """
    port = free_port()
    command = [
        str(_GUNICORN),
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        worker,
        "--workers",
        str(workers),
        "--threads",
        str(threads),
        "--graceful-timeout",
        "1",
        "--pythonpath",
        str(_TESTS),
        "--log-level",
        "warning",
        app,
    ]
    process = subprocess.Popen(
        command, env={**os.environ, **env}, cwd=_TESTS.parent, stdin=subprocess.DEVNULL
    )
    try:
        wait_for_port(port, timeout=20)
        yield f"http://127.0.0.1:{port}"
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


class SSEReader:
    """Reads an SSE response event by event (heartbeats skipped), noting when each arrived."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        #: Every event received so far, and the ``time.monotonic()`` of its arrival.
        self.events: list[llmsse.ServerSentEvent] = []
        self.arrived: list[float] = []
        self._read = 0
        self._decoder = llmsse.SSEDecoder()
        self._raw = response.iter_raw()

    def next_event(self) -> llmsse.ServerSentEvent | None:
        """The next event, or ``None`` at the end of the response."""
        while self._read == len(self.events):
            piece = next(self._raw, None)
            if piece is None:
                return None
            new = self._decoder.feed(piece)
            self.events.extend(new)
            self.arrived.extend([time.monotonic()] * len(new))
        self._read += 1
        return self.events[self._read - 1]

    def rest(self) -> list[llmsse.ServerSentEvent]:
        """Every event up to the end of the response, those already read included."""
        while self.next_event() is not None:
            pass
        return self.events


# --- checks shared by the Flask and Django integration tests ------------------------------------

HEADERS = {
    "content-type": "text/event-stream; charset=utf-8",
    "cache-control": "no-cache",
    "x-accel-buffering": "no",
}


def check_headers(response: httpx.Response) -> None:
    """The SSE headers are on the wire, and nothing compressed the body."""
    for name, value in HEADERS.items():
        assert response.headers.get(name) == value, (name, response.headers)
    assert response.headers.get("content-encoding", "identity") == "identity"


def texts(events: list[llmsse.ServerSentEvent]) -> list[str]:
    """The data of the unnamed (text) events."""
    return [event.data for event in events if event.event == "message"]


def read_stream(base_url: str, path: str, **kwargs: object) -> tuple[httpx.Response, bytes]:
    """GET ``path`` to the end; the response and its raw body."""
    with httpx.Client(timeout=10) as client:
        response = client.get(base_url + path, **kwargs)  # type: ignore[arg-type]
    return response, response.content


def first_event_then_hang_up(
    base_url: str, path: str
) -> tuple[llmsse.ServerSentEvent, float, float]:
    """Read the first event of ``path``, then close the connection.

    Returns the event and when the connection was closed, as ``time.time()`` (to compare
    with what another process recorded) and as ``time.monotonic()``.
    """
    with httpx.Client(timeout=10) as client, client.stream("GET", base_url + path) as response:
        assert response.status_code == 200, response.read()
        check_headers(response)
        event = SSEReader(response).next_event()
        assert event is not None
        # Leaving the block closes the connection mid-stream.
    return event, time.time(), time.monotonic()


def check_first_event_early(base_url: str, path: str, pause: float) -> None:
    """The first event arrives while the source is still producing (it pauses ``pause`` s)."""
    with httpx.Client(timeout=10) as client:
        started = time.monotonic()
        with client.stream("GET", base_url + path) as response:
            reader = SSEReader(response)
            first = reader.next_event()
            first_at = time.monotonic()
            events = reader.rest()
    assert first is not None and first.data == "first"
    assert first_at - started < pause - 0.5, "the first event waited for the source"
    assert texts(events) == ["first", "second"]
    assert reader.arrived[1] - first_at > pause - 0.3
    assert events[-1].event == "done"


def check_served_while_streaming(base_url: str, stream_path: str) -> None:
    """Another request is answered at once while a stream of ``stream_path`` is open."""
    with (
        httpx.Client(timeout=10) as streaming,
        httpx.Client(timeout=10) as other,
        streaming.stream("GET", base_url + stream_path) as response,
    ):
        assert SSEReader(response).next_event() is not None  # the stream is running
        started = time.monotonic()
        pong = other.get(base_url + "/ping")
        assert pong.status_code == 200 and pong.content == b"pong"
        assert time.monotonic() - started < 1.0
