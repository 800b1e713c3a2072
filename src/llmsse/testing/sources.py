"""Fake upstream streams shaped like ``openai.Stream`` and ``openai.AsyncStream``.

They yield what they were given, optionally with a delay between items and an error after
some of them, and they record how they were used: whether, how many times and when they
were closed, how far they were read, and on which threads (so a test can prove that a sync
stream was not iterated on an event loop's thread).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterable
from types import TracebackType
from typing import Generic, TypeVar

import anyio

__all__ = ["FakeAsyncStream", "FakeStream"]

T = TypeVar("T")

ErrorSpec = BaseException | Callable[[], BaseException] | None


class _Recorder(Generic[T]):
    def __init__(
        self,
        items: Iterable[T],
        *,
        delay: float,
        first_delay: float | None,
        error: ErrorSpec,
        error_after: int | None,
    ) -> None:
        if delay < 0 or (first_delay is not None and first_delay < 0):
            raise ValueError("delays must not be negative")
        self._items = list(items)
        if error is not None and error_after is None:
            error_after = len(self._items)
        if error_after is not None:
            error_after = min(error_after, len(self._items))
        if error_after is not None and error is None:
            from llmsse.testing.errors import api_error

            error = api_error
        self._error = error
        self._error_after = error_after
        self.delay = delay
        self.first_delay = first_delay
        #: How many items were handed out.
        self.yielded = 0
        #: ``time.monotonic()`` of each ``close()`` call.
        self.close_times: list[float] = []
        #: ``time.monotonic()`` when the last item was handed out (or the error raised).
        self.finished_at: float | None = None
        #: The error raised to the reader, once raised.
        self.raised: BaseException | None = None
        #: Idents of the threads that asked for items.
        self.thread_ids: set[int] = set()

    @property
    def items(self) -> list[T]:
        """The items this stream yields (a copy)."""
        return list(self._items)

    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called at least once."""
        return bool(self.close_times)

    @property
    def close_count(self) -> int:
        """How many times ``close()`` was called (a correct consumer closes exactly once)."""
        return len(self.close_times)

    @property
    def closed_at(self) -> float | None:
        """``time.monotonic()`` of the first ``close()``, or ``None``."""
        return self.close_times[0] if self.close_times else None

    @property
    def exhausted(self) -> bool:
        """Whether the reader got to the end (every item, or the error)."""
        return self.finished_at is not None

    def _record_close(self) -> None:
        self.close_times.append(time.monotonic())

    def _wait_before_next(self) -> float:
        if self.yielded == 0 and self.first_delay is not None:
            return self.first_delay
        return self.delay

    def _take(self) -> T:
        # The next item; raises the scripted error when it is due, _Exhausted at the end.
        if self.yielded == self._error_after and self._error is not None:
            error = self._error if isinstance(self._error, BaseException) else self._error()
            self._error = None
            self.raised = error
            self.finished_at = time.monotonic()
            raise error
        if self.closed or self.yielded >= len(self._items):
            if self.finished_at is None and not self.closed:
                self.finished_at = time.monotonic()
            raise _Exhausted
        item = self._items[self.yielded]
        self.yielded += 1
        if self.yielded == len(self._items) and self._error is None:
            self.finished_at = time.monotonic()
        return item


class _Exhausted(Exception):
    pass


class FakeStream(_Recorder[T]):
    """A synchronous fake of ``openai.Stream``: iterable, ``close()``, context manager.

    Args:
        items: What the stream yields, e.g. ``llmsse.testing.chunks("Hello")``.
        delay: Seconds to sleep before each item.
        first_delay: Seconds to sleep before the first item instead (a model thinking).
        error: The exception to raise (an instance or a factory). By default none, or
            ``openai.APIError`` when only ``error_after`` is given.
        error_after: Raise the error after this many items (all of them by default).

    After ``close()`` the stream yields nothing more, like a closed HTTP response.
    ``on_event_loop`` tells whether an item was ever requested from a thread running an
    asyncio event loop: a sync stream iterated inside ``async def`` blocks every other request.
    """

    def __init__(
        self,
        items: Iterable[T] = (),
        *,
        delay: float = 0.0,
        first_delay: float | None = None,
        error: ErrorSpec = None,
        error_after: int | None = None,
    ) -> None:
        super().__init__(
            items, delay=delay, first_delay=first_delay, error=error, error_after=error_after
        )
        #: Whether an item was requested on a thread that runs an asyncio event loop.
        self.on_event_loop = False
        self._closing = threading.Event()

    def __iter__(self) -> FakeStream[T]:
        return self

    def __next__(self) -> T:
        self.thread_ids.add(threading.get_ident())
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self.on_event_loop = True
        wait = self._wait_before_next()
        if wait and not self.closed:
            self._closing.wait(wait)
        try:
            return self._take()
        except _Exhausted:
            raise StopIteration from None

    def close(self) -> None:
        """Close the stream; recorded every time it is called.

        Called from another thread while a reader waits out a delay, it ends the wait at
        once and the reader gets the end of the stream.
        """
        self._record_close()
        self._closing.set()

    def __enter__(self) -> FakeStream[T]:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class FakeAsyncStream(_Recorder[T]):
    """An asynchronous fake of ``openai.AsyncStream``: async iterable, ``close()``/``aclose()``.

    Same arguments and records as :class:`FakeStream`; the delay is an ``anyio.sleep`` (so
    cancelling the reader interrupts it, as it would interrupt a network read), and
    ``close()`` and ``aclose()`` are both coroutines, as in the SDK.
    """

    def __init__(
        self,
        items: Iterable[T] = (),
        *,
        delay: float = 0.0,
        first_delay: float | None = None,
        error: ErrorSpec = None,
        error_after: int | None = None,
    ) -> None:
        super().__init__(
            items, delay=delay, first_delay=first_delay, error=error, error_after=error_after
        )
        #: Whether a read was cancelled while waiting for the next item.
        self.cancelled = False

    def __aiter__(self) -> FakeAsyncStream[T]:
        return self

    async def __anext__(self) -> T:
        self.thread_ids.add(threading.get_ident())
        wait = self._wait_before_next()
        if wait and not self.closed:
            try:
                await anyio.sleep(wait)
            except BaseException:
                self.cancelled = True
                raise
        try:
            return self._take()
        except _Exhausted:
            raise StopAsyncIteration from None

    async def close(self) -> None:
        """Close the stream; recorded every time it is called."""
        self._record_close()

    async def aclose(self) -> None:
        """The same as :meth:`close` (the SDK has both)."""
        self._record_close()

    async def __aenter__(self) -> FakeAsyncStream[T]:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
