"""astart_stream / aresume_sse / acancel_stream and their sync twins, on the memory store.

The promise under test: a reader that reconnects after any event gets exactly the rest of
the stream (compared with the whole stream, byte for byte and as parsed events), readers
never stop the producer, a cancel does, and every way out finishes the stream.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import pytest

import llmsse
from llmsse import ServerSentEvent
from llmsse.result import StreamResult
from llmsse.resumable import (
    MemoryStore,
    StreamNotFound,
    acancel_stream,
    aresume_sse,
    astart_stream,
    cancel_stream,
    default_store,
    resume_sse,
    start_stream,
)
from llmsse.resumable._producer import label_blocks
from llmsse.testing import FakeAsyncStream, FakeStream, chunks, tool_call

FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]


def rich_chunks() -> list[Any]:
    """Reasoning, multi-line text, a tool call and usage: several events per chunk at times."""
    return chunks(
        ["Hello", " big\n", "world", " \u00e9\u20ac"],
        reasoning=["Let me", " think"],
        tool_calls=[tool_call("get_weather", {"city": "Paris"})],
        usage=True,
    )


async def collect(reader: AsyncIterator[bytes], limit: int | None = None) -> bytes:
    """Everything ``reader`` yields (or its first ``limit`` chunks), then close it."""
    out = b""
    try:
        count = 0
        async for chunk in reader:
            out += chunk
            count += 1
            if limit is not None and count >= limit:
                break
    finally:
        await reader.aclose()  # type: ignore[attr-defined]
    return out


def blocks(body: bytes) -> list[bytes]:
    """The event blocks of ``body``, each with its blank line."""
    return [part + b"\n\n" for part in body.split(b"\n\n") if part]


def is_terminal_error(body: bytes, format: str) -> bool:
    """Whether ``body`` ends with ``format``'s error event."""
    events = llmsse.parse(body)
    if format == "text":
        return events[-1].event == "error"
    if format == "openai":
        return (events[-1].data or "").startswith('{"error"')
    if format == "ai-sdk":
        return (events[-2].data or "").startswith('{"type":"error"') and events[-1].data == "[DONE]"
    return (events[-1].data or "").startswith('{"type":"RUN_ERROR"')


def message_text(body: bytes) -> str:
    """The text of the unnamed events (the answer, in the "text" format)."""
    return "".join(e.data or "" for e in llmsse.parse(body) if e.event == "message")


def ids_of(body: bytes) -> list[str | None]:
    return [event.id for event in llmsse.parse(body)]


@pytest.mark.parametrize("format", FORMATS)
def test_resume_at_every_position_gives_exactly_the_rest(format: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        stream_id = await astart_stream(FakeAsyncStream(rich_chunks()), store=store, format=format)
        whole = await collect(aresume_sse(stream_id, store=store, format=format))
        events = llmsse.parse(whole)
        # Every event carries its number as its id, and the store's ids are those ids.
        assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
        assert len(blocks(whole)) == len(events)
        for after in range(len(events) + 1):
            for last_event_id in (after, str(after)):
                rest = await collect(
                    aresume_sse(stream_id, store=store, format=format, last_event_id=last_event_id)
                )
                assert rest == b"".join(blocks(whole)[after:])
                assert llmsse.parse(rest) == events[after:]

    anyio.run(main)


def test_text_stream_is_what_aiter_sse_sends_with_ids() -> None:
    async def main() -> None:
        store = MemoryStore()
        stream_id = await astart_stream(FakeAsyncStream(rich_chunks()), store=store)
        stored = await collect(aresume_sse(stream_id, store=store))
        plain = await collect(
            llmsse.aiter_sse(FakeAsyncStream(rich_chunks()), ids=True, heartbeat=None)
        )
        assert stored == plain
        assert llmsse.parse(stored)[-1].event == "done"

    anyio.run(main)


def test_openai_done_gets_the_next_id() -> None:
    async def main() -> None:
        store = MemoryStore()
        stream_id = await astart_stream(
            FakeAsyncStream(chunks("Hi there")), store=store, format="openai"
        )
        whole = await collect(aresume_sse(stream_id, store=store, format="openai"))
        events = llmsse.parse(whole)
        assert events[-1].data == "[DONE]"
        assert events[-1].id == str(len(events))
        # A reader that got everything but [DONE] gets [DONE] once.
        rest = await collect(
            aresume_sse(stream_id, store=store, format="openai", last_event_id=len(events) - 1)
        )
        assert rest == b"id: %d\ndata: [DONE]\n\n" % len(events)

    anyio.run(main)


def test_server_sent_event_items_get_the_stream_ids() -> None:
    async def main() -> None:
        items = [
            ServerSentEvent("a", id="custom"),
            ServerSentEvent("b"),
            ServerSentEvent(comment="just a comment"),
            ServerSentEvent("c", event="named", id=""),
        ]
        store = MemoryStore()
        stream_id = await astart_stream(items, store=store)
        body = await collect(aresume_sse(stream_id, store=store))
        assert blocks(body) == [
            b"id: 1\ndata: a\n\n",
            b"id: 2\ndata: b\n\n",
            b": just a comment\nid: 3\n\n",
            b"event: named\nid: 4\ndata: c\n\n",
            b'event: done\nid: 5\ndata: {"finish_reason":null,"usage":null}\n\n',
        ]
        rest = await collect(aresume_sse(stream_id, store=store, last_event_id=3))
        assert [e.data for e in llmsse.parse(rest)] == ["c", '{"finish_reason":null,"usage":null}']

    anyio.run(main)


def test_label_blocks_keeps_the_formats_ids_and_carries_a_partial_block() -> None:
    seq, out, rest = label_blocks(b"id: 1\ndata: a\n\nevent: x\nid: 2\ndata: b\n\ndata: [DO", 0)
    assert (seq, rest) == (2, b"data: [DO")
    assert out == [(1, b"id: 1\ndata: a\n\n"), (2, b"event: x\nid: 2\ndata: b\n\n")]
    seq, out, rest = label_blocks(rest + b"NE]\n\n", seq)
    assert (seq, out, rest) == (3, [(3, b"id: 3\ndata: [DONE]\n\n")], b"")
    # An id that is not the next number is replaced, other fields kept in order.
    _, out, _ = label_blocks(b": c\nid: 9\nevent: e\nid\ndata: d\n\n", 3)
    assert out == [(4, b": c\nevent: e\nid: 4\ndata: d\n\n")]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_resume_after_a_drop_at_every_position_of_a_live_stream(backend: str) -> None:
    """Readers drop after k chunks while the stream is live, reconnect with the last id
    they saw, and each ends with the whole stream: nothing lost, nothing duplicated."""

    async def main() -> None:
        store = MemoryStore()
        pieces = [f"piece {n} " for n in range(20)]
        source = FakeAsyncStream(chunks(pieces), delay=0.01)
        stream_id = await astart_stream(source, store=store)
        results: dict[int, bytes] = {}

        async def reader(k: int) -> None:
            first = await collect(aresume_sse(stream_id, store=store), limit=k)
            last_ids = [i for i in ids_of(first) if i is not None]
            last = last_ids[-1] if last_ids else None
            rest = await collect(aresume_sse(stream_id, store=store, last_event_id=last))
            results[k] = first + rest

        async with anyio.create_task_group() as group:
            for k in range(1, 25):
                group.start_soon(reader, k)
        whole = await collect(aresume_sse(stream_id, store=store))
        assert llmsse.parse(whole)[-1].event == "done"
        for k, body in results.items():
            assert body.replace(b": ping\n\n", b"") == whole, k
        assert source.close_count == 1

    anyio.run(main, backend=backend)


def test_ten_concurrent_readers_get_identical_complete_streams() -> None:
    async def main() -> None:
        store = MemoryStore()
        source = FakeAsyncStream(chunks([f"w{n} " for n in range(50)]), delay=0.005)
        stream_id = await astart_stream(source, store=store)
        bodies: list[bytes] = []

        async def reader() -> None:
            bodies.append(await collect(aresume_sse(stream_id, store=store, heartbeat=None)))

        async with anyio.create_task_group() as group:
            for _ in range(10):
                group.start_soon(reader)
        assert len(bodies) == 10 and len(set(bodies)) == 1
        text = message_text(bodies[0])
        assert text == "".join(f"w{n} " for n in range(50))

    anyio.run(main)


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_cancel_closes_the_upstream_and_ends_every_reader(backend: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        results: list[StreamResult] = []
        source = FakeAsyncStream(chunks(["a", "b"] + ["c"] * 100), delay=0.05)
        stream_id = await astart_stream(source, store=store, on_complete=results.append)
        bodies: list[bytes] = []

        async def reader() -> None:
            bodies.append(await collect(aresume_sse(stream_id, store=store)))

        with anyio.fail_after(5):
            async with anyio.create_task_group() as group:
                for _ in range(3):
                    group.start_soon(reader)
                await anyio.sleep(0.2)
                assert await acancel_stream(stream_id, store=store)
        assert source.close_count == 1
        assert source.yielded < 20
        assert [r.outcome for r in results] == ["disconnected"]
        assert len(set(bodies)) == 1
        events = llmsse.parse(bodies[0])
        assert events and all(e.event == "message" for e in events)  # no terminal event
        assert (await store.read(stream_id, 0, block=0)).state == "finished"
        assert not await acancel_stream(stream_id, store=store)

    anyio.run(main, backend=backend)


def test_a_cancel_before_the_first_chunk_closes_the_source() -> None:
    async def main() -> None:
        store = MemoryStore()
        source = FakeAsyncStream(chunks("late"), first_delay=30)
        stream_id = await astart_stream(source, store=store)
        await anyio.sleep(0.05)
        assert await acancel_stream(stream_id, store=store)
        with anyio.fail_after(5):
            assert await collect(aresume_sse(stream_id, store=store)) == b""
        assert source.close_count == 1

    anyio.run(main)


def test_a_reader_leaving_does_not_stop_the_producer() -> None:
    async def main() -> None:
        store = MemoryStore()
        results: list[StreamResult] = []
        source = FakeAsyncStream(chunks([f"{n} " for n in range(30)]), delay=0.01)
        stream_id = await astart_stream(source, store=store, on_complete=results.append)
        await collect(aresume_sse(stream_id, store=store), limit=2)
        # A reader cancelled while it waits for the next event, too.
        with anyio.move_on_after(0.05):
            await collect(aresume_sse(stream_id, store=store, last_event_id=10**6))
        assert not source.closed
        with anyio.fail_after(5):
            whole = await collect(aresume_sse(stream_id, store=store))
        assert llmsse.parse(whole)[-1].event == "done"
        await anyio.sleep(0.05)
        assert source.close_count == 1
        assert [(r.outcome, r.text) for r in results] == [
            ("finished", "".join(f"{n} " for n in range(30)))
        ]

    anyio.run(main)


@pytest.mark.parametrize("format", FORMATS)
def test_an_upstream_error_ends_every_reader_with_the_error_event(format: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        results: list[StreamResult] = []
        source = FakeAsyncStream(chunks("one two three four"), error_after=3, delay=0.02)
        stream_id = await astart_stream(
            source, store=store, format=format, on_complete=results.append
        )
        bodies: list[bytes] = []

        async def reader() -> None:
            bodies.append(await collect(aresume_sse(stream_id, store=store, format=format)))

        async with anyio.create_task_group() as group:
            for _ in range(4):
                group.start_soon(reader)
        assert len(set(bodies)) == 1
        problems = llmsse.testing.sse_problems(bodies[0], format=None)
        assert not problems
        assert is_terminal_error(bodies[0], format)
        assert [r.outcome for r in results] == ["failed"]
        assert source.close_count == 1

    anyio.run(main)


def test_sync_source_runs_in_a_thread() -> None:
    async def main() -> None:
        store = MemoryStore()
        source = FakeStream(chunks("from a thread"), delay=0.01)
        stream_id = await astart_stream(source, store=store)
        whole = await collect(aresume_sse(stream_id, store=store))
        assert message_text(whole) == "from a thread"
        assert not source.on_event_loop
        assert source.close_count == 1

    anyio.run(main)


def test_heartbeat_and_retry() -> None:
    async def main() -> None:
        store = MemoryStore()
        source = FakeAsyncStream(chunks("slow"), first_delay=0.6)
        stream_id = await astart_stream(source, store=store)
        reader = aresume_sse(stream_id, store=store, heartbeat=0.2, retry=1500)
        start = time.monotonic()
        first = await reader.__anext__()
        assert 0.1 < time.monotonic() - start < 0.5
        assert first == b"retry: 1500\n: ping\n\n"
        rest = await collect(reader)
        assert rest.startswith(b": ping\n\n")
        assert llmsse.parse(rest)[-1].event == "done"

    anyio.run(main)


def test_missing_stream_and_probe() -> None:
    async def main() -> None:
        store = MemoryStore()
        with pytest.raises(StreamNotFound) as caught:
            await collect(aresume_sse("nope", store=store))
        assert caught.value.stream_id == "nope"
        assert await aresume_sse("nope", store=store).probe() == "missing"
        stream_id = await astart_stream(FakeAsyncStream(chunks("a b")), store=store)
        with anyio.fail_after(5):
            while (await store.read(stream_id, 0, block=0)).state == "live":
                await anyio.sleep(0.01)
        whole = await collect(aresume_sse(stream_id, store=store))
        n = len(llmsse.parse(whole))
        assert await aresume_sse(stream_id, store=store, last_event_id=n).probe() == "done"
        reader = aresume_sse(stream_id, store=store, last_event_id=n - 1)
        assert await reader.probe() == "streaming"
        assert llmsse.parse(await collect(reader))[-1].event == "done"

    anyio.run(main)


def test_a_gap_ends_with_the_error_event() -> None:
    async def main() -> None:
        store = MemoryStore(maxlen=3)
        stream_id = await astart_stream(
            FakeAsyncStream(chunks([f"{n} " for n in range(10)])), store=store
        )
        with anyio.fail_after(5):
            while (await store.read(stream_id, 0, block=0)).state == "live":
                await anyio.sleep(0.01)
        body = await collect(aresume_sse(stream_id, store=store))
        events = llmsse.parse(body)
        assert [e.event for e in events] == ["error"]
        assert '"stream_gap"' in (events[0].data or "")
        assert b"id:" not in body  # the client keeps its last id
        # The kept tail is still served to a reader that needs only that.
        tail = llmsse.parse(await collect(aresume_sse(stream_id, store=store, last_event_id=9)))
        assert [e.id for e in tail] == ["10", "11"]

    anyio.run(main)


def test_a_stream_lost_while_read_ends_with_the_error_event() -> None:
    # A crashed worker: its stream was started and written to, then nothing (no
    # producer pushes the ttl back any more, no end is written).
    async def main() -> None:
        store = MemoryStore()
        stream_id = "crashed-worker"
        await store.create(stream_id, ttl=0.3)
        await store.append(stream_id, [(1, b"id: 1\ndata: a\n\n")])
        with anyio.fail_after(5):
            events = llmsse.parse(await collect(aresume_sse(stream_id, store=store, heartbeat=0.1)))
        assert (events[0].event, events[0].data) == ("message", "a")
        assert events[-1].event == "error" and '"stream_lost"' in (events[-1].data or "")
        assert await acancel_stream(stream_id, store=store) is False

    anyio.run(main)


@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_a_model_silent_for_longer_than_ttl_keeps_its_stream(
    kind: str, request: pytest.FixtureRequest
) -> None:
    # The producer pushes the ttl back while the model thinks: a short ttl only ends
    # the streams whose producer is gone.
    async def main() -> None:
        if kind == "redis":
            from llmsse.resumable.redis import RedisStore

            from ._redis_server import shared_redis_url

            store: Any = RedisStore(url=shared_redis_url(request), prefix="silent-model")
        else:
            store = MemoryStore()
        try:
            source = FakeAsyncStream(chunks("a b"), first_delay=1.2)
            stream_id = await astart_stream(source, store=store, ttl=0.4)
            with anyio.fail_after(10):
                body = await collect(aresume_sse(stream_id, store=store, heartbeat=0.1))
            events = llmsse.parse(body)
            assert [e.data for e in events if e.event == "message"] == ["a", " b"]
            assert events[-1].event == "done"
        finally:
            await store.aclose()

    anyio.run(main)


def test_the_id_is_taken_and_fresh_ids_are_url_safe() -> None:
    async def main() -> None:
        store = MemoryStore()
        first = await astart_stream(["a"], store=store)
        second = await astart_stream(["a"], store=store)
        assert first != second and len(first) >= 16
        assert all(c.isalnum() or c in "-_" for c in first)
        assert await astart_stream(["a"], store=store, stream_id="chat-1") == "chat-1"
        source = FakeAsyncStream(chunks("x"))
        with pytest.raises(ValueError, match="already taken"):
            await astart_stream(source, store=store, stream_id="chat-1")
        assert not source.closed
        for stream_id in (first, second, "chat-1"):
            await collect(aresume_sse(stream_id, store=store))

    anyio.run(main)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"source": "text"}, TypeError, "source must be"),
        ({"format": "nope"}, ValueError, "unknown format"),
        ({"stream_id": 5}, TypeError, "stream_id must be a str"),
        ({"stream_id": "has space"}, ValueError, "printable ASCII"),
        ({"stream_id": ""}, ValueError, "printable ASCII"),
        ({"store": {}}, TypeError, "store must be"),
        ({"ttl": 0}, ValueError, "ttl must be"),
        ({"ttl": "1"}, TypeError, "ttl must be"),
        ({"expire": -1}, ValueError, "expire must be"),
        ({"on_complete": 3}, TypeError, "on_complete must be callable"),
    ],
)
def test_bad_start_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    async def main() -> None:
        store = MemoryStore()
        arguments: dict[str, Any] = {"source": ["a"], "store": store, **kwargs}
        with pytest.raises(error, match=match):
            await astart_stream(arguments.pop("source"), **arguments)
        assert len(store) == 0

    anyio.run(main)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"last_event_id": "abc"}, ValueError, "non-negative integer"),
        ({"last_event_id": "-1"}, ValueError, "non-negative integer"),
        ({"last_event_id": " 1"}, ValueError, "non-negative integer"),
        ({"last_event_id": ""}, ValueError, "non-negative integer"),
        ({"last_event_id": -1}, ValueError, ">= 0"),
        ({"last_event_id": True}, TypeError, "got bool"),
        ({"last_event_id": 1.0}, TypeError, "last_event_id must be"),
        ({"heartbeat": 0}, ValueError, "heartbeat"),
        ({"retry": -5}, ValueError, "retry"),
        ({"format": "nope"}, ValueError, "unknown format"),
        ({"store": object()}, TypeError, "store must be"),
    ],
)
def test_bad_resume_arguments(kwargs: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        aresume_sse("x", **kwargs)
    with pytest.raises(error, match=match):
        resume_sse("x", **kwargs)


def test_memory_stays_bounded_with_many_finished_streams() -> None:
    async def main() -> None:
        store = MemoryStore()
        for n in range(200):
            stream_id = f"s{n}"
            await store.create(stream_id, ttl=60)
            await store.append(stream_id, [(1, b"data: x\n\n")])
            await store.finish(stream_id, expire=0.05 if n < 190 else 60)
        await anyio.sleep(0.1)
        assert len(store) == 10
        for n in range(1000):  # created and finished before any expires
            await store.create(f"t{n}", ttl=60)
            await store.finish(f"t{n}", expire=30)
        assert len(store._deadlines) < 2 * len(store) + 64

    anyio.run(main)


def test_sync_twins_on_the_background_loop() -> None:
    store = MemoryStore()
    results: list[StreamResult] = []
    stream_id = start_stream(
        FakeStream(chunks("sync world"), delay=0.01), store=store, on_complete=results.append
    )
    whole = b"".join(resume_sse(stream_id, store=store))
    assert message_text(whole) == "sync world"
    rest = b"".join(resume_sse(stream_id, store=store, last_event_id="2"))
    assert rest == b"".join(blocks(whole)[2:])
    assert [r.outcome for r in results] == ["finished"]

    source = FakeStream(chunks(["x"] * 100), delay=0.05)
    stream_id = start_stream(source, store=store)
    reader = resume_sse(stream_id, store=store)
    next(reader)
    reader.close()  # type: ignore[attr-defined]
    time.sleep(0.1)
    assert not source.closed
    assert cancel_stream(stream_id, store=store)
    deadline = time.monotonic() + 5
    while not source.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert source.close_count == 1
    with pytest.raises(StreamNotFound):
        next(resume_sse("missing", store=store))


def test_default_store_is_shared_by_threads_and_loops() -> None:
    """A stream started on the WSGI background loop, read on another event loop."""
    stream_id = start_stream(FakeStream(chunks("shared"), delay=0.02))
    assert default_store() is default_store()
    got: list[bytes] = []

    def other_thread() -> None:
        got.append(anyio.run(collect, aresume_sse(stream_id)))

    thread = threading.Thread(target=other_thread)
    thread.start()
    thread.join(10)
    assert message_text(got[0]) == "shared"


def test_a_long_stream_is_read_in_several_batches() -> None:
    async def main() -> None:
        store = MemoryStore()
        pieces = [f"{n} " for n in range(2500)]
        stream_id = await astart_stream(pieces, store=store)
        with anyio.fail_after(10):  # 2,500 text events and the done event
            while (await store.read(stream_id, 2500, block=0)).state == "live":
                await anyio.sleep(0.01)
        first = await store.read(stream_id, 0, block=0)
        assert (len(first.events), first.state) == (1000, "live")  # cut short: not the end
        reader = aresume_sse(stream_id, store=store)
        chunks = [chunk async for chunk in reader]
        assert len(chunks) == 3
        assert message_text(b"".join(chunks)) == "".join(pieces)

    anyio.run(main)


def test_a_slow_reader_of_a_finished_stream_gets_no_error_after_done() -> None:
    # The batch that holds the last events ends the reader: reading once more could find
    # the stream expired and send "stream_lost" after a complete answer.
    async def main() -> None:
        store = MemoryStore()
        stream_id = await astart_stream(chunks("a b"), store=store, expire=0.1)
        with anyio.fail_after(5):
            while (await store.read(stream_id, 0, block=0)).state == "live":
                await anyio.sleep(0.01)
        reader = aresume_sse(stream_id, store=store, heartbeat=None)
        body = await reader.__anext__()
        await anyio.sleep(0.3)  # the stream expires while the client reads slowly
        body += await collect(reader)
        assert [e.event for e in llmsse.parse(body)] == ["message", "message", "done"]
        assert message_text(body) == "a b"

    anyio.run(main)


def test_on_error_reraising_still_finishes_the_stream() -> None:
    def reraise(exc: BaseException) -> None:
        raise exc

    async def main() -> None:
        store = MemoryStore()
        source = FakeAsyncStream(chunks("a b c"), error_after=3)
        stream_id = await astart_stream(source, store=store, on_error=reraise)
        with anyio.fail_after(5):
            body = await collect(aresume_sse(stream_id, store=store))
        assert message_text(body) == "a b"  # what came before the failure, then the end
        assert (await store.read(stream_id, 0, block=0)).state == "finished"
        assert source.close_count == 1

    anyio.run(main)


class _BrokenStore(MemoryStore):
    async def append(self, stream_id: str, events: Any) -> None:
        raise ConnectionError("the store is down")


def test_a_failing_store_stops_the_generation() -> None:
    async def main() -> None:
        store = _BrokenStore()
        source = FakeAsyncStream(chunks(["x"] * 100), delay=0.01)
        stream_id = await astart_stream(source, store=store)
        with anyio.fail_after(5):
            while not source.closed:
                await anyio.sleep(0.01)
        assert source.yielded < 50
        with anyio.fail_after(5):
            while (await store.read(stream_id, 0, block=0)).state == "live":
                await anyio.sleep(0.01)

    anyio.run(main)
