"""llmsse.django.start_stream / astart_stream: a sync on_complete runs off the event loop,
where Django's ORM would raise SynchronousOnlyOperation."""

from __future__ import annotations

import asyncio
import threading

import anyio

from llmsse.result import StreamResult
from llmsse.resumable import MemoryStore, aresume_sse, resume_sse

from . import _django_app  # noqa: F401  (configures Django when nothing else did)


def on_a_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


def test_start_stream_runs_a_sync_on_complete_off_the_loop() -> None:
    import llmsse.django

    store = MemoryStore()
    seen: list[tuple[str, bool]] = []
    done = threading.Event()

    def on_complete(result: StreamResult) -> None:
        seen.append((result.text, on_a_loop()))
        done.set()

    stream_id = llmsse.django.start_stream(["saved ", "text"], store=store, on_complete=on_complete)
    b"".join(resume_sse(stream_id, store=store))
    assert done.wait(5)
    assert seen == [("saved text", False)]


def test_astart_stream_runs_a_sync_on_complete_off_the_loop() -> None:
    import llmsse.django

    seen: list[tuple[str, bool]] = []

    async def main() -> None:
        store = MemoryStore()

        def on_complete(result: StreamResult) -> None:
            seen.append((result.text, on_a_loop()))

        stream_id = await llmsse.django.astart_stream(
            ["async ", "view"], store=store, on_complete=on_complete
        )
        async for _ in aresume_sse(stream_id, store=store):
            pass
        with anyio.fail_after(5):
            while not seen:
                await anyio.sleep(0.01)

    anyio.run(main)
    assert seen == [("async view", False)]
