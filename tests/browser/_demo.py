"""Start ``python -m llmsse demo`` in a subprocess for the tests, and stop it with Ctrl+C."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import httpx

#: Test id -> the demo's options for one framework under one server.
CONFIGS = {
    "starlette": ["--framework", "starlette"],
    "flask": ["--framework", "flask"],
    "django-uvicorn": ["--framework", "django"],
    "django-werkzeug": ["--framework", "django", "--server", "werkzeug"],
}


def demo_env() -> dict[str, str]:
    env = dict(os.environ)
    # The tests use the offline fake model, whatever the developer's shell has.
    env.pop("OPENAI_API_KEY", None)
    env.pop("OPENAI_BASE_URL", None)
    return env


@dataclass
class Demo:
    url: str
    process: subprocess.Popen[str]
    banner: str

    def stats(self) -> dict[str, object]:
        data: dict[str, object] = httpx.get(self.url + "api/stats", timeout=5).json()
        return data


@contextmanager
def running_demo(
    *args: str, startup: float = 30, env: dict[str, str] | None = None
) -> Iterator[Demo]:
    """``python -m llmsse demo --port 0 ARGS`` until the block ends (then Ctrl+C).

    ``env`` is added to the environment, which has no ``OPENAI_*`` variables otherwise.
    """
    process = subprocess.Popen(
        [sys.executable, "-m", "llmsse", "demo", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**demo_env(), **(env or {})},
    )
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.put(process.stdout.readline()), daemon=True)
    reader.start()
    try:
        try:
            banner = lines.get(timeout=startup)
        except queue.Empty:
            raise AssertionError("the demo did not print its address") from None
        match = re.search(r"http://\S+/", banner)
        assert match, (banner, process.stderr.read() if process.poll() is not None else "")
        yield Demo(match.group(0), process, banner)
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)
            raise AssertionError("the demo did not stop on Ctrl+C") from None
        finally:
            for stream in (process.stdout, process.stderr):
                if stream is not None:
                    stream.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError("timed out")
