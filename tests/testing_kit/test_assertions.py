"""llmsse.testing.assertions: the kit fails the streams real endpoints get wrong."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import StreamingResponse
from starlette.routing import Route
from starlette.testclient import TestClient

import llmsse
from llmsse.testing import (
    FakeOpenAI,
    Reply,
    assert_sse_response,
    assert_valid_sse,
    chunk_dicts,
    read_text_stream,
    sse_body,
    sse_problems,
)

GOOD = b'data: Hello\ndata: world\n\nevent: done\ndata: {"finish_reason":"stop","usage":null}\n\n'
DONE = 'event: done\ndata: {"finish_reason":"stop","usage":null}\n\n'


def naive_app(fake: FakeOpenAI) -> Starlette:
    """The tutorial endpoint: every delta written into one f-string `data:` line."""

    async def chat(request: Request) -> StreamingResponse:
        client = fake.async_client()

        async def events() -> AsyncIterator[str]:
            stream = await client.chat.completions.create(
                model="m", messages=[{"role": "user", "content": "Hi"}], stream=True
            )
            async for chunk in stream:
                delta = chunk.choices[0].delta.content if chunk.choices else None
                if delta:
                    yield f"data: {delta}\n\n"
            yield DONE  # even with a proper ending, the body is broken

        return StreamingResponse(events(), media_type="text/event-stream")

    return Starlette(routes=[Route("/chat", chat, methods=["POST"])])


def test_the_naive_loop_fails_on_a_multi_line_answer() -> None:
    fake = FakeOpenAI("Here is a list:\n\n- one\n- two")
    client = TestClient(naive_app(fake))
    response = client.post("/chat")
    with pytest.raises(AssertionError, match="not an SSE field") as info:
        assert_valid_sse(response)
    # "\n\n-" arrived as one delta: after "data: " the "-" line is dropped by a browser
    assert "is not an SSE field: '-'" in str(info.value)


def test_the_naive_loop_loses_newlines_sent_as_their_own_delta() -> None:
    answer = ["Here is a list:", "\n", "- one", "\n", "- two"]
    client = TestClient(naive_app(FakeOpenAI(Reply(answer))))
    response = client.post("/chat")
    assert_valid_sse(response)
    reply = read_text_stream(response)
    # Framing is valid, but each "\n" became an empty event: the text comparison catches it.
    assert reply.text != "".join(answer)
    assert reply.text == "Here is a list:- one- two"


def test_the_naive_loop_passes_on_one_line_which_is_why_it_ships() -> None:
    client = TestClient(naive_app(FakeOpenAI("Hello there")))
    assert_valid_sse(client.post("/chat"))


def test_a_valid_stream_passes_and_returns_its_events() -> None:
    events = assert_valid_sse(GOOD)
    assert [e.event for e in events] == ["message", "done"]
    assert sse_problems(GOOD) == []


def test_crlf_framing_fails() -> None:
    with pytest.raises(AssertionError, match="CR at byte 11"):
        assert_valid_sse(GOOD.replace(b"\n", b"\r\n"))


def test_an_unterminated_last_event_fails() -> None:
    with pytest.raises(AssertionError, match="not ended by a blank line"):
        assert_valid_sse(GOOD[:-1])


def test_a_stream_without_done_or_error_fails() -> None:
    with pytest.raises(AssertionError, match="no terminal 'done' or 'error'"):
        assert_valid_sse(b"data: Hello\n\n")
    assert_valid_sse(b"data: Hello\n\n", terminal=False)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", "empty"),
        (b"\xef\xbb\xbf" + GOOD, "BOM"),
        (b"data: \xff\n\n" + GOOD, "invalid UTF-8"),
        (GOOD + b"data: late\n\n", "after the terminal"),
        (b"event: thinking\ndata: x\n\n" + GOOD, "not an event type"),
        (b"event: tool_call\ndata: {}\n\n" + GOOD, "needs index, id, name"),
        (b"event: done\ndata: stop\n\n", "not a JSON object"),
        (b'event: error\ndata: {"message":"x"}\n\n', "needs {'error'"),
    ],
)
def test_text_format_mistakes(body: bytes, message: str) -> None:
    with pytest.raises(AssertionError, match=message):
        assert_valid_sse(body)


def test_openai_format() -> None:
    body = sse_body(chunk_dicts("Hi"))
    assert_valid_sse(body, format="openai")
    assert_valid_sse(
        b'data: {"choices":[]}\n\ndata: {"error":{"message":"x"}}\n\n', format="openai"
    )
    for bad, message in [
        (sse_body(chunk_dicts("Hi"), done=False), r"no 'data: \[DONE\]'"),
        (b"event: chunk\n" + body, "name no events"),
        (b'data: {"id":"x"}\n\n' + body, "'choices' list"),
        (body + b"data: {}\n\n", "after the end"),
    ]:
        with pytest.raises(AssertionError, match=message):
            assert_valid_sse(bad, format="openai")


def test_framing_only() -> None:
    assert_valid_sse(b"event: anything\ndata: x\n\n", format=None)
    with pytest.raises(ValueError, match="format must be"):
        sse_problems(GOOD, format="html")  # type: ignore[arg-type]


@pytest.mark.parametrize("fmt", ["ai-sdk", "ag-ui"])
def test_the_json_formats_are_checked_by_the_kit_readers(fmt: str) -> None:
    good = b"".join(llmsse.iter_sse(iter(["Hi", " there"]), format=fmt, heartbeat=None))
    events = assert_valid_sse(good, format=fmt)  # type: ignore[arg-type]
    assert len(events) > 3
    cut = good[: good.rindex(b"data:")]  # the terminal event (or [DONE]) missing
    assert sse_problems(cut, format=fmt, terminal=False) == []  # type: ignore[arg-type]
    (problem,) = sse_problems(cut, format=fmt)  # type: ignore[arg-type]
    with pytest.raises(AssertionError, match="invalid SSE stream"):
        assert_valid_sse(cut, format=fmt)  # type: ignore[arg-type]
    assert problem


def test_assert_sse_response_checks_the_headers() -> None:
    class Gzipped:  # what a compression middleware leaves (a test client would inflate it)
        status_code = 200
        headers = {  # noqa: RUF012
            "content-type": "text/event-stream",
            "cache-control": "no-cache",
            "content-encoding": "gzip",
        }

    with pytest.raises(AssertionError, match="Content-Encoding is 'gzip'"):
        assert_sse_response(Gzipped())

    def app(media_type: str, headers: dict[str, str]) -> TestClient:
        async def route(request: Request) -> StreamingResponse:
            return StreamingResponse(iter([GOOD]), media_type=media_type, headers=headers)

        return TestClient(Starlette(routes=[Route("/", route)]))

    good = app("text/event-stream", {"Cache-Control": "no-cache"}).get("/")
    assert len(assert_sse_response(good)) == 2
    for client, message in [
        (app("text/plain", {"Cache-Control": "no-cache"}), "Content-Type"),
        (app("text/event-stream", {}), "Cache-Control"),
    ]:
        with pytest.raises(AssertionError, match=message):
            assert_sse_response(client.get("/"))
    with pytest.raises(AssertionError, match="status is 200, expected 201"):
        assert_sse_response(good, status=201)
