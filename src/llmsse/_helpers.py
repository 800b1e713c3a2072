"""The openai SDK's stream helpers as sources.

``client.chat.completions.stream(...)`` and ``client.responses.stream(...)`` return
managers that send the request when entered (``with``/``async with``) and close it
when exited. As a source, a manager is entered by the pipeline at the first read (in
the reader thread or task, never at the call) and exited exactly once however the
stream ends. An already entered helper stream is closed instead.

The chat helper yields its own events (``content.delta``, ...) beside a ``chunk``
event per chunk (PROTOCOLS.md §2.5): the source yields those chunks. The Responses
helper yields the API's events, as they are.

The classes are recognised only once the SDK has imported them (``sys.modules``), so
this costs ``import llmsse`` nothing.
"""

from __future__ import annotations

import inspect
import sys
import threading
from typing import Any

__all__ = ["AsyncHelperSource", "HelperSource", "helper_source", "is_async_helper"]

_CHAT = "openai.lib.streaming.chat"
_RESPONSES = "openai.lib.streaming.responses"

# (module, class name) -> (is async, is a manager, yields chat helper events)
_KINDS = {
    (_CHAT, "ChatCompletionStreamManager"): (False, True, True),
    (_CHAT, "AsyncChatCompletionStreamManager"): (True, True, True),
    (_CHAT, "ChatCompletionStream"): (False, False, True),
    (_CHAT, "AsyncChatCompletionStream"): (True, False, True),
    (_RESPONSES, "ResponseStreamManager"): (False, True, False),
    (_RESPONSES, "AsyncResponseStreamManager"): (True, True, False),
    (_RESPONSES, "ResponseStream"): (False, False, False),
    (_RESPONSES, "AsyncResponseStream"): (True, False, False),
}


def _kind(source: object) -> tuple[bool, bool, bool] | None:
    for (module_name, name), kind in _KINDS.items():
        module = sys.modules.get(module_name)
        cls = getattr(module, name, None) if module is not None else None
        if isinstance(cls, type) and isinstance(source, cls):
            return kind
    return None


def is_async_helper(source: object) -> bool:
    """Whether ``source`` is one of the SDK's async stream helpers (managers included)."""
    kind = _kind(source)
    return kind is not None and kind[0]


def helper_source(source: object) -> HelperSource | AsyncHelperSource | None:
    """``source`` wrapped as a source when it is an SDK stream helper, else ``None``."""
    kind = _kind(source)
    if kind is None:
        return None
    is_async, manager, chat = kind
    cls = AsyncHelperSource if is_async else HelperSource
    return cls(source, manager=manager, chat=chat)


class HelperSource:
    """A sync stream helper: entered at the first ``next()``, exited (or closed) once.

    ``close()`` may come from another thread while the reader is inside ``next()``
    (even inside the manager's ``__enter__``, which sends the request): whichever of
    the two sees both "entered" and "closed" exits, under a lock, exactly once.
    """

    def __init__(self, target: Any, *, manager: bool, chat: bool) -> None:
        self.target = target
        self._manager = manager
        self._chat = chat
        self._stream: Any = None if manager else target
        self._it: Any = None
        self._lock = threading.Lock()
        self._closed = False
        self._exited = False

    def __iter__(self) -> HelperSource:
        return self

    def __next__(self) -> Any:
        it = self._it
        if it is None:
            it = self._it = self._open()
        if not self._chat:
            return next(it)
        while True:
            event = next(it)
            if getattr(event, "type", None) == "chunk":
                return event.chunk

    def _open(self) -> Any:
        stream = self._stream
        if stream is None:
            with self._lock:
                if self._closed:
                    return iter(())
            stream = self.target.__enter__()
            with self._lock:
                self._stream = stream
                closed = self._closed
            if closed:  # close() came while the request was being sent
                self._exit()
                return iter(())
        return iter(stream)

    @property
    def response(self) -> Any:
        """The HTTP response under the stream (for closing its socket), once entered."""
        return getattr(self._stream, "_response", None)

    def close(self) -> None:
        """Exit the manager (close the stream) if it was entered; at most once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            entered = self._stream is not None
        if entered:
            self._exit()

    def _exit(self) -> None:
        with self._lock:
            if self._exited:
                return
            self._exited = True
        if self._manager:
            self.target.__exit__(None, None, None)
        else:
            self._stream.close()


class AsyncHelperSource:
    """An async stream helper: entered at the first ``__anext__``, exited (or closed) once."""

    def __init__(self, target: Any, *, manager: bool, chat: bool) -> None:
        self.target = target
        self._manager = manager
        self._chat = chat
        self._stream: Any = None if manager else target
        self._it: Any = None
        self._closed = False

    def __aiter__(self) -> AsyncHelperSource:
        return self

    async def __anext__(self) -> Any:
        it = self._it
        if it is None:
            if self._closed:
                raise StopAsyncIteration
            if self._stream is None:
                self._stream = await self.target.__aenter__()
            it = self._it = self._stream.__aiter__()
        if not self._chat:
            return await it.__anext__()
        while True:
            event = await it.__anext__()
            if getattr(event, "type", None) == "chunk":
                return event.chunk

    async def aclose(self) -> None:
        """Exit the manager (close the stream) if it was entered; at most once."""
        if self._closed:
            return
        self._closed = True
        if self._stream is None:
            # Never entered: the async manager holds its request as a coroutine made at
            # .stream(); close it, else Python warns that it was never awaited.
            for value in list(vars(self.target).values()):
                if inspect.iscoroutine(value):
                    value.close()
            return
        if self._manager:
            await self.target.__aexit__(None, None, None)
        else:
            await self._stream.close()
