"""A background task that is not tied to the caller's cancel scopes.

An async generator must not yield inside a task group (the consumer may stop
iterating from another task, or never), so the producer of a heartbeat-enabled stream
runs as a free-standing task: an asyncio ``Task`` or a trio system task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import anyio

__all__ = ["Background"]


class Background:
    """Run ``fn()`` in the background; :meth:`cancel` stops it, :meth:`wait` waits for it."""

    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._fn = fn
        self._scope = anyio.CancelScope()
        self._done = anyio.Event()
        self._task: Any = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            import trio  # not asyncio: anyio's only other backend

            trio.lowlevel.spawn_system_task(self._run)
        else:
            # The loop holds tasks weakly: keep a reference for the task's lifetime.
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        try:
            with self._scope:
                await self._fn()
        finally:
            self._done.set()

    def cancel(self) -> None:
        self._scope.cancel()

    async def wait(self) -> None:
        await self._done.wait()
