"""Resumable streams across processes: two uvicorn workers on one real redis-server.

Each worker is its own process (``_redis_app.py``) with its own ``RedisStore``; the model is
the real ``AsyncOpenAI`` client talking to the fake OpenAI API of ``llmsse.testing`` over a
socket in this process, which records when each upstream response was closed. Every check
compares what the clients received, parsed with ``llmsse.parse``, with the whole stream:
nothing lost, nothing duplicated.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

import llmsse
from llmsse import ServerSentEvent
from llmsse.testing import FakeChatServer, FakeOpenAI, RecordedRequest, Reply

from ._redis_server import RedisServer, free_port, require_redis_server, shared_redis_url

pytestmark = [pytest.mark.anyio, pytest.mark.integration]

HERE = Path(__file__).resolve().parent
START_TIMEOUT = 30.0

WORDS = ["Hello", " wörld", "\n", " 😀", " line\nbreak", " data: x", "\n\n", " id: 7", " €", " ok"]


def pieces(seed: int, n: int) -> list[str]:
    """The answer the fake API streams for a spec: ``n`` pieces, some with line breaks."""
    rng = random.Random(seed)
    return [rng.choice(WORDS) for _ in range(n)]


def answer(request: RecordedRequest) -> Reply:
    spec = json.loads(request.last_user_message)
    return Reply(content=pieces(spec["seed"], spec["n"]), delay=spec["delay"])


def spec(n: int, delay: float, seed: int | None = None) -> dict[str, Any]:
    return {"n": n, "delay": delay, "seed": random.randrange(10**9) if seed is None else seed,
            "tag": uuid.uuid4().hex}  # fmt: skip


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeChatServer]:
    with FakeOpenAI(default=answer).serve() as server:
        yield server


def _wait_for_port(port: int, process: subprocess.Popen[bytes]) -> None:
    import socket

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"worker on port {port} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker on port {port} did not start") from None
            time.sleep(0.05)


@contextlib.contextmanager
def workers(
    count: int,
    redis_url: str,
    fake_url: str,
    *,
    prefix: str | None = None,
    gunicorn: bool = False,
) -> Iterator[list[str]]:
    """``count`` uvicorn processes of ``_redis_app`` sharing ``redis_url`` (or, with
    ``gunicorn``, one gunicorn of ``count`` gthread workers of ``_redis_flask_app``);
    their URLs. Stores use ``prefix`` (a new one by default)."""
    env = {
        **os.environ,
        "LLMSSE_TEST_REDIS_URL": redis_url,
        "LLMSSE_TEST_PREFIX": prefix or f"w-{uuid.uuid4().hex[:12]}",
        "LLMSSE_TEST_OPENAI": fake_url,
    }
    started: list[tuple[int, subprocess.Popen[bytes]]] = []
    try:
        for _ in range(1 if gunicorn else count):
            port = free_port()
            if gunicorn:
                command = [
                    str(Path(sys.executable).with_name("gunicorn")),
                    "--bind", f"127.0.0.1:{port}",
                    "--worker-class", "gthread", "--workers", str(count), "--threads", "8",
                    "--graceful-timeout", "1", "--log-level", "warning",
                    "--chdir", str(HERE), "_redis_flask_app:app",
                ]  # fmt: skip
            else:
                command = [
                    sys.executable, "-m", "uvicorn", "_redis_app:app",
                    "--app-dir", str(HERE),
                    "--host", "127.0.0.1", "--port", str(port),
                    "--log-level", "warning", "--lifespan", "off",
                    "--timeout-graceful-shutdown", "1",
                ]  # fmt: skip
            process = subprocess.Popen(command, env=env, stdin=subprocess.DEVNULL)
            started.append((port, process))
        for port, process in started:
            _wait_for_port(port, process)
        yield [f"http://127.0.0.1:{port}" for port, _ in started]
    finally:
        for _, process in started:
            process.send_signal(signal.SIGTERM)
        for _, process in started:
            try:
                process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=5)


@pytest.fixture(scope="module")
def pair(request: pytest.FixtureRequest, fake: FakeChatServer) -> Iterator[list[str]]:
    """Workers A and B on the session's shared redis-server."""
    require_redis_server()
    with workers(2, shared_redis_url(request), fake.base_url) as urls:
        yield urls


async def start(client: httpx.AsyncClient, base: str, body: dict[str, Any]) -> str:
    message = json.dumps(body.pop("spec"))
    response = await client.post(f"{base}/chat", json={"message": message, **body})
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["id"]
    return stream_id


async def read(
    client: httpx.AsyncClient,
    base: str,
    stream_id: str,
    *,
    last_event_id: str | None = None,
    limit: int | None = None,
) -> list[ServerSentEvent]:
    """The events of one GET, up to ``limit`` (then the connection is dropped)."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    decoder = llmsse.SSEDecoder()
    events: list[ServerSentEvent] = []
    if limit == 0:
        async with client.stream("GET", f"{base}/chat/{stream_id}", headers=headers):
            return events
    async with client.stream("GET", f"{base}/chat/{stream_id}", headers=headers) as response:
        if response.status_code == 204:
            return events
        assert response.status_code == 200, response.status_code
        async for chunk in response.aiter_raw():
            events += decoder.feed(chunk)
            if limit is not None and len(events) >= limit:
                return events[:limit]  # the rest of this chunk is never "received"
    return events


def check_whole(events: list[ServerSentEvent], expected: list[str]) -> None:
    """``events`` are the whole stream of the answer ``expected``: ids 1..n+1, each once,
    every piece exactly, then ``done``."""
    assert [event.id for event in events] == [str(n) for n in range(1, len(expected) + 2)]
    assert [event.data for event in events[:-1]] == expected
    assert all(event.event == "message" for event in events[:-1])
    assert events[-1].event == "done"


def as_tuples(events: list[ServerSentEvent]) -> list[tuple[str, str | None, str | None]]:
    return [(event.event or "", event.data, event.id) for event in events]


def upstream(fake: FakeChatServer, body: dict[str, Any]) -> RecordedRequest:
    message = json.dumps(body["spec"])
    return next(r for r in fake.requests if r.last_user_message == message)


async def test_resume_on_the_other_worker_at_every_position(
    pair: list[str], fake: FakeChatServer
) -> None:
    n = 16
    seed = 7
    expected = pieces(seed, n)
    total = n + 1  # the done event
    results: dict[int, tuple[list[ServerSentEvent], list[ServerSentEvent]]] = {}
    bodies: dict[int, dict[str, Any]] = {}

    async def one(k: int, client: httpx.AsyncClient) -> None:
        first, second = pair[k % 2], pair[1 - k % 2]
        body = {"spec": spec(n, 0.02, seed)}
        bodies[k] = dict(body)
        stream_id = await start(client, first, body)
        before = await read(client, first, stream_id, limit=k)
        last = before[-1].id if before else None
        after = await read(client, second, stream_id, last_event_id=last)
        results[k] = before, after

    with anyio.fail_after(60):
        async with httpx.AsyncClient(timeout=30) as client, anyio.create_task_group() as group:
            for k in range(total + 1):
                group.start_soon(one, k, client)
    for k, (before, after) in sorted(results.items()):
        assert len(before) == k
        check_whole(before + after, expected)
    # Dropping the connection never stopped a generation: every answer was delivered.
    with anyio.fail_after(10):
        while not all(upstream(fake, body).finished_at for body in bodies.values()):
            await anyio.sleep(0.05)
    for body in bodies.values():
        record = upstream(fake, body)
        # (Not "not disconnected": the SDK may hang up once it has [DONE], before the
        # fake's last write.)
        assert record.delivered


async def test_a_finished_stream_resumes_from_every_id_on_both_workers(
    pair: list[str], fake: FakeChatServer
) -> None:
    n = 12
    seed = 11
    expected = pieces(seed, n)
    async with httpx.AsyncClient(timeout=30) as client:
        stream_id = await start(client, pair[0], {"spec": spec(n, 0.0, seed)})
        whole = await read(client, pair[1], stream_id)
        check_whole(whole, expected)
        for base in pair:
            for last in range(n + 2):
                rest = await read(client, base, stream_id, last_event_id=str(last))
                assert as_tuples(rest) == as_tuples(whole[last:])
            response = await client.get(
                f"{base}/chat/{stream_id}", headers={"Last-Event-ID": str(n + 1)}
            )
            assert response.status_code == 204
            assert (await client.get(f"{base}/chat/unknown-{uuid.uuid4().hex}")).status_code == 404


async def test_ten_clients_read_one_stream_at_once(pair: list[str]) -> None:
    n = 60
    seed = 3
    expected = pieces(seed, n)
    got: list[list[ServerSentEvent]] = []
    async with httpx.AsyncClient(timeout=30) as client:
        stream_id = await start(client, pair[0], {"spec": spec(n, 0.01, seed)})

        async def reader(index: int) -> None:
            got.append(await read(client, pair[index % 2], stream_id))

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                for index in range(10):
                    group.start_soon(reader, index)
    assert len(got) == 10
    for events in got:
        check_whole(events, expected)


async def test_cancel_on_one_worker_stops_the_upstream_on_the_other(
    pair: list[str], fake: FakeChatServer
) -> None:
    body = {"spec": spec(400, 0.02)}
    async with httpx.AsyncClient(timeout=30) as client:
        stream_id = await start(client, pair[0], dict(body))
        record = upstream(fake, body)
        events: list[ServerSentEvent] = []
        ended = anyio.Event()

        async def follow() -> None:
            events.extend(await read(client, pair[1], stream_id))
            ended.set()

        with anyio.fail_after(30):
            async with anyio.create_task_group() as group:
                group.start_soon(follow)
                while record.parts_sent < 10:
                    await anyio.sleep(0.02)
                cancelled_at = time.monotonic()
                response = await client.post(f"{pair[1]}/chat/{stream_id}/cancel")
                assert response.json()["cancelled"] is True
                await ended.wait()
                while record.finished_at is None:
                    await anyio.sleep(0.02)
        # Worker A closed the model's response: the fake saw the client leave early.
        assert record.disconnected and not record.delivered
        assert record.finished_at - cancelled_at < 1.5
        # The readers got what was produced, in order, and the end (no terminal event).
        assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
        assert all(event.event == "message" for event in events)
        again = await read(client, pair[0], stream_id)
        assert as_tuples(again) == as_tuples(events)
        second = await client.post(f"{pair[0]}/chat/{stream_id}/cancel")
        assert second.json()["cancelled"] is False


async def test_a_finished_stream_expires(pair: list[str]) -> None:
    async with httpx.AsyncClient(timeout=30) as client:
        stream_id = await start(client, pair[0], {"spec": spec(5, 0.0), "expire": 0.5})
        assert len(await read(client, pair[1], stream_id)) == 6
        start_at = time.monotonic()
        with anyio.fail_after(10):
            while (await client.get(f"{pair[1]}/chat/{stream_id}")).status_code != 404:
                await anyio.sleep(0.05)
        assert time.monotonic() - start_at >= 0.2


async def test_redis_restarting_mid_stream(tmp_path: Path, fake: FakeChatServer) -> None:
    n = 80
    seed = 5
    expected = pieces(seed, n)
    with (
        RedisServer(tmp_path / "redis", persistent=True) as server,
        workers(2, server.url, fake.base_url) as urls,
    ):
        async with httpx.AsyncClient(timeout=60) as client:
            body = {"spec": spec(n, 0.02, seed)}
            stream_id = await start(client, urls[0], dict(body))
            record = upstream(fake, body)
            results: list[list[ServerSentEvent]] = []

            async def straight(base: str) -> None:
                results.append(await read(client, base, stream_id))

            async def dropping() -> None:
                before = await read(client, urls[0], stream_id, limit=5)
                while not restarted:
                    await anyio.sleep(0.02)
                after = await read(client, urls[1], stream_id, last_event_id=before[-1].id)
                results.append(before + after)

            restarted = False
            with anyio.fail_after(60):
                async with anyio.create_task_group() as group:
                    group.start_soon(straight, urls[0])
                    group.start_soon(straight, urls[1])
                    group.start_soon(dropping)
                    await anyio.sleep(0.5)
                    assert 0 < record.parts_sent < n  # mid-stream
                    await anyio.to_thread.run_sync(lambda: server.restart(down=0.3))
                    restarted = True
        assert len(results) == 3
        for events in results:
            check_whole(events, expected)


async def test_flask_under_gunicorn_and_starlette_share_streams(
    request: pytest.FixtureRequest, fake: FakeChatServer
) -> None:
    # Flask (WSGI: the store on each process's background loop) and Starlette (ASGI)
    # workers on one Redis and one prefix: start, resume and cancel across both.
    require_redis_server()
    n = 20
    seed = 13
    expected = pieces(seed, n)
    prefix = f"mixed-{uuid.uuid4().hex[:12]}"
    redis_url = shared_redis_url(request)
    with (
        workers(2, redis_url, fake.base_url, prefix=prefix, gunicorn=True) as flask_urls,
        workers(1, redis_url, fake.base_url, prefix=prefix) as starlette_urls,
    ):
        wsgi, asgi = flask_urls[0], starlette_urls[0]
        async with httpx.AsyncClient(timeout=30) as client:
            for first, second in ((wsgi, asgi), (asgi, wsgi)):
                stream_id = await start(client, first, {"spec": spec(n, 0.01, seed)})
                before = await read(client, first, stream_id, limit=4)
                after = await read(client, second, stream_id, last_event_id=before[-1].id)
                check_whole(before + after, expected)
                check_whole(await read(client, wsgi, stream_id), expected)

            body = {"spec": spec(400, 0.02)}
            stream_id = await start(client, wsgi, dict(body))
            record = upstream(fake, body)
            with anyio.fail_after(30):
                while record.parts_sent < 5:
                    await anyio.sleep(0.02)
                cancelled_at = time.monotonic()
                response = await client.post(f"{asgi}/chat/{stream_id}/cancel")
                assert response.json()["cancelled"] is True
                while record.finished_at is None:
                    await anyio.sleep(0.02)
            assert record.disconnected and not record.delivered
            assert record.finished_at - cancelled_at < 1.5
            events = await read(client, wsgi, stream_id)
            assert [event.id for event in events] == [str(i) for i in range(1, len(events) + 1)]
