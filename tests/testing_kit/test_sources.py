"""llmsse.testing.sources and .errors: fake SDK streams and the SDK's own exceptions."""

from __future__ import annotations

import asyncio
import time

import anyio
import openai
import pytest

from llmsse.testing import (
    FakeAsyncStream,
    FakeStream,
    api_connection_error,
    api_error,
    api_status_error,
    chunks,
)


def test_fake_stream_yields_and_records_one_close_from_with() -> None:
    items = chunks("Hello world")
    with FakeStream(items) as stream:
        assert list(stream) == items
    assert stream.exhausted and stream.yielded == len(items)
    assert stream.closed and stream.close_count == 1
    assert stream.closed_at is not None and stream.closed_at <= time.monotonic()


def test_fake_stream_counts_every_close() -> None:
    stream = FakeStream(["a", "b"])
    next(stream)
    stream.close()
    stream.close()
    assert stream.close_count == 2
    assert not stream.exhausted
    assert list(stream) == []  # a closed stream yields nothing more, like a closed response


def test_fake_stream_error_after_n_items_is_an_sdk_api_error() -> None:
    stream = FakeStream(chunks("a b c"), error_after=2)
    got = []
    with pytest.raises(openai.APIError) as info:
        for item in stream:
            got.append(item)
    assert len(got) == 2
    assert not hasattr(info.value, "status_code")  # mid-stream errors have none
    assert info.value.type == "server_error"
    assert stream.raised is info.value and stream.exhausted


def test_fake_stream_takes_an_error_instance_or_factory() -> None:
    stream = FakeStream(["a"], error=api_connection_error())
    assert next(stream) == "a"
    with pytest.raises(openai.APIConnectionError):
        next(stream)
    stream = FakeStream([], error=lambda: ValueError("x"))
    with pytest.raises(ValueError):
        next(stream)


def test_fake_stream_paces_its_items() -> None:
    stream = FakeStream(["a", "b", "c"], delay=0.02, first_delay=0.1)
    start = time.monotonic()
    next(stream)
    first = time.monotonic() - start
    list(stream)
    assert first >= 0.1
    assert time.monotonic() - start >= 0.14


def test_fake_stream_knows_when_it_was_read_on_an_event_loop() -> None:
    stream = FakeStream(["a", "b"])

    async def bad_route() -> None:
        for _ in stream:  # a sync stream iterated in async def blocks the loop
            pass

    asyncio.run(bad_route())
    assert stream.on_event_loop

    good = FakeStream(["a", "b"])

    async def good_route() -> None:
        await anyio.to_thread.run_sync(list, good)

    asyncio.run(good_route())
    assert not good.on_event_loop


@pytest.mark.anyio
async def test_fake_async_stream_yields_and_records_close_and_aclose() -> None:
    items = chunks("Hi there")
    async with FakeAsyncStream(items) as stream:
        assert [item async for item in stream] == items
    assert stream.close_count == 1
    other = FakeAsyncStream(["a"])
    await other.aclose()
    await other.close()
    assert other.close_count == 2
    assert [item async for item in other] == []


@pytest.mark.anyio
async def test_fake_async_stream_raises_after_n_items() -> None:
    stream = FakeAsyncStream(["a", "b", "c"], error=api_error("boom"), error_after=1)
    got = []
    with pytest.raises(openai.APIError, match="boom"):
        async for item in stream:
            got.append(item)
    assert got == ["a"]


@pytest.mark.anyio
async def test_cancelling_a_read_is_recorded() -> None:
    stream = FakeAsyncStream(["a"], first_delay=5)
    with anyio.move_on_after(0.05):
        await stream.__anext__()
    assert stream.cancelled and stream.yielded == 0


def test_negative_delay_is_refused() -> None:
    with pytest.raises(ValueError):
        FakeStream([], delay=-1)


def test_status_errors_are_the_sdk_subclasses_with_a_real_response() -> None:
    error = api_status_error(429)
    assert isinstance(error, openai.RateLimitError)
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert error.response.status_code == 429
    assert error.body == {
        "message": error.body["message"],  # type: ignore[index]
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert isinstance(api_status_error(401), openai.AuthenticationError)
    assert isinstance(api_status_error(503), openai.InternalServerError)
    assert isinstance(api_status_error(418), openai.APIStatusError)
    assert isinstance(api_connection_error(timeout=True), openai.APITimeoutError)


def test_close_from_another_thread_ends_a_pending_delay() -> None:
    import threading

    stream = FakeStream(["a"], first_delay=10)
    threading.Timer(0.05, stream.close).start()
    start = time.monotonic()
    assert list(stream) == []
    assert time.monotonic() - start < 2 and stream.close_count == 1
