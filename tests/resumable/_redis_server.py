"""A real ``redis-server`` for the Redis store tests: Debian's package, on 127.0.0.1.

    with RedisServer(tmp_path) as server:          # a free port, no persistence
        store = RedisStore(url=server.url)
        server.restart()                           # killed and started again, same port and dir

    with RedisServer(tmp_path, persistent=True):   # appendonly, fsync on every write

``shared_redis_url(request)`` is the URL of one server for the whole test session (started on
first use, stopped at the end); tests that do not restart it share it, each store under a
prefix of its own.

``require_redis_server()`` skips a test when ``redis-server`` is not installed, except on CI
(``CI`` set), where it fails instead: there the Redis tests must run.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import pytest

__all__ = ["RedisServer", "require_redis_server", "shared_redis_url"]

START_TIMEOUT = 10.0


def redis_server_path() -> str | None:
    """Where ``redis-server`` is, or ``None``."""
    return shutil.which("redis-server") or next(
        (
            path
            for path in ("/usr/bin/redis-server", "/usr/sbin/redis-server")
            if os.path.exists(path)
        ),
        None,
    )


def require_redis_server() -> str:
    """The path of ``redis-server``; skips the test without it (fails on CI)."""
    path = redis_server_path()
    if path is None:
        message = (
            "redis-server is not installed: `apt-get install redis-server` "
            "(or running .ci/run, which installs it) enables the Redis store tests"
        )
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: these tests must not be skipped)")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One ``redis-server`` process in ``directory``, on 127.0.0.1 only.

    ``persistent=True`` turns on the append-only file with an fsync per write, so that
    whatever was acknowledged survives :meth:`restart` (which kills the process with
    SIGKILL, like a crash, and starts it again on the same port and data directory).
    """

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.path = require_redis_server()
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.persistent = persistent
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None
        self.log = self.directory / "redis.log"

    @property
    def url(self) -> str:
        """``redis://127.0.0.1:<port>/0``."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and return once it answers ``PING``."""
        assert self.process is None, "already running"
        command = [
            self.path,
            "--bind", "127.0.0.1",
            "--port", str(self.port),
            "--dir", str(self.directory),
            "--save", "",
            "--appendonly", "yes" if self.persistent else "no",
            "--appendfsync", "always",
            "--daemonize", "no",
            "--logfile", str(self.log),
            "--protected-mode", "yes",
        ]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self._ping():
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode() if self.process.stderr else ""
                self.process = None
                raise RuntimeError(f"redis-server exited at start: {error}{self._log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"redis-server did not answer on port {self.port}")
            time.sleep(0.01)

    def _ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def _log_tail(self) -> str:
        try:
            return "\n" + self.log.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def stop(self, *, kill: bool = True) -> None:
        """Stop the server: SIGKILL (a crash) by default, SIGTERM (a clean shutdown) with
        ``kill=False``. Does nothing when it is not running."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stderr is not None:
            process.stderr.close()

    def restart(self, *, down: float = 0.0, kill: bool = True) -> None:
        """Stop the server, wait ``down`` seconds, start it again (same port and dir)."""
        self.stop(kill=kill)
        time.sleep(down)
        self.start()

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


_shared: RedisServer | None = None


def shared_redis_url(request: pytest.FixtureRequest) -> str:
    """The URL of the session's shared server (no persistence), started on first use."""
    global _shared
    if _shared is None or _shared.process is None:
        directory = request.getfixturevalue("tmp_path_factory").mktemp("redis-shared")
        server = RedisServer(directory)
        server.start()
        request.config.add_cleanup(server.stop)
        _shared = server
    return _shared.url
