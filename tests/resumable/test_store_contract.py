"""The Store contract: what every store (``STORE_KINDS`` in conftest.py) must do.

Timing-based assertions use generous bounds: a blocked read must wake "soon" after an
append (well before its block time), and expiry must happen within a second or two.
"""

from __future__ import annotations

import time
import uuid

import anyio
import pytest

from llmsse.resumable import Batch, Store

from .conftest import StoreFactory

pytestmark = pytest.mark.anyio


def new_id() -> str:
    return "contract-" + uuid.uuid4().hex


def event(n: int) -> tuple[int, bytes]:
    return n, b"id: %d\ndata: event %d \xc3\xa9\n\n" % (n, n)


async def read_all(store: Store, stream_id: str, after: int) -> tuple[list[int], Batch]:
    """Every id after ``after`` that a store answers without blocking (across batches)."""
    ids: list[int] = []
    while True:
        batch = await store.read(stream_id, after, block=0)
        assert not batch.gap
        if not batch.events:
            return ids, batch
        for event_id, data in batch.events:
            assert data == event(event_id)[1]
        ids += [event_id for event_id, _ in batch.events]
        after = batch.events[-1][0]


async def until_missing(store: Store, stream_id: str, seconds: float) -> float:
    """Seconds until the stream reads as missing (fails after ``seconds``)."""
    start = time.monotonic()
    while time.monotonic() - start < seconds:
        if (await store.read(stream_id, 0, block=0)).state == "missing":
            return time.monotonic() - start
        await anyio.sleep(0.05)
    raise AssertionError(f"{stream_id} still there after {seconds} s")


async def test_create_twice(store: Store) -> None:
    stream_id = new_id()
    assert await store.create(stream_id, ttl=60)
    assert not await store.create(stream_id, ttl=60)
    assert await store.create(new_id(), ttl=60)


async def test_a_new_stream_is_live_and_empty(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    batch = await store.read(stream_id, 0, block=0)
    assert (list(batch.events), batch.state, batch.gap) == ([], "live", False)


async def test_missing_stream(store: Store) -> None:
    batch = await store.read(new_id(), 0, block=0)
    assert (list(batch.events), batch.state) == ([], "missing")
    assert not await store.cancel(new_id())


async def test_read_after_every_position(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    # Batches of several sizes, as a producer appends them.
    sizes = [1, 3, 1, 7, 2, 1, 5]
    n = 0
    for size in sizes:
        await store.append(stream_id, [event(n + k) for k in range(1, size + 1)])
        n += size
        for after in range(n + 1):
            ids, batch = await read_all(store, stream_id, after)
            assert ids == list(range(after + 1, n + 1))
            assert batch.state == "live"
    await store.finish(stream_id, expire=60)
    for after in range(n + 1):
        ids, batch = await read_all(store, stream_id, after)
        assert ids == list(range(after + 1, n + 1))
        assert batch.state == "finished"


async def test_events_are_kept_byte_for_byte(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    payloads = [
        b"data: \xe2\x82\xac \xf0\x9f\x98\x80\n\n",
        b"event: done\nid: 2\ndata: {}\n\n",
        b"data: " + b"x" * 200_000 + b"\n\n",
        b"\x00\xff\r\n",
    ]
    await store.append(stream_id, list(enumerate(payloads, 1)))
    batch = await store.read(stream_id, 0, block=0)
    got = list(batch.events)
    while len(got) < len(payloads) and batch.events:
        batch = await store.read(stream_id, got[-1][0], block=0)
        got += batch.events
    assert got == list(enumerate(payloads, 1))


async def test_read_blocks_until_append(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.append(stream_id, [event(1)])
    got: list[Batch] = []

    async def reader() -> None:
        got.append(await store.read(stream_id, 1, block=10))

    start = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.sleep(0.2)
        assert not got
        await store.append(stream_id, [event(2), event(3)])
    assert time.monotonic() - start < 3
    assert [event_id for event_id, _ in got[0].events] == [2, 3]
    assert got[0].state == "live"


async def test_read_blocks_until_finish(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    got: list[Batch] = []

    async def reader() -> None:
        got.append(await store.read(stream_id, 0, block=10))

    start = time.monotonic()
    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.sleep(0.2)
        await store.finish(stream_id, expire=60)
    assert time.monotonic() - start < 3
    assert (list(got[0].events), got[0].state) == ([], "finished")


async def test_read_block_times_out(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    start = time.monotonic()
    batch = await store.read(stream_id, 0, block=0.3)
    assert 0.2 <= time.monotonic() - start < 3
    assert (list(batch.events), batch.state) == ([], "live")


async def test_read_block_zero_does_not_wait(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    start = time.monotonic()
    await store.read(stream_id, 0, block=0)
    assert time.monotonic() - start < 0.5


async def test_ten_blocked_readers_all_wake(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    got: list[list[int]] = []

    async def reader() -> None:
        batch = await store.read(stream_id, 0, block=10)
        got.append([event_id for event_id, _ in batch.events])

    start = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(10):
            group.start_soon(reader)
        await anyio.sleep(0.2)
        await store.append(stream_id, [event(1)])
    assert time.monotonic() - start < 3
    assert got == [[1]] * 10


async def test_cancelling_a_blocked_read_is_safe(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    with anyio.move_on_after(0.2):
        await store.read(stream_id, 0, block=10)
    await store.append(stream_id, [event(1)])
    ids, _ = await read_all(store, stream_id, 0)
    assert ids == [1]


async def test_streams_are_separate(store: Store) -> None:
    first, second = new_id(), new_id()
    await store.create(first, ttl=60)
    await store.create(second, ttl=60)
    await store.append(first, [event(1), event(2)])
    await store.append(second, [event(1)])
    await store.finish(second, expire=60)
    assert (await read_all(store, first, 0))[0] == [1, 2]
    assert (await read_all(store, first, 0))[1].state == "live"
    assert (await read_all(store, second, 0))[0] == [1]
    assert (await read_all(store, second, 0))[1].state == "finished"


async def test_finished_stream(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.append(stream_id, [event(1)])
    await store.finish(stream_id, expire=60)
    ids, batch = await read_all(store, stream_id, 0)
    assert (ids, batch.state) == ([1], "finished")
    assert not await store.cancel(stream_id)
    assert not await store.create(stream_id, ttl=60)  # not expired yet: still taken


async def test_only_the_batch_with_the_last_event_says_finished(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.append(stream_id, [event(n) for n in range(1, 2501)])
    await store.finish(stream_id, expire=60)
    after, states = 0, []
    while after < 2500:
        batch = await store.read(stream_id, after, block=0)
        after = batch.events[-1][0]
        states.append((after == 2500, batch.state))
    assert all(state == ("finished" if last else "live") for last, state in states)


async def test_cancel_wakes_wait_cancelled(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    woke: list[float] = []

    async def producer() -> None:
        await store.wait_cancelled(stream_id)
        woke.append(time.monotonic())

    async with anyio.create_task_group() as group:
        group.start_soon(producer)
        await anyio.sleep(0.2)
        assert not woke
        cancelled_at = time.monotonic()
        assert await store.cancel(stream_id)
    assert woke and woke[0] - cancelled_at < 3
    # Cancelled is not finished: the producer finishes the stream itself.
    assert (await store.read(stream_id, 0, block=0)).state == "live"
    await store.finish(stream_id, expire=60)
    assert (await store.read(stream_id, 0, block=0)).state == "finished"
    assert not await store.cancel(stream_id)


async def test_wait_cancelled_after_the_cancel_returns_at_once(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    assert await store.cancel(stream_id)
    with anyio.fail_after(3):
        await store.wait_cancelled(stream_id)


async def test_cancelling_wait_cancelled_is_safe(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    with anyio.move_on_after(0.2) as scope:
        await store.wait_cancelled(stream_id)
    assert scope.cancelled_caught
    assert await store.cancel(stream_id)
    with anyio.fail_after(3):
        await store.wait_cancelled(stream_id)


async def test_cancel_reaches_only_its_stream(store: Store) -> None:
    first, second = new_id(), new_id()
    await store.create(first, ttl=60)
    await store.create(second, ttl=60)
    assert await store.cancel(first)
    with anyio.move_on_after(0.3) as scope:
        await store.wait_cancelled(second)
    assert scope.cancelled_caught


async def test_finished_stream_expires(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.append(stream_id, [event(1)])
    await store.finish(stream_id, expire=0.5)
    assert (await store.read(stream_id, 0, block=0)).state == "finished"
    elapsed = await until_missing(store, stream_id, 5)
    assert elapsed >= 0.3
    assert await store.create(stream_id, ttl=60)  # the id is free again, and empty
    assert (await read_all(store, stream_id, 0))[0] == []


async def test_vanished_producer_expires_after_ttl(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=0.5)
    await store.append(stream_id, [event(1)])
    await until_missing(store, stream_id, 5)


async def test_touch_pushes_the_ttl_of_a_live_stream_back(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=0.6)
    await store.append(stream_id, [event(1)])
    for _ in range(5):  # 1.5 s in all, touched every 0.3 s
        await anyio.sleep(0.3)
        await store.touch(stream_id)
    ids, batch = await read_all(store, stream_id, 0)
    assert (ids, batch.state) == ([1], "live")
    await until_missing(store, stream_id, 5)  # no more touches: the ttl runs out


async def test_touch_does_not_revive_a_finished_or_missing_stream(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.finish(stream_id, expire=0.3)
    await store.touch(stream_id)
    assert (await store.read(stream_id, 0, block=0)).state == "finished"
    await until_missing(store, stream_id, 5)
    await store.touch(stream_id)
    assert (await store.read(stream_id, 0, block=0)).state == "missing"


async def test_a_blocked_reader_sees_expiry(store: Store) -> None:
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    await store.finish(stream_id, expire=0.3)
    await until_missing(store, stream_id, 5)
    batch = await store.read(stream_id, 0, block=1)
    assert batch.state == "missing"


async def test_gap_when_events_were_trimmed(make_store: StoreFactory) -> None:
    store = await make_store(maxlen=5)
    stream_id = new_id()
    await store.create(stream_id, ttl=60)
    total = 300
    for start in range(1, total + 1, 10):
        await store.append(stream_id, [event(n) for n in range(start, start + 10)])
    batch = await store.read(stream_id, 0, block=0)
    assert batch.gap
    ids = [event_id for event_id, _ in batch.events]
    assert ids and ids[0] > 1 and ids == list(range(ids[0], ids[0] + len(ids)))
    # The newest events are kept and read without a gap.
    batch = await store.read(stream_id, total - 3, block=0)
    assert not batch.gap
    assert [event_id for event_id, _ in batch.events] == [total - 2, total - 1, total]
    batch = await store.read(stream_id, total, block=0)
    assert (list(batch.events), batch.gap) == ([], False)
