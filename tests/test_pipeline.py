"""iter_sse / aiter_sse: closing, heartbeats, errors, hooks; sync, asyncio and trio."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import pytest

import llmsse
from _chunks import answer
from llmsse import StreamResult

# Every pipeline variant: (name, async?, heartbeat on?, backend). "async?" is "thread" for
# a sync source in aiter_sse (read ahead by a thread of its own).
MODES = [
    ("sync", False, None, None),
    ("sync+heartbeat", False, 30.0, None),
    ("async", True, None, "asyncio"),
    ("async+heartbeat", True, 30.0, "asyncio"),
    ("trio", True, None, "trio"),
    ("trio+heartbeat", True, 30.0, "trio"),
    ("sync-source-async", "thread", None, "asyncio"),
    ("sync-source-async+heartbeat", "thread", 30.0, "asyncio"),
    ("sync-source-trio+heartbeat", "thread", 30.0, "trio"),
]


class Recorder:
    """A source that records how it was closed. Sync or async, like openai's streams."""

    def __init__(
        self, items: list[Any], *, fail_after: int | None = None, delay: float = 0.0
    ) -> None:
        self.items = items
        self.fail_after = fail_after
        self.delay = delay
        self.closes = 0
        self.closed_at: float | None = None
        self.yielded = 0

    def _step(self) -> Any:
        if self.fail_after is not None and self.yielded >= self.fail_after:
            raise RuntimeError("sk-secret-token leaked in an exception")
        if self.yielded >= len(self.items):
            return None
        self.yielded += 1
        return self.items[self.yielded - 1]

    def _closed(self) -> None:
        self.closes += 1
        self.closed_at = time.monotonic()

    # sync shape
    def __iter__(self) -> Iterator[Any]:
        while True:
            if self.delay:
                time.sleep(self.delay)
            item = self._step()
            if item is None:
                return
            yield item

    def close(self) -> None:
        self._closed()


class AsyncRecorder(Recorder):
    def __aiter__(self) -> AsyncIterator[Any]:
        return self._agen()

    async def _agen(self) -> AsyncIterator[Any]:
        while True:
            if self.delay:
                await anyio.sleep(self.delay)
            item = self._step()
            if item is None:
                return
            yield item

    async def close(self) -> None:  # type: ignore[override]
        self._closed()

    __iter__ = None  # type: ignore[assignment]


def make(mode: tuple[Any, ...], items: list[Any], **kw: Any) -> Recorder:
    return AsyncRecorder(items, **kw) if mode[1] is True else Recorder(items, **kw)


def consume(
    mode: tuple[Any, ...], source: Any, limit: int | None = None, **options: Any
) -> list[bytes]:
    """Run the pipeline of ``mode`` over ``source``; stop (close it) after ``limit`` events."""
    options.setdefault("heartbeat", mode[2])
    if not mode[1]:
        out: list[bytes] = []
        gen = llmsse.iter_sse(source, **options)
        for piece in gen:
            out.append(piece)
            if limit is not None and len(out) >= limit:
                gen.close()  # type: ignore[attr-defined]
                break
        return out

    async def main() -> list[bytes]:
        out: list[bytes] = []
        agen = llmsse.aiter_sse(source, **options)
        try:
            async for piece in agen:
                out.append(piece)
                if limit is not None and len(out) >= limit:
                    break
        finally:
            await agen.aclose()  # type: ignore[attr-defined]
        return out

    return anyio.run(main, backend=mode[3])


@pytest.fixture(params=MODES, ids=[m[0] for m in MODES])
def mode(request: pytest.FixtureRequest) -> tuple[Any, ...]:
    return request.param  # type: ignore[no-any-return]


def test_same_bytes_in_every_mode(mode: tuple[Any, ...]) -> None:
    expected = b"".join(llmsse.iter_sse(answer("a\nb", "c"), heartbeat=None))
    assert b"".join(consume(mode, make(mode, answer("a\nb", "c")))) == expected


FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_closed_once_at_the_end(mode: tuple[Any, ...], fmt: str) -> None:
    results: list[StreamResult] = []
    source = make(mode, answer("x"))
    consume(mode, source, format=fmt, on_complete=results.append)
    assert source.closes == 1
    assert [(r.outcome, r.text) for r in results] == [("finished", "x")]


@pytest.mark.parametrize("fmt", FORMATS)
def test_retry_comes_first_and_every_event_gets_the_next_id(fmt: str) -> None:
    data = b"".join(
        llmsse.iter_sse(answer("a", "b"), format=fmt, heartbeat=None, retry=1500, ids=True)
    )
    assert data.startswith(b"retry: 1500\n")
    parsed = llmsse.parse(data)
    assert [e.id for e in parsed] == [str(n) for n in range(1, len(parsed) + 1)]
    if fmt in ("openai", "ai-sdk"):  # the closing [DONE] is numbered like every event
        assert parsed[-1].data == "[DONE]"


@pytest.mark.parametrize("fmt", FORMATS)
def test_closed_once_when_the_consumer_stops(mode: tuple[Any, ...], fmt: str) -> None:
    results: list[StreamResult] = []
    source = make(mode, answer("a", "b", "c", "d"))
    out = consume(mode, source, limit=2, format=fmt, on_complete=results.append)
    assert len(out) == 2
    assert source.closes == 1
    assert [r.outcome for r in results] == ["disconnected"]
    # Only what was fed to the format counts, however far a reader thread read ahead:
    # two events are the role chunk (or the run's opening) and "a"; in "text", "a" and "b".
    expected = {"text": "ab", "openai": "a", "ai-sdk": "a", "ag-ui": "a"}[fmt]
    assert results[0].text == expected


def test_upstream_failure_becomes_a_generic_error_event(mode: tuple[Any, ...]) -> None:
    results: list[StreamResult] = []
    source = make(mode, answer("a", "b"), fail_after=2)
    body = b"".join(consume(mode, source, on_complete=results.append))
    events = llmsse.parse(body)
    assert [(e.event, e.data) for e in events] == [("message", "a"), ("error", events[-1].data)]
    assert json.loads(events[-1].data or "") == {
        "error": {"type": "internal_error", "message": "The response could not be completed."}
    }
    assert b"sk-secret" not in body
    assert source.closes == 1
    assert results[0].outcome == "failed"
    assert isinstance(results[0].error, RuntimeError)


def test_on_error_maps_the_message(mode: tuple[Any, ...]) -> None:
    source = make(mode, [], fail_after=0)
    body = b"".join(consume(mode, source, on_error=lambda exc: "Try again later."))
    assert json.loads(llmsse.parse(body)[-1].data or "")["error"]["message"] == "Try again later."
    source = make(mode, [], fail_after=0)
    body = b"".join(consume(mode, source, on_error=lambda exc: {"type": "quota", "message": "m"}))
    assert json.loads(llmsse.parse(body)[-1].data or "")["error"] == {
        "type": "quota",
        "message": "m",
    }


def test_on_error_can_re_raise(mode: tuple[Any, ...]) -> None:
    def reraise(exc: BaseException) -> None:
        raise exc

    results: list[StreamResult] = []
    source = make(mode, [], fail_after=0)
    with pytest.raises(RuntimeError, match="sk-secret"):
        consume(mode, source, on_error=reraise, on_complete=results.append)
    assert source.closes == 1
    assert [r.outcome for r in results] == ["failed"]


def test_on_complete_failure_does_not_break_the_stream(
    mode: tuple[Any, ...], caplog: pytest.LogCaptureFixture
) -> None:
    def broken(result: StreamResult) -> None:
        raise ValueError("db down")

    body = b"".join(consume(mode, make(mode, answer("x")), on_complete=broken))
    assert llmsse.parse(body)[-1].event == "done"
    assert "on_complete raised" in caplog.text


def test_an_item_of_the_wrong_kind_ends_the_stream_with_an_error(mode: tuple[Any, ...]) -> None:
    source = make(mode, ["ok", 42])
    events = llmsse.parse(b"".join(consume(mode, source)))
    assert [e.event for e in events] == ["message", "error"]
    assert source.closes == 1


def test_mixed_str_and_events(mode: tuple[Any, ...]) -> None:
    source = make(mode, ["a", llmsse.ServerSentEvent("x", event="note"), "b"])
    events = llmsse.parse(b"".join(consume(mode, source)))
    assert [(e.event, e.data) for e in events][:3] == [
        ("message", "a"),
        ("note", "x"),
        ("message", "b"),
    ]


@pytest.mark.parametrize("saved", [False, True], ids=["plain", "on_complete"])
@pytest.mark.parametrize("fmt", ["text", "ai-sdk", "ag-ui"])
def test_str_and_events_after_chunks_are_sent(mode: tuple[Any, ...], fmt: str, saved: bool) -> None:
    # Once a source has yielded chunks, a str or an event must not be taken for a chunk
    # of another SDK (and dropped as one without text).
    role, hi, *rest = answer("Hi", " end")
    items = [role, hi, "THERE", llmsse.ServerSentEvent("x", event="note"), *rest]
    results: list[StreamResult] = []
    on_complete = results.append if saved else None
    body = b"".join(consume(mode, make(mode, items), format=fmt, on_complete=on_complete))
    assert b"THERE" in body
    assert b"event: note\ndata: x\n\n" in body
    if saved:
        assert results[0].text == "HiTHERE end"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_heartbeat_from_the_first_moment_without_cancelling_the_source(backend: str) -> None:
    cancelled = []

    async def thinking() -> AsyncIterator[str]:
        try:
            await anyio.sleep(0.35)
        except BaseException:
            cancelled.append(True)
            raise
        yield "answer"

    async def main() -> list[bytes]:
        return [piece async for piece in llmsse.aiter_sse(thinking(), heartbeat=0.1)]

    out = anyio.run(main, backend=backend)
    assert out[0] == b": ping\n\n"
    assert 2 <= out.count(b": ping\n\n") <= 4
    assert out[-2:][0] == b"data: answer\n\n"
    assert not cancelled


PING = b": ping\n\n"


def test_sync_heartbeat_while_the_model_thinks() -> None:
    def thinking() -> Iterator[str]:
        time.sleep(0.35)
        yield "answer"

    start = time.monotonic()
    stamps = [
        (time.monotonic() - start, piece) for piece in llmsse.iter_sse(thinking(), heartbeat=0.1)
    ]
    assert stamps[0][1] == b": ping\n\n" and stamps[0][0] < 0.3
    assert [p for _, p in stamps][-2] == b"data: answer\n\n"


def test_sync_close_does_not_wait_for_a_blocked_stream() -> None:
    """Closing must unblock a Stream-like source at once (its close() ends the read)."""
    unblock = threading.Event()

    class Blocking:
        closes = 0

        def __iter__(self) -> Iterator[str]:
            yield "first"
            unblock.wait(5)

        def close(self) -> None:
            self.closes += 1
            unblock.set()

    source = Blocking()
    gen = llmsse.iter_sse(source, heartbeat=0.05)
    # A ping may come first on a busy machine: heartbeats run from the first moment.
    assert next(piece for piece in gen if piece != PING) == b"data: first\n\n"
    assert next(gen) == b": ping\n\n"
    start = time.monotonic()
    gen.close()  # type: ignore[attr-defined]
    assert time.monotonic() - start < 0.5
    assert source.closes == 1


def test_sync_generator_source_is_closed_by_its_reader_thread() -> None:
    closed = threading.Event()

    def slow() -> Iterator[str]:
        try:
            yield "a"
            time.sleep(0.3)
            yield "b"
        finally:
            closed.set()

    gen = llmsse.iter_sse(slow(), heartbeat=0.05)
    assert next(piece for piece in gen if piece != PING) == b"data: a\n\n"
    gen.close()  # type: ignore[attr-defined]
    assert closed.wait(2)
    time.sleep(0.05)
    assert not any(t.name == "llmsse-reader" and t.is_alive() for t in threading.enumerate())


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_source_in_aiter_sse_does_not_block_the_loop(backend: str) -> None:
    def blocking() -> Iterator[str]:
        for piece in ("a", "b", "c"):
            time.sleep(0.1)
            yield piece

    async def main() -> tuple[list[bytes], int]:
        ticks = 0
        out: list[bytes] = []

        async def tick() -> None:
            nonlocal ticks
            while True:
                await anyio.sleep(0.01)
                ticks += 1

        async with anyio.create_task_group() as tg:
            tg.start_soon(tick)
            async for piece in llmsse.aiter_sse(blocking(), heartbeat=None):
                out.append(piece)
            tg.cancel_scope.cancel()
        return out, ticks

    out, ticks = anyio.run(main, backend=backend)
    assert out[:3] == [b"data: a\n\n", b"data: b\n\n", b"data: c\n\n"]
    assert ticks >= 15  # the loop kept running while next() slept in a thread


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_source_reader_thread_never_loses_a_wake_up(backend: str) -> None:
    # Items arrive at every pace around the consumer's waits; without heartbeats a lost
    # wake-up would hang the stream (fail_after turns that into a failure).
    def jittery() -> Iterator[str]:
        for i in range(3000):
            if i % 3 == 0:
                time.sleep(0.00005 * (i % 7))
            yield f"{i} "

    async def main() -> list[bytes]:
        with anyio.fail_after(30):
            return [piece async for piece in llmsse.aiter_sse(jittery(), heartbeat=None)]

    out = anyio.run(main, backend=backend)
    text = "".join(e.data for e in llmsse.parse(b"".join(out)) if e.event == "message")
    assert text == "".join(f"{i} " for i in range(3000))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_sync_source_reader_thread_waits_for_a_slow_consumer_and_stops_with_it(
    backend: str,
) -> None:
    source = Recorder([f"{i} " for i in range(5000)])
    results: list[StreamResult] = []

    async def main() -> int:
        seen = 0
        agen = llmsse.aiter_sse(source, heartbeat=30.0, on_complete=results.append)
        async for _ in agen:
            seen += 1
            await anyio.sleep(0)  # let the reader thread run ahead and fill the queue
            if seen == 1000:
                break
        await agen.aclose()  # type: ignore[attr-defined]
        return seen

    assert anyio.run(main, backend=backend) == 1000
    deadline = time.monotonic() + 5
    while source.closes == 0 and time.monotonic() < deadline:
        time.sleep(0.01)  # the reader thread closes the generator when it comes out
    assert source.closes == 1
    assert source.yielded < 5000  # it waited for room instead of reading everything
    assert [r.outcome for r in results] == ["disconnected"]
    assert results[0].text == "".join(f"{i} " for i in range(1000))


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("heartbeat", [None, 0.05])
def test_cancellation_closes_the_source(backend: str, heartbeat: float | None) -> None:
    source = AsyncRecorder(["a", "b", "c", "d"], delay=0.1)
    results: list[StreamResult] = []

    async def main() -> None:
        with anyio.move_on_after(0.25):
            async for _ in llmsse.aiter_sse(
                source, heartbeat=heartbeat, on_complete=results.append
            ):
                pass

    anyio.run(main, backend=backend)
    assert source.closes == 1
    assert [r.outcome for r in results] == ["disconnected"]


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_async_on_complete_and_on_error(backend: str) -> None:
    seen: list[StreamResult] = []

    async def on_complete(result: StreamResult) -> None:
        await anyio.sleep(0)
        seen.append(result)

    async def on_error(exc: BaseException) -> str:
        return "mapped"

    async def main() -> bytes:
        source = AsyncRecorder(["a"], fail_after=1)
        return b"".join(
            [p async for p in llmsse.aiter_sse(source, on_complete=on_complete, on_error=on_error)]
        )

    body = anyio.run(main, backend=backend)
    assert json.loads(llmsse.parse(body)[-1].data or "")["error"]["message"] == "mapped"
    assert [r.outcome for r in seen] == ["failed"]


# --- bad input: a clear exception at the call, before any byte ------------------------


@pytest.mark.parametrize("fn", [llmsse.iter_sse, llmsse.aiter_sse])
@pytest.mark.parametrize(
    ("source", "options", "error", "match"),
    [
        ("hello", {}, TypeError, r"source must be .*got str \(to send one text, pass \[text\]\)"),
        (b"x", {}, TypeError, "got bytes"),
        (42, {}, TypeError, "got int"),
        ({"choices": []}, {}, TypeError, "got dict"),
        ([], {"format": "xml"}, ValueError, "unknown format 'xml'"),
        ([], {"format": 3}, TypeError, "format must be"),
        ([], {"heartbeat": 0}, ValueError, "heartbeat must be > 0"),
        ([], {"heartbeat": "15"}, TypeError, "heartbeat must be a number"),
        ([], {"heartbeat": True}, TypeError, "heartbeat must be a number"),
        ([], {"retry": -1}, ValueError, "retry must be a non-negative int"),
        ([], {"retry": 1.5}, ValueError, "retry must be a non-negative int"),
        ([], {"ids": "yes"}, TypeError, "ids must be a bool"),
        ([], {"on_complete": "print"}, TypeError, "on_complete must be callable"),
        ([], {"on_error": 1}, TypeError, "on_error must be callable"),
    ],
)
def test_bad_input_raises_at_the_call(
    fn: Any, source: Any, options: dict[str, Any], error: type, match: str
) -> None:
    with pytest.raises(error, match=match):
        fn(source, **options)


def test_iter_sse_rejects_async_sources() -> None:
    async def agen() -> AsyncIterator[str]:
        yield "x"

    with pytest.raises(TypeError, match=r"async source: use llmsse.aiter_sse\(\)"):
        llmsse.iter_sse(agen())

    async def on_complete(result: StreamResult) -> None: ...

    with pytest.raises(TypeError, match="coroutine function"):
        llmsse.iter_sse([], on_complete=on_complete)


def test_a_forgotten_await_is_named() -> None:
    async def create() -> list[str]:
        return []

    coro = create()
    with pytest.raises(TypeError, match="forget to await"):
        llmsse.aiter_sse(coro)
    coro.close()


def test_closing_before_the_first_event_still_closes_the_source(mode: tuple[Any, ...]) -> None:
    results: list[StreamResult] = []
    source = make(mode, answer("x"))
    options = {"heartbeat": mode[2], "on_complete": results.append}
    if mode[1]:

        async def main() -> None:
            agen = llmsse.aiter_sse(source, **options)
            await agen.aclose()  # type: ignore[attr-defined]
            await agen.aclose()  # type: ignore[attr-defined]

        anyio.run(main, backend=mode[3])
    else:
        llmsse.iter_sse(source, **options).close()  # type: ignore[attr-defined]
    assert source.closes == 1
    assert [r.outcome for r in results] == ["disconnected"]


def test_sync_reader_thread_sees_the_callers_context() -> None:
    import contextvars

    request: contextvars.ContextVar[str] = contextvars.ContextVar("request")

    def source() -> Iterator[str]:
        yield request.get("missing")

    request.set("req-1")
    body = b"".join(llmsse.iter_sse(source(), heartbeat=5.0))
    assert body.startswith(b"data: req-1\n\n")


def test_responses_events_give_the_same_bytes_in_every_mode(mode: tuple[Any, ...]) -> None:
    from llmsse.testing import response_events

    expected = b"".join(llmsse.iter_sse(response_events("a\nb c", reasoning="r"), heartbeat=None))
    results: list[StreamResult] = []
    source = make(mode, response_events("a\nb c", reasoning="r"))
    assert b"".join(consume(mode, source, on_complete=results.append)) == expected
    assert source.closes == 1
    assert [(r.text, r.reasoning, r.outcome) for r in results] == [("a\nb c", "r", "finished")]


def test_a_responses_failure_event_ends_the_stream_in_every_mode(mode: tuple[Any, ...]) -> None:
    from llmsse.testing import response_events

    results: list[StreamResult] = []
    events = response_events("a", end="failed", error_message="sk-secret-token")
    source = make(mode, [*events, *response_events("never sent")])
    body = b"".join(consume(mode, source, on_complete=results.append))
    parsed = llmsse.parse(body)
    assert [(e.event, e.data) for e in parsed[:-1]] == [("message", "a")]
    assert json.loads(parsed[-1].data or "") == {
        "error": {"type": "upstream_error", "message": "The response could not be completed."}
    }
    assert b"sk-secret" not in body
    assert source.closes == 1
    assert [r.outcome for r in results] == ["failed"]
    assert isinstance(results[0].error, llmsse.UpstreamError)


def test_reader_thread_of_an_abandoned_stream_ends_with_its_loop() -> None:
    # A stream read once and then dropped on a loop that is closed without
    # shutdown_asyncgens(): nobody will take the queued items, so the reader thread
    # must not wait for room forever.
    def readers() -> int:
        return sum(t.name == "llmsse-reader" for t in threading.enumerate())

    before = readers()
    loop = asyncio.new_event_loop()
    agen = llmsse.aiter_sse(iter([f"{i} " for i in range(100_000)]), heartbeat=30.0)

    async def take_one() -> bytes:
        return await agen.__anext__()

    assert loop.run_until_complete(take_one()) == b"data: 0 \n\n"
    assert readers() >= 1
    loop.close()
    deadline = time.monotonic() + 5
    while readers() > before and time.monotonic() < deadline:
        time.sleep(0.05)
    assert readers() <= before  # (other tests' reader threads may end meanwhile)
    asyncio.run(agen.aclose())  # type: ignore[attr-defined]  # not left to the GC hook


@pytest.mark.parametrize("kind", ["chunks", "str"])
def test_a_surrogate_pair_split_between_deltas_is_one_character(
    mode: tuple[Any, ...], kind: str
) -> None:
    # As JSON escapes, a provider can put each half of a pair in a delta of its own;
    # UTF-8 cannot carry a half, so the text format joins them (other formats send the
    # escapes, which a JS client joins). A lone half becomes U+FFFD; the stream goes on.
    pieces = ["a\ud83d", "\ude00b", "\udc00c", "d\ud83d", "e"]
    items: list[Any] = answer(*pieces) if kind == "chunks" else pieces
    results: list[StreamResult] = []
    body = b"".join(consume(mode, make(mode, items), on_complete=results.append))
    events = llmsse.parse(body)
    assert [e.data for e in events if e.event == "message"] == [
        "a",
        "\U0001f600b",
        "\ufffdc",
        "d",
        "e",
    ]
    assert events[-1].event == "done"
    assert results[0].text == "".join(pieces)  # on_complete gets what the model sent


@pytest.mark.parametrize("pipeline", ["iter_sse", "aiter_sse-asyncio", "aiter_sse-trio"])
def test_free_threaded_hand_offs_give_the_same_stream(
    pipeline: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without a GIL the reader thread takes the lock (sync) or wakes the loop (async)
    # for every item; force that path here.
    from llmsse import aio
    from llmsse import pipeline as sync_pipeline

    monkeypatch.setattr(sync_pipeline, "FREE_THREADED", True)
    monkeypatch.setattr(aio, "FREE_THREADED", True)
    pieces = [f"{i} " for i in range(2000)]
    expected = b"".join(llmsse.iter_sse(iter(pieces), heartbeat=None))
    if pipeline == "iter_sse":
        got = b"".join(llmsse.iter_sse(iter(pieces), heartbeat=30.0))
    else:

        async def main() -> bytes:
            return b"".join([p async for p in llmsse.aiter_sse(iter(pieces), heartbeat=30.0)])

        got = anyio.run(main, backend=pipeline.rpartition("-")[2])
    assert got == expected
