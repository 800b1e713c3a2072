"""Sources that leave a trace on disk, so a test can see what an app in another process did.

The apps run in the test process (werkzeug, uvicorn) or in gunicorn workers; either way they
write ``<tag>.<what>`` files in ``$LLMSSE_RECORD_DIR`` with a ``time.time()`` stamp, which the
test polls with :func:`wait_record`.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

from integration.servers import AsyncSource, Pause, SyncSource
from llmsse.result import StreamResult

__all__ = ["SCRIPTS", "FileAsyncSource", "FileSyncSource", "on_complete_for", "wait_record"]

# What a scripted source produces; "idle" is a model that thinks for a minute after one piece.
SCRIPTS: dict[str, list[Any]] = {
    "short": ["Hel", "lo\nworld", " ✓"],
    "slow": ["first", Pause(1.0), "second"],
    "idle": ["first", Pause(60.0), "never"],
}


def _record(tag: str, what: str, value: str) -> None:
    directory = os.environ.get("LLMSSE_RECORD_DIR")
    if directory:
        # Written whole, then renamed: a reader never sees half a record.
        path = Path(directory, f"{tag}.{what}")
        partial = Path(directory, f"{tag}.{what}.{os.getpid()}-{threading.get_ident()}.tmp")
        partial.write_text(value)
        partial.replace(path)


def wait_record(directory: Path, tag: str, what: str, timeout: float = 10.0) -> str | None:
    """The content of ``<tag>.<what>`` once it exists, or ``None`` after ``timeout``."""
    path = directory / f"{tag}.{what}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            return path.read_text()
        time.sleep(0.02)
    return None


class FileSyncSource(SyncSource):
    """A scripted sync upstream that writes ``<tag>.closed`` (its close time) when closed."""

    def __init__(self, script: str, tag: str) -> None:
        super().__init__(SCRIPTS[script])
        self.tag = tag

    def close(self) -> None:
        if not self.close_times:
            _record(self.tag, "closed", repr(time.time()))
        super().close()


class FileAsyncSource(AsyncSource):
    """A scripted async upstream that writes ``<tag>.closed`` (its close time) when closed."""

    def __init__(self, script: str, tag: str) -> None:
        super().__init__(SCRIPTS[script])
        self.tag = tag

    async def close(self) -> None:
        if not self.close_times:
            _record(self.tag, "closed", repr(time.time()))
        await super().close()


def on_complete_for(tag: str) -> Any:
    """An ``on_complete`` that writes ``<tag>.outcome``: the outcome and the text."""

    def on_complete(result: StreamResult) -> None:
        _record(tag, "outcome", f"{result.outcome} {time.time()!r} {result.text!r}")

    return on_complete
