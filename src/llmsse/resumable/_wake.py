"""Waking a waiting task from any thread, under asyncio or trio.

The memory store is shared by everything in one process: a WSGI app produces on the
background loop of ``llmsse._wsgi`` while an ASGI app (Django under ASGI) may read on its
own loop. So a waiter remembers its loop and thread, and whoever wakes it from elsewhere
goes through that loop's thread-safe entry point.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable
from typing import Any

import anyio

__all__ = ["Waiter"]


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class Waiter:
    """One wake-up: create it in the task that will :meth:`wait`, call :meth:`wake` anywhere."""

    __slots__ = ("_event", "_future", "_loop", "_thread", "_token")

    def __init__(self) -> None:
        self._thread = threading.get_ident()
        self._future: asyncio.Future[None] | None = None
        self._event: Any = None
        self._token: Any = None
        try:
            self._loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            import trio  # not asyncio: anyio's only other backend

            self._loop = None
            self._event = trio.Event()
            self._token = trio.lowlevel.current_trio_token()
        else:
            self._future = self._loop.create_future()

    def wake(self) -> None:
        """Wake the waiting task (idempotent; from any thread; never raises)."""
        same_thread = threading.get_ident() == self._thread
        if self._future is not None:
            assert self._loop is not None
            if same_thread:
                _resolve(self._future)
            else:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    self._loop.call_soon_threadsafe(_resolve, self._future)
        else:
            set_event: Callable[[], None] = self._event.set
            if same_thread:
                set_event()
            else:
                import trio

                with contextlib.suppress(trio.RunFinishedError):
                    self._token.run_sync_soon(set_event)

    async def wait(self, timeout: float | None) -> bool:
        """Wait until woken or ``timeout`` seconds passed; ``True`` when woken."""
        if self._future is not None:
            if timeout is None:
                await asyncio.wait((self._future,))
            elif not self._future.done():
                await asyncio.wait((self._future,), timeout=timeout)
            return self._future.done()
        with anyio.move_on_after(timeout):
            await self._event.wait()
        return bool(self._event.is_set())
