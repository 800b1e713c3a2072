"""A background task that is not tied to the caller's cancel scopes.

An async generator must not yield inside a task group (the consumer may stop
iterating from another task, or never), so the producer of a heartbeat-enabled stream
runs as a free-standing task: an asyncio ``Task`` or a trio system task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import anyio

__all__ = ["Background"]


class Background:
    """Run ``fn()`` in the background; :meth:`cancel` stops it, :meth:`wait` waits for it.

    On asyncio it is a plain ``Task`` (cancelled with ``Task.cancel()``): an idle stream
    keeps it alive for its whole life, so it is kept small. On trio it is a system task
    inside a cancel scope of its own.
    """

    __slots__ = ("_done", "_fn", "_scope", "_task")

    def __init__(self, fn: Callable[[], Awaitable[None]]) -> None:
        self._fn = fn
        self._scope: anyio.CancelScope | None = None
        self._done: anyio.Event | None = None
        self._task: asyncio.Task[None] | None = None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            import trio  # not asyncio: anyio's only other backend

            self._scope = anyio.CancelScope()
            self._done = anyio.Event()
            trio.lowlevel.spawn_system_task(self._run_in_scope)
        else:
            # The loop holds tasks weakly: this reference keeps it alive.
            self._task = loop.create_task(self._run())

    async def _run(self) -> None:
        await self._fn()

    async def _run_in_scope(self) -> None:
        assert self._scope is not None and self._done is not None
        try:
            with self._scope:
                await self._fn()
        finally:
            self._done.set()

    def cancel(self) -> None:
        if self._task is not None:
            self._task.cancel()
        elif self._scope is not None:
            self._scope.cancel()

    async def wait(self) -> None:
        if self._task is not None:
            if not self._task.done():
                await asyncio.wait((self._task,))
        elif self._done is not None:
            await self._done.wait()
