"""RedisStore against a real redis-server: what the contract suite cannot see.

The contract suite (test_store_contract.py) already runs against Redis; here: the keys and
entry ids it writes, gap detection at every position under exact and approximate trimming,
key expiry (nothing left behind), cancel across clients and event loops through one pub/sub
connection, a cancel that raced a lost connection, RESP3 and decoding clients, a restart of
Redis mid-stream with and without persistence, and an outage longer than the retries.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
import redis.asyncio
import redis.exceptions

import llmsse.resumable.redis as redis_module
from llmsse.resumable import Batch, RedisStore

from ._redis_server import RedisServer, shared_redis_url

pytestmark = pytest.mark.anyio


def event(n: int) -> tuple[int, bytes]:
    return n, b"id: %d\ndata: piece %d\n\n" % (n, n)


@pytest.fixture
def redis_url(request: pytest.FixtureRequest) -> str:
    return shared_redis_url(request)


@pytest.fixture
def prefix() -> str:
    return f"t-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    """A plain client to look at the keys."""
    client = redis.asyncio.Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def stores(redis_url: str, prefix: str) -> AsyncIterator[list[RedisStore]]:
    """Stores (each with its own client) sharing one prefix; closed after the test."""
    made: list[RedisStore] = []
    yield made
    for store in made:
        await store.aclose()


def new_store(stores: list[RedisStore], url: str, prefix: str, **options: Any) -> RedisStore:
    store = RedisStore(url=url, prefix=prefix, **options)
    stores.append(store)
    return store


@pytest.fixture
def own_server(tmp_path: Path) -> Iterator[RedisServer]:
    """A server of this test's own, persistent (appendonly, fsync always), to restart."""
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        yield server


async def read_all(store: RedisStore, stream_id: str, after: int) -> tuple[list[int], Batch]:
    ids: list[int] = []
    while True:
        batch = await store.read(stream_id, after, block=0)
        if not batch.events:
            return ids, batch
        ids += [event_id for event_id, _ in batch.events]
        after = batch.events[-1][0]


async def test_keys_and_entry_ids(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    assert await store.create("s1", ttl=60)
    meta, events = f"{prefix}:{{s1}}:meta", f"{prefix}:{{s1}}:events"
    assert await raw.hget(meta, "state") == b"live"
    assert 0 < await raw.pttl(meta) <= 60_000
    await store.append("s1", [event(1), event(2)])
    await store.append("s1", [event(3)])
    entries = await raw.xrange(events)
    assert [entry_id for entry_id, _ in entries] == [b"0-1", b"0-2", b"0-3"]
    assert [fields[b"d"] for _, fields in entries] == [event(n)[1] for n in (1, 2, 3)]
    assert await raw.hget(meta, "last") == b"3"
    assert 0 < await raw.pttl(events) <= 60_000

    await store.finish("s1", expire=30)
    entries = await raw.xrange(events)
    assert entries[-1] == (b"1-0", {b"end": b"1"})  # the end marker, after every event
    assert await raw.hget(meta, "state") == b"finished"
    assert 0 < await raw.pttl(meta) <= 30_000 and 0 < await raw.pttl(events) <= 30_000
    batch = await store.read("s1", 0, block=0)
    assert [event_id for event_id, _ in batch.events] == [1, 2, 3]  # never the marker
    assert batch.state == "finished"
    assert sorted(await raw.keys(f"{prefix}:*")) == sorted([meta.encode(), events.encode()])


async def test_create_is_atomic_across_clients(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    racers = [new_store(stores, redis_url, prefix) for _ in range(12)]
    for round_ in range(5):
        stream_id = f"race-{round_}"
        results = await asyncio.gather(*(store.create(stream_id, ttl=60) for store in racers))
        assert results.count(True) == 1


@pytest.mark.parametrize("approximate", [False, True], ids=["exact", "approximate"])
@pytest.mark.parametrize("maxlen", [1, 7, 120])
async def test_gap_is_exact_at_every_position(
    stores: list[RedisStore],
    redis_url: str,
    prefix: str,
    raw: redis.asyncio.Redis,
    maxlen: int,
    approximate: bool,
) -> None:
    store = new_store(stores, redis_url, prefix, maxlen=maxlen, approximate=approximate)
    await store.create("g", ttl=60)
    rng = random.Random(maxlen)
    total = 0
    while total < 400:
        size = rng.choice([1, 1, 2, 5, 13])
        await store.append("g", [event(total + k) for k in range(1, size + 1)])
        total += size
    kept = [
        int(entry_id.split(b"-")[1]) for entry_id, _ in await raw.xrange(f"{prefix}:{{g}}:events")
    ]
    assert kept == list(range(kept[0], total + 1)) and kept[-1] == total
    if approximate:
        assert len(kept) >= maxlen  # "~" keeps at least maxlen
    else:
        assert len(kept) == maxlen
    assert kept[0] > 1  # something was trimmed, in every case
    for after in range(total + 1):
        batch = await store.read("g", after, block=0)
        expected = [n for n in kept if n > after]
        assert [event_id for event_id, _ in batch.events] == expected[: len(batch.events)]
        assert bool(batch.events) == bool(expected)
        assert batch.gap == (after + 1 < kept[0]), after
    await store.finish("g", expire=60)
    batch = await store.read("g", total, block=0)
    assert (list(batch.events), batch.state, batch.gap) == ([], "finished", False)


async def test_ttl_slides_with_appends_and_leaves_nothing_behind(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    await store.create("t", ttl=0.6)
    for n in range(1, 8):  # 1.4 s of appends, each well within the ttl of the last
        await store.append("t", [event(n)])
        await anyio.sleep(0.2)
    assert (await store.read("t", 0, block=0)).state == "live"
    with anyio.fail_after(5):
        while (await store.read("t", 0, block=0)).state != "missing":
            await anyio.sleep(0.05)
    assert await raw.keys(f"{prefix}:*") == []
    # The id is free again, and the new stream starts empty.
    assert await store.create("t", ttl=60)
    assert (await read_all(store, "t", 0))[0] == []


async def test_finish_expires_every_key(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    await store.create("f", ttl=60)
    await store.append("f", [event(1)])
    assert await store.cancel("f")
    await store.finish("f", expire=0.3)
    assert (await read_all(store, "f", 0))[0] == [1]
    with anyio.fail_after(5):
        while await raw.keys(f"{prefix}:*"):
            await anyio.sleep(0.05)
    assert (await store.read("f", 0, block=0)).state == "missing"


async def test_finish_with_expire_zero_wakes_blocked_readers(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    await store.create("z", ttl=60)
    await store.append("z", [event(1)])
    got: list[Batch] = []

    async def reader() -> None:
        got.append(await store.read("z", 1, block=20))

    start = time.monotonic()
    async with anyio.create_task_group() as group:
        for _ in range(3):
            group.start_soon(reader)
        await anyio.sleep(0.2)
        await store.finish("z", expire=0)
    assert time.monotonic() - start < 3
    assert [(list(b.events), b.state) for b in got] == [([], "finished")] * 3
    assert (await store.read("z", 0, block=0)).state == "missing"
    await anyio.sleep(0.05)
    assert await raw.keys(f"{prefix}:*") == []


async def test_append_rules(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    await store.create("a", ttl=60)
    await store.append("a", [event(1), event(2)])
    with pytest.raises(ValueError, match="event id 4 after 2"):
        await store.append("a", [event(4)])
    # A retried append (its reply lost) changes nothing.
    await store.append("a", [event(1), event(2)])
    await store.append("a", [event(2), event(3)])
    assert (await read_all(store, "a", 0))[0] == [1, 2, 3]
    await store.finish("a", expire=60)
    await store.append("a", [event(4)])  # finished: ignored
    assert (await read_all(store, "a", 0))[0] == [1, 2, 3]
    await store.append("never-created", [event(1)])  # missing: ignored, no key made
    assert await raw.keys(f"{prefix}:{{never-created}}*") == []
    with pytest.raises(ValueError):
        await store.read("a", -1, block=0)
    with pytest.raises(ValueError):
        await store.create("b", ttl=0)
    with pytest.raises(ValueError):
        await store.finish("a", expire=-1)


async def _cancel_latency(producer: RedisStore, canceller: RedisStore, stream_id: str) -> float:
    await producer.create(stream_id, ttl=60)
    woke = anyio.Event()
    woke_at: list[float] = []

    async def wait() -> None:
        await producer.wait_cancelled(stream_id)
        woke_at.append(time.monotonic())
        woke.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.sleep(0.15)  # subscribed by now
        assert not woke_at
        start = time.monotonic()
        assert await canceller.cancel(stream_id)
        with anyio.fail_after(5):
            await woke.wait()
    return woke_at[0] - start


async def test_cancel_from_another_client_is_prompt(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    producer = new_store(stores, redis_url, prefix)
    canceller = new_store(stores, redis_url, prefix)
    latencies = [await _cancel_latency(producer, canceller, f"c{n}") for n in range(5)]
    # Pub/sub: about a round trip. The bound is loose for a loaded CI machine.
    assert statistics.median(latencies) < 0.1, latencies


async def test_cancel_reaches_a_producer_on_another_event_loop(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    # One store (built from a URL) used by two loops, as a WSGI app's background loop
    # and an ASGI app would: each loop gets its own client.
    store = new_store(stores, redis_url, prefix)
    await store.create("x", ttl=60)
    waiting = threading.Event()
    result: list[object] = []

    def other_loop() -> None:
        async def main() -> None:
            task = asyncio.create_task(store.wait_cancelled("x"))
            await asyncio.sleep(0.15)
            waiting.set()
            await asyncio.wait_for(task, 5)
            result.append("cancelled")
            await store.aclose()

        try:
            asyncio.run(main())
        except BaseException as error:  # reported by the assertion below
            result.append(error)

    thread = threading.Thread(target=other_loop)
    thread.start()
    try:
        assert await anyio.to_thread.run_sync(waiting.wait, 5)
        assert await store.cancel("x")
    finally:
        await anyio.to_thread.run_sync(thread.join, 10)
    assert result == ["cancelled"]


async def test_one_pubsub_connection_per_loop_and_local_fan_out(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    store = new_store(stores, redis_url, prefix)
    ids = [f"p{n}" for n in range(40)]
    for stream_id in ids:
        await store.create(stream_id, ttl=60)
    woke: list[str] = []

    async def wait(stream_id: str) -> None:
        await store.wait_cancelled(stream_id)
        woke.append(stream_id)

    async with anyio.create_task_group() as group:
        for stream_id in ids:
            group.start_soon(wait, stream_id)
        await anyio.sleep(0.3)
        clients = await raw.client_list()
        channel = f"{prefix}:cancel"
        subscribers = await raw.pubsub_numsub(channel)
        assert subscribers == [(channel.encode(), 1)]
        assert sum(1 for client in clients if client.get("sub") == "1") >= 1
        assert await store.cancel("p7")
        await anyio.sleep(0.3)
        assert woke == ["p7"]
        group.cancel_scope.cancel()


async def test_a_cancel_sent_while_the_subscription_was_down_is_not_lost(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    producer = new_store(stores, redis_url, prefix)
    canceller = new_store(stores, redis_url, prefix)
    await producer.create("lost", ttl=60)
    woke = anyio.Event()

    async def wait() -> None:
        await producer.wait_cancelled("lost")
        woke.set()

    async with anyio.create_task_group() as group:
        group.start_soon(wait)
        await anyio.sleep(0.2)
        # Cut the producer's pub/sub connection, and cancel before it is back: the
        # message reaches nobody, the flag is read after the resubscription.
        assert await raw.client_kill_filter(_type="pubsub") >= 1
        assert await canceller.cancel("lost")
        with anyio.fail_after(5):
            await woke.wait()


async def test_an_expired_stream_releases_its_producer(
    stores: list[RedisStore], redis_url: str, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(redis_module, "_RECHECK", 0.2)
    store = new_store(stores, redis_url, prefix)
    await store.create("gone", ttl=0.3)
    with anyio.fail_after(5):
        await store.wait_cancelled("gone")  # like MemoryStore: missing ends the wait


async def test_a_store_given_a_client_stays_on_its_loop(redis_url: str, prefix: str) -> None:
    client = redis.asyncio.Redis.from_url(redis_url)
    store = RedisStore(client, prefix=prefix)
    try:
        assert await store.create("own", ttl=60)

        def elsewhere() -> None:
            asyncio.run(store.create("other", ttl=60))

        with pytest.raises(RuntimeError, match="url="):
            await anyio.to_thread.run_sync(elsewhere)
        await store.aclose()
        assert await client.ping()  # the caller's client is left open
    finally:
        await client.aclose()
    with pytest.raises(TypeError):
        RedisStore()
    with pytest.raises(TypeError):
        RedisStore(client, url=redis_url)


@pytest.mark.parametrize(
    "options",
    [{"protocol": 3}, {"decode_responses": True}, {"protocol": 3, "decode_responses": True}],
    ids=["resp3", "decoded", "resp3-decoded"],
)
async def test_other_client_settings(
    stores: list[RedisStore], redis_url: str, prefix: str, options: dict[str, Any]
) -> None:
    store = new_store(stores, redis_url, prefix, maxlen=3, approximate=False,
                      client_options=options)  # fmt: skip
    await store.create("o", ttl=60)
    await store.append("o", [event(1)])
    got: list[Batch] = []

    async def reader() -> None:
        got.append(await store.read("o", 1, block=10))  # woken through XREAD's reply
        got.append(await store.read("o", 3, block=10))

    async with anyio.create_task_group() as group:
        group.start_soon(reader)
        await anyio.sleep(0.2)
        await store.append("o", [event(2), event(3)])
        await anyio.sleep(0.2)
        await store.finish("o", expire=60)
    assert [list(batch.events) for batch in got] == [[event(2), event(3)], []]
    assert got[1].state == "finished"
    batch = await store.read("o", 0, block=0)
    assert (list(batch.events), batch.gap) == ([event(1), event(2), event(3)], False)
    await store.create("o2", ttl=60)
    await store.append("o2", [event(n) for n in range(1, 6)])
    batch = await store.read("o2", 0, block=0)
    assert ([n for n, _ in batch.events], batch.gap) == ([3, 4, 5], True)
    await store.create("c", ttl=60)
    async with anyio.create_task_group() as group:
        group.start_soon(store.wait_cancelled, "c")
        await anyio.sleep(0.2)
        assert await store.cancel("c")


async def _produce(store: RedisStore, stream_id: str, total: int, pause: float) -> None:
    for n in range(1, total + 1):
        await store.append(stream_id, [event(n)])
        await anyio.sleep(pause)
    await store.finish(stream_id, expire=60)


async def _follow(store: RedisStore, stream_id: str, after: int = 0) -> list[int]:
    ids: list[int] = []
    while True:
        batch = await store.read(stream_id, after, block=2)
        assert not batch.gap
        for event_id, data in batch.events:
            assert data == event(event_id)[1]
            ids.append(event_id)
        if batch.events:
            after = batch.events[-1][0]
        elif batch.state != "live":
            assert batch.state == "finished"
            return ids


async def test_redis_restarting_mid_stream_loses_and_repeats_nothing(
    own_server: RedisServer, prefix: str
) -> None:
    producer = RedisStore(url=own_server.url, prefix=prefix)
    reader_store = RedisStore(url=own_server.url, prefix=prefix)
    try:
        await producer.create("r", ttl=60)
        followed: list[list[int]] = []
        cancelled: list[bool] = []

        async def follow() -> None:
            followed.append(await _follow(reader_store, "r"))

        async def watch_cancel() -> None:
            await producer.wait_cancelled("r")
            cancelled.append(True)

        with anyio.fail_after(60):
            async with anyio.create_task_group() as group:
                group.start_soon(follow)
                group.start_soon(follow)
                group.start_soon(watch_cancel)
                group.start_soon(_produce, producer, "r", 120, 0.005)
                await anyio.sleep(0.25)  # mid-stream
                await anyio.to_thread.run_sync(lambda: own_server.restart(down=0.3))
                while not followed or len(followed) < 2:
                    await anyio.sleep(0.05)
                group.cancel_scope.cancel()
        assert followed == [list(range(1, 121))] * 2
        assert not cancelled
        # A client resuming at every position after the restart gets exactly the rest.
        for after in range(121):
            assert await _follow(reader_store, "r", after) == list(range(after + 1, 121))
        # Cancel still reaches a producer across the restarted server.
        assert await _cancel_latency(producer, reader_store, "r3") < 1.0
    finally:
        await producer.aclose()
        await reader_store.aclose()


async def test_redis_restarting_without_persistence_loses_the_stream_visibly(
    tmp_path: Path, prefix: str
) -> None:
    with RedisServer(tmp_path / "redis", persistent=False) as server:
        store = RedisStore(url=server.url, prefix=prefix)
        try:
            await store.create("v", ttl=60)
            await store.append("v", [event(1)])
            await anyio.to_thread.run_sync(server.restart)
            # The reader is told the stream is gone (it never gets a false "finished"),
            # the producer's wait ends, and its appends create nothing.
            assert (await store.read("v", 1, block=0)).state == "missing"
            with anyio.fail_after(5):
                await store.wait_cancelled("v")
            await store.append("v", [event(2)])
            assert (await store.read("v", 0, block=0)).state == "missing"
        finally:
            await store.aclose()


async def test_an_outage_longer_than_retry_for_raises(tmp_path: Path, prefix: str) -> None:
    with RedisServer(tmp_path / "redis", persistent=True) as server:
        store = RedisStore(url=server.url, prefix=prefix, retry_for=0.5)
        try:
            await store.create("o", ttl=60)
            server.stop()
            start = time.monotonic()
            with pytest.raises(redis.exceptions.ConnectionError):
                await store.read("o", 0, block=0)
            assert time.monotonic() - start < 5
            server.start()
            # Back: the same store works again.
            assert (await store.read("o", 0, block=0)).state == "live"
        finally:
            await store.aclose()


async def test_a_followed_stream_that_vanishes_is_missing_after_the_block(
    stores: list[RedisStore], redis_url: str, prefix: str, raw: redis.asyncio.Redis
) -> None:
    # A reader that follows a live stream goes straight to XREAD BLOCK; when the stream's
    # keys disappear meanwhile (expired, or lost by Redis), the block times out and the
    # check after it answers "missing".
    store = new_store(stores, redis_url, prefix)
    await store.create("v", ttl=60)
    await store.append("v", [event(1)])
    assert [n for n, _ in (await store.read("v", 0, block=1)).events] == [1]
    await raw.delete(f"{prefix}:{{v}}:meta", f"{prefix}:{{v}}:events")
    start = time.monotonic()
    batch = await store.read("v", 1, block=0.4)
    assert batch.state == "missing"
    assert 0.3 < time.monotonic() - start < 3


async def test_more_waiting_readers_than_redis_py_s_default_pool(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    # Every reader waiting in XREAD BLOCK holds a connection: 150 of them must not hit
    # the pool cap (100 by default in recent redis-py releases).
    store = new_store(stores, redis_url, prefix)
    ids = [f"m{n}" for n in range(150)]
    for stream_id in ids:
        await store.create(stream_id, ttl=60)
    got: dict[str, list[int]] = {}

    async def reader(stream_id: str) -> None:
        batch = await store.read(stream_id, 0, block=20)
        got[stream_id] = [n for n, _ in batch.events]

    with anyio.fail_after(30):
        async with anyio.create_task_group() as group:
            for stream_id in ids:
                group.start_soon(reader, stream_id)
            await anyio.sleep(0.5)
            for stream_id in ids:
                await store.append(stream_id, [event(1)])
    assert got == {stream_id: [1] for stream_id in ids}


async def test_finished_only_on_the_batch_that_reaches_the_end(
    stores: list[RedisStore], redis_url: str, prefix: str
) -> None:
    # Reads return at most 1,000 events: only the batch with the last one says "finished",
    # so a reader that stops on it has everything.
    store = new_store(stores, redis_url, prefix)
    await store.create("long", ttl=60)
    for start in range(1, 2501, 500):
        await store.append("long", [event(n) for n in range(start, start + 500)])
    await store.finish("long", expire=60)
    seen: list[tuple[int, int, str]] = []
    after = 0
    while True:
        batch = await store.read("long", after, block=0)
        if not batch.events:
            break
        seen.append((batch.events[0][0], batch.events[-1][0], batch.state))
        after = batch.events[-1][0]
    assert seen == [(1, 1000, "live"), (1001, 2000, "live"), (2001, 2500, "finished")]
