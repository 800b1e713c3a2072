"""The adapters' send loops take every event that is ready at once: same bytes, fewer writes.

``iter_sse_batched`` (WSGI adapters) and ``events_of(aiter_sse(...))`` (ASGI adapters, the
async-under-WSGI bridge) hand out the events a read-ahead producer has already queued as
one ``bytes``: at most ``_BATCH`` events, never waiting for one more.
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import flask
import pytest

import llmsse
from _chunks import answer
from llmsse import aio, pipeline
from llmsse._wsgi import BackgroundIterator
from llmsse.aio import events_of
from llmsse.pipeline import iter_sse_batched

FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]
BACKENDS = ["sync", "asyncio", "trio"]
PIECES = [f"w{i} " if i % 7 else f"line {i}\n" for i in range(300)]


class Failing(Exception):
    pass


def items_of(kind: str, items: list[Any], fail: bool = False, **options: Any) -> list[bytes]:
    """What an adapter's send loop gets from the batched pipeline of ``kind``."""
    options.setdefault("heartbeat", 30.0)

    def sync_source() -> Iterator[Any]:
        yield from items
        if fail:
            raise Failing("sk-secret")

    async def async_source() -> AsyncIterator[Any]:
        for item in items:
            yield item
        if fail:
            raise Failing("sk-secret")

    if kind == "sync":
        return list(iter_sse_batched(sync_source(), **options))

    async def main() -> list[bytes]:
        return [item async for item in events_of(llmsse.aiter_sse(async_source(), **options))]

    return anyio.run(main, backend=kind)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", BACKENDS)
@pytest.mark.parametrize("fail", [False, True], ids=["finished", "failed"])
def test_same_bytes_as_one_event_at_a_time(kind: str, fmt: str, fail: bool) -> None:
    source = answer(*PIECES)
    if fail:
        source = source[:-2]  # no finish chunk, no usage: the source fails instead

    def per_event() -> Iterator[Any]:
        yield from source
        if fail:
            raise Failing("sk-secret")

    expected = b"".join(llmsse.iter_sse(per_event(), format=fmt, heartbeat=None, ids=True))
    got = items_of(kind, source, fail, format=fmt, ids=True)
    assert same_ids(b"".join(got)) == same_ids(expected)
    assert b"sk-secret" not in expected
    # A burst of 300 events does not go out one event per item, nor all in one.
    events = len(llmsse.parse(expected))
    assert 1 < len(got) < events / 2
    # At most _BATCH of the format's outputs per item (one output: one event in "text";
    # a text-start and its first delta in "ai-sdk", ...).
    most = aio._BATCH if fmt in ("text", "openai") else 2 * aio._BATCH
    assert aio._BATCH == pipeline._BATCH
    for item in got:
        assert len(llmsse.parse(item)) <= most
        assert item.endswith(b"\n\n")  # whole events only


def same_ids(body: bytes) -> bytes:
    """``body`` with the random message and run ids of "ai-sdk" and "ag-ui" made equal."""
    return re.sub(rb"[0-9a-f]{16,}", b"ID", body)


@pytest.mark.parametrize("kind", BACKENDS)
def test_nothing_waits_for_a_next_event(kind: str) -> None:
    # The source gives "b" only once the consumer holds "a": a batch that waited for
    # more would never be handed out (and the waits below would time out).
    got: list[bytes] = []
    if kind == "sync":
        seen = threading.Event()

        def source() -> Iterator[str]:
            yield "a"
            assert seen.wait(5), "the batch holding 'a' was not handed out"
            yield "b"

        for item in iter_sse_batched(source(), heartbeat=30.0):
            got.append(item)
            if b"data: a" in item:
                seen.set()
    else:

        async def main() -> None:
            seen = anyio.Event()

            async def source() -> AsyncIterator[str]:
                yield "a"
                with anyio.fail_after(5):
                    await seen.wait()
                yield "b"

            async for item in events_of(llmsse.aiter_sse(source(), heartbeat=30.0)):
                got.append(item)
                if b"data: a" in item:
                    seen.set()

        anyio.run(main, backend=kind)
    assert got[0] == b"data: a\n\n"
    assert [e.data for e in llmsse.parse(b"".join(got))][:2] == ["a", "b"]


@pytest.mark.parametrize("kind", BACKENDS)
def test_heartbeats_still_go_out_alone(kind: str) -> None:
    def sync_source() -> Iterator[str]:
        threading.Event().wait(0.25)
        yield "late"

    async def async_source() -> AsyncIterator[str]:
        await anyio.sleep(0.25)
        yield "late"

    if kind == "sync":
        got = list(iter_sse_batched(sync_source(), heartbeat=0.1))
    else:

        async def main() -> list[bytes]:
            stream = llmsse.aiter_sse(async_source(), heartbeat=0.1)
            return [item async for item in events_of(stream)]

        got = anyio.run(main, backend=kind)
    assert got[:2] == [b": ping\n\n", b": ping\n\n"]
    assert got[2].startswith(b"data: late\n\nevent: done\n")  # the end joins the last batch


def test_without_heartbeats_there_is_nothing_to_batch() -> None:
    # No read-ahead producer: each item is read when asked for, one event each.
    assert list(iter_sse_batched(iter(["a", "b"]), heartbeat=None)) == [
        b"data: a\n\n",
        b"data: b\n\n",
        b'event: done\ndata: {"finish_reason":null,"usage":null}\n\n',
    ]


def test_iter_sse_batched_checks_its_options_at_the_call() -> None:
    with pytest.raises(ValueError, match="format"):
        iter_sse_batched(iter(["a"]), format="nope")
    with pytest.raises(TypeError):
        iter_sse_batched(42)


def test_aiter_sse_itself_still_gives_one_event_per_item() -> None:
    async def main() -> list[bytes]:
        return [item async for item in llmsse.aiter_sse(iter(PIECES), heartbeat=30.0)]

    got = asyncio.run(main())
    assert len(got) == len(PIECES) + 1


# --- the adapters ------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["async", "sync"])
def test_starlette_sends_a_burst_in_few_messages(kind: str) -> None:
    # A sync source is read ahead by a thread of its own: it batches too.
    from llmsse.starlette import sse_response

    bodies: list[bytes] = []

    async def async_source() -> AsyncIterator[str]:
        for piece in PIECES:
            yield piece

    def source() -> Any:
        return async_source() if kind == "async" else iter(PIECES)

    async def main() -> None:
        async def receive() -> dict[str, Any]:
            await anyio.sleep(30)
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                bodies.append(message["body"])

        scope = {"type": "http", "method": "GET", "asgi": {"spec_version": "2.3"}}
        await sse_response(source())(scope, receive, send)

    asyncio.run(main())
    assert b"".join(bodies) == b"".join(llmsse.iter_sse(iter(PIECES), heartbeat=None))
    assert len(bodies) < len(PIECES) / 2


def test_flask_response_body_comes_in_batches() -> None:
    from llmsse.flask import sse_response

    app = flask.Flask(__name__)
    with app.test_request_context("/"):
        response = sse_response(iter(PIECES))
        got = list(response.response)
        response.close()
    assert b"".join(got) == b"".join(llmsse.iter_sse(iter(PIECES), heartbeat=None))
    assert len(got) < len(PIECES) / 2


def test_async_source_under_wsgi_crosses_threads_per_batch() -> None:
    async def source() -> AsyncIterator[str]:
        for piece in PIECES:
            yield piece

    bridge = BackgroundIterator(llmsse.aiter_sse(source(), heartbeat=30.0))
    got = list(bridge)
    assert b"".join(got) == b"".join(llmsse.iter_sse(iter(PIECES), heartbeat=None))
    assert len(got) < len(PIECES) / 2


def test_django_responses_come_in_batches() -> None:
    from integration.apps import django_app  # noqa: F401  (configures Django)
    from llmsse.django import SSEResponse

    expected = b"".join(llmsse.iter_sse(iter(PIECES), heartbeat=None))
    sync_items = list(SSEResponse(iter(PIECES)).streaming_content)
    assert b"".join(sync_items) == expected
    assert len(sync_items) < len(PIECES) / 2

    async def source() -> AsyncIterator[str]:
        for piece in PIECES:
            yield piece

    async def main() -> list[bytes]:
        response = SSEResponse(source())
        return [item async for item in response]

    async_items = asyncio.run(main())
    assert b"".join(async_items) == expected
    assert len(async_items) < len(PIECES) / 2
