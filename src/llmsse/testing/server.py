"""The fake OpenAI API on a real local HTTP server (127.0.0.1, a free port, its own thread)."""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import TYPE_CHECKING, Any

from llmsse.testing.errors import error_body
from llmsse.testing.fake_api import (
    FakeOpenAI,
    RecordedRequest,
    Reply,
    Responder,
    _Plan,
    _trio_ready,
)

if TYPE_CHECKING:
    import openai

__all__ = ["FakeChatServer"]

_DISCONNECTS = (BrokenPipeError, ConnectionResetError, ConnectionAbortedError, socket.timeout)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # Keep-alive connections of a client may still be open: never wait for their threads.
    block_on_close = False
    fake: FakeOpenAI
    stopping: threading.Event

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that hangs up on a keep-alive connection (as the SDK does after an
        # error event) is ordinary here, not a traceback on the test's console.
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Server
    # An idle keep-alive connection ends after this, so no thread outlives a test for long.
    timeout = 10

    def log_message(self, format: str, *args: Any) -> None:
        pass  # a test's output is no place for an access log

    def do_POST(self) -> None:
        self._answer()

    def do_GET(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length) if length else b""
        path = self.path.partition("?")[0]
        try:
            plan = self.server.fake._plan(self.command, path, dict(self.headers.items()), body)
        except Exception as exc:
            # A responder that raises is a bug in the test: say so to the client, not to stderr.
            self._fail(exc)
            return
        try:
            if plan.status == 200 and plan.headers[0][1].startswith("text/event-stream"):
                self._stream(plan)
            else:
                self._send_whole(plan)
        except _DISCONNECTS:
            plan.record.disconnected = True
            self.close_connection = True
        finally:
            plan.record.closed = True
            if plan.record.finished_at is None:
                plan.record.finished_at = time.monotonic()

    def _fail(self, exc: Exception) -> None:
        message = f"FakeOpenAI could not answer: {type(exc).__name__}: {exc}"
        body = json.dumps({"error": error_body(500, message, type="fake_error")}).encode()
        self.send_response(500)
        self.send_header("content-type", "application/json")
        self.send_header("x-should-retry", "false")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _send_whole(self, plan: _Plan) -> None:
        body = b"".join(plan.parts)
        self.send_response(plan.status)
        for name, value in plan.headers:
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()
        plan.record.parts_sent = plan.record.parts

    def _stream(self, plan: _Plan) -> None:
        self.send_response(plan.status)
        for name, value in plan.headers:
            self.send_header(name, value)
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        stopping = self.server.stopping
        for index, part in enumerate(plan.parts):
            wait = plan.wait_before(index)
            if wait and stopping.wait(wait):
                self.close_connection = True
                return
            self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.flush()
            plan.record.parts_sent += 1
        if plan.drop:
            # Leave the chunked body unterminated and hang up: a dropped connection.
            plan.record.disconnected = True
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()


class FakeChatServer:
    """The fake OpenAI API (:class:`FakeOpenAI`) served over HTTP on ``127.0.0.1``.

    Use it as a context manager (or ``start()`` / ``stop()``); it listens on a free port in
    a background thread. Point any OpenAI-compatible client at :attr:`base_url`::

        with FakeChatServer() as server:
            server.reply("Hello!")
            client = openai.OpenAI(base_url=server.base_url, api_key="sk-fake")

    Args:
        fake: The fake API to serve (a new one by default); its script and records are shared.
        host: The interface to listen on; keep the default (loopback only).
        port: The port; 0 picks a free one.
    """

    def __init__(self, fake: FakeOpenAI | None = None, *, host: str = "127.0.0.1", port: int = 0):
        self.fake = fake if fake is not None else FakeOpenAI()
        self.host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The port it listens on (known once started)."""
        if self._server is None:
            raise RuntimeError("FakeChatServer is not started: use `with server:` or start()")
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """The ``base_url`` for an OpenAI client: ``http://127.0.0.1:<port>/v1``."""
        return f"{self.url}/v1"

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received (the fake's record)."""
        return self.fake.requests

    def reply(self, *replies: Reply | str | Responder) -> FakeChatServer:
        """Add replies to the fake's script; returns the server, for chaining."""
        self.fake.reply(*replies)
        return self

    def start(self) -> FakeChatServer:
        """Start listening and serving in a daemon thread."""
        if self._server is not None:
            return self
        server = _Server((self.host, self._port), _Handler)
        server.fake = self.fake
        server.stopping = threading.Event()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"llmsse-fake-openai-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: paced streams are cut, the socket is closed, the thread joined."""
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def client(self, **kwargs: Any) -> openai.OpenAI:
        """A real ``openai.OpenAI`` pointed at this server (``max_retries=0`` by default)."""
        import openai

        kwargs.setdefault("api_key", self.fake.api_key or "sk-fake")
        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("max_retries", 0)
        return openai.OpenAI(**kwargs)

    def async_client(self, **kwargs: Any) -> openai.AsyncOpenAI:
        """A real ``openai.AsyncOpenAI`` pointed at this server."""
        import openai

        kwargs.setdefault("api_key", self.fake.api_key or "sk-fake")
        kwargs.setdefault("base_url", self.base_url)
        kwargs.setdefault("max_retries", 0)
        return _trio_ready(openai.AsyncOpenAI(**kwargs))

    def __enter__(self) -> FakeChatServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
