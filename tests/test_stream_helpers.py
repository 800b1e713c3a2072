"""The openai SDK's stream helpers as sources: ``client.chat.completions.stream(...)`` and
``client.responses.stream(...)``, as managers (the pipeline enters and exits them) and
entered. Exited exactly once on every way out; never entered when nothing is read."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import openai
import pytest
from openai.lib.streaming.chat import (
    AsyncChatCompletionStreamManager,
    ChatCompletionStream,
    ChatCompletionStreamManager,
)
from openai.lib.streaming.responses import (
    AsyncResponseStreamManager,
    ResponseStream,
    ResponseStreamManager,
)

import llmsse
from llmsse import StreamResult
from llmsse._errors import GENERIC_MESSAGE
from llmsse.testing import FakeOpenAI, RecordedRequest, Reply, http_error, tool_call

FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]
KINDS = ["chat", "responses"]


@pytest.fixture
def exits(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """How many times each kind of manager (or entered stream) was exited or closed."""
    counts = {"chat": 0, "responses": 0, "achat": 0, "aresponses": 0}

    def count(cls: type, name: str, key: str) -> None:
        original = getattr(cls, name)
        if name.startswith("__a"):

            async def wrapper(self: Any, *args: Any) -> Any:
                counts[key] += 1
                return await original(self, *args)

        else:

            def wrapper(self: Any, *args: Any) -> Any:  # type: ignore[misc]
                counts[key] += 1
                return original(self, *args)

        monkeypatch.setattr(cls, name, wrapper)

    count(ChatCompletionStreamManager, "__exit__", "chat")
    count(ResponseStreamManager, "__exit__", "responses")
    count(AsyncChatCompletionStreamManager, "__aexit__", "achat")
    count(AsyncResponseStreamManager, "__aexit__", "aresponses")
    return counts


def manager(client: Any, kind: str) -> Any:
    if kind == "chat":
        # Out of beta since openai 1.92; client.beta.chat.completions before.
        completions = client.chat.completions
        if not hasattr(completions, "stream"):
            completions = client.beta.chat.completions
        return completions.stream(model="m", messages=[{"role": "user", "content": "x"}])
    return client.responses.stream(model="m", input="x")


def run(source: Any, **options: Any) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []
    options.setdefault("heartbeat", None)
    body = b"".join(llmsse.iter_sse(source, on_complete=results.append, **options))
    (result,) = results
    return body, result


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_manager_in_every_format(fmt: str, kind: str, exits: dict[str, int]) -> None:
    # (No reasoning: the responses.stream() helper of openai 1.66, the oldest supported,
    # cannot parse today's reasoning items. test_responses.py tests reasoning events.)
    fake = FakeOpenAI(Reply("Hello world", refusal="No.", tool_calls=[tool_call("f", {"a": 1})]))
    body, result = run(manager(fake.client(), kind), format=fmt)
    assert (result.text, result.refusal) == ("Hello world", "No.")
    assert [(c.name, c.arguments) for c in result.tool_calls] == [("f", '{"a":1}')]
    assert (result.finish_reason, result.outcome) == ("tool_calls", "finished")
    assert b"world" in body
    assert exits[kind] == 1
    assert fake.last_request.closed


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heartbeat", [None, 30.0])
def test_nothing_is_sent_before_the_first_read(
    kind: str, heartbeat: float | None, exits: dict[str, int]
) -> None:
    fake = FakeOpenAI(Reply("never"))
    results: list[StreamResult] = []
    gen = llmsse.iter_sse(
        manager(fake.client(), kind), heartbeat=heartbeat, on_complete=results.append
    )
    gen.close()  # type: ignore[attr-defined]
    assert fake.requests == []  # never entered: no request, nothing to exit
    assert exits[kind] == 0
    assert [r.outcome for r in results] == ["disconnected"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heartbeat", [None, 30.0])
def test_the_consumer_closing_exits_once(
    kind: str, heartbeat: float | None, exits: dict[str, int]
) -> None:
    fake = FakeOpenAI(Reply("a b c d e f g h"), delay=0.02)
    results: list[StreamResult] = []
    gen = llmsse.iter_sse(
        manager(fake.client(), kind), heartbeat=heartbeat, on_complete=results.append
    )
    for piece in gen:
        if b"b" in piece:
            break
    gen.close()  # type: ignore[attr-defined]
    assert exits[kind] == 1
    assert [r.outcome for r in results] == ["disconnected"]
    deadline = time.monotonic() + 2
    while not fake.last_request.closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert fake.last_request.closed and fake.last_request.disconnected


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_request_is_never_exited(kind: str, exits: dict[str, int]) -> None:
    fake = FakeOpenAI(http_error(500, "sk-secret upstream detail"))
    body, result = run(manager(fake.client(), kind))
    assert isinstance(result.error, openai.InternalServerError)
    assert result.outcome == "failed"
    assert llmsse.parse(body)[-1].event == "error"
    assert b"sk-secret" not in body
    assert exits[kind] == 0  # __enter__ raised: there is no stream to exit


@pytest.mark.parametrize("kind", KINDS)
def test_a_failure_mid_stream_exits_once(kind: str, exits: dict[str, int]) -> None:
    fake = FakeOpenAI(Reply("Hello there", error="sk-secret upstream detail"))
    body, result = run(manager(fake.client(), kind), format="ai-sdk")
    assert isinstance(result.error, openai.APIError)
    assert result.text.startswith("Hello")
    assert b'{"type":"error","errorText":"%s"}' % GENERIC_MESSAGE.encode() in body
    assert exits[kind] == 1


@pytest.mark.parametrize("kind", KINDS)
def test_closing_while_the_request_is_sent_exits_once(kind: str, exits: dict[str, int]) -> None:
    """close() arrives while the reader thread is inside the manager's __enter__."""

    def slow(request: RecordedRequest) -> Reply:
        time.sleep(0.4)
        return Reply("late")

    fake = FakeOpenAI(slow)
    results: list[StreamResult] = []
    gen = llmsse.iter_sse(manager(fake.client(), kind), heartbeat=0.05, on_complete=results.append)
    assert next(gen) == b": ping\n\n"
    gen.close()  # type: ignore[attr-defined]
    assert [r.outcome for r in results] == ["disconnected"]
    deadline = time.monotonic() + 3
    while exits[kind] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)
    assert exits[kind] == 1  # exited by the reader thread once __enter__ returned
    assert fake.last_request.closed


@pytest.mark.parametrize("kind", KINDS)
def test_an_entered_stream_is_closed_once(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    closes: list[str] = []
    for cls in (ChatCompletionStream, ResponseStream):
        original: Callable[..., Any] = cls.close

        def close(self: Any, original: Callable[..., Any] = original) -> None:
            closes.append(type(self).__name__)
            original(self)

        monkeypatch.setattr(cls, "close", close)
    fake = FakeOpenAI(Reply("Hi"))
    with manager(fake.client(), kind) as stream:
        _, result = run(stream)
        assert result.text == "Hi"
        assert len(closes) == 1  # by the pipeline (the with block closes it once more)


# --- async ---------------------------------------------------------------------------------


def arun(source: Any, backend: str = "asyncio", **options: Any) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []

    async def main() -> bytes:
        stream = llmsse.aiter_sse(source, on_complete=results.append, **options)
        return b"".join([p async for p in stream])

    body = anyio.run(main, backend=backend)
    (result,) = results
    return body, result


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", KINDS)
def test_an_async_manager(kind: str, backend: str, exits: dict[str, int]) -> None:
    fake = FakeOpenAI(Reply("Hello async"))
    source = manager(fake.async_client(), kind)
    assert llmsse.is_async_source(source)
    body, result = arun(source, backend, format="ag-ui")
    assert (result.text, result.outcome) == ("Hello async", "finished")
    assert b"Hello" in body
    assert exits["a" + kind] == 1


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("heartbeat", [None, 0.05])
def test_cancelling_an_async_manager_exits_once(
    kind: str, backend: str, heartbeat: float | None, exits: dict[str, int]
) -> None:
    fake = FakeOpenAI(Reply("a b c d e f g h i j"), delay=0.05)
    results: list[StreamResult] = []

    async def main() -> None:
        with anyio.move_on_after(0.25):
            async for _ in llmsse.aiter_sse(
                manager(fake.async_client(), kind), heartbeat=heartbeat, on_complete=results.append
            ):
                pass

    anyio.run(main, backend=backend)
    assert exits["a" + kind] == 1
    assert [r.outcome for r in results] == ["disconnected"]
    assert fake.last_request.closed


@pytest.mark.parametrize("kind", KINDS)
def test_an_async_manager_closed_before_reading_sends_nothing(
    kind: str, exits: dict[str, int]
) -> None:
    fake = FakeOpenAI(Reply("never"))

    async def main() -> None:
        stream = llmsse.aiter_sse(manager(fake.async_client(), kind))
        await stream.aclose()  # type: ignore[attr-defined]

    anyio.run(main)
    assert fake.requests == []
    assert exits["a" + kind] == 0


@pytest.mark.parametrize("kind", KINDS)
def test_an_async_manager_failing_mid_stream(kind: str, exits: dict[str, int]) -> None:
    fake = FakeOpenAI(Reply("Hello there", error="boom"))
    body, result = arun(manager(fake.async_client(), kind), heartbeat=0.05)
    assert isinstance(result.error, openai.APIError)
    assert llmsse.parse(body)[-1].event == "error"
    assert exits["a" + kind] == 1


def test_a_sync_manager_under_an_async_pipeline_stays_off_the_loop(
    exits: dict[str, int],
) -> None:
    fake = FakeOpenAI(Reply("threaded"))
    source = manager(fake.client(), "responses")
    assert not llmsse.is_async_source(source)
    _, result = arun(source)
    assert result.text == "threaded"
    assert exits["responses"] == 1


def test_the_chat_helpers_events_are_read_as_chunks() -> None:
    fake = FakeOpenAI(Reply("Same", reasoning="why"))
    body, _ = run(manager(fake.client(), "chat"), format="openai")
    fake2 = FakeOpenAI(Reply("Same", reasoning="why"))
    expected = b"".join(
        llmsse.iter_sse(
            fake2.client().chat.completions.create(model="m", messages=[], stream=True),
            format="openai",
            heartbeat=None,
        )
    )

    def shape(data: bytes) -> Iterator[Any]:
        for e in llmsse.parse(data):
            yield e.data if e.data == "[DONE]" else sorted(__import__("json").loads(e.data or ""))

    assert list(shape(body)) == list(shape(expected))


def test_the_openai_format_relays_the_responses_helper_as_the_api_sent_it() -> None:
    """What the helper adds to the events it yields (text snapshots, parsed output) is not
    sent: the relay reads back the events of the plain stream."""
    import json

    reply = Reply("Hello there", refusal="No.", tool_calls=[tool_call("f", {"a": 1})])
    body, _ = run(manager(FakeOpenAI(reply).client(), "responses"), format="openai")
    plain = FakeOpenAI(reply).client().responses.create(model="m", input="x", stream=True)
    expected = [event.to_dict() for event in plain]

    def normal(event: dict[str, Any]) -> dict[str, Any]:
        if "response" in event:  # ids and clocks differ between two requests
            event["response"] = {**event["response"], "id": "-", "created_at": 0}
        if event.get("logprobs") == []:  # dropped by the helper of openai 1.66
            del event["logprobs"]
        return event

    relayed = [normal(json.loads(e.data or "")) for e in llmsse.parse(body)]
    assert relayed == [normal(e) for e in expected]
