"""llmsse.testing.read: bodies from every kind of test client, and the replies they carry."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator

import pytest

from llmsse.testing import (
    aread_body,
    chunk_dicts,
    read_body,
    read_events,
    read_openai_stream,
    read_text_stream,
    sse_body,
    tool_call,
)

TEXT_BODY = (
    b": ping\n\n"
    b"event: reasoning\ndata: Hmm\n\n"
    b"data: Hello\ndata: world\n\n"
    b'event: tool_call\ndata: {"index":0,"id":"call_1","name":"f","arguments":"{}"}\n\n'
    b'event: done\ndata: {"finish_reason":"tool_calls","usage":{"total_tokens":3}}\n\n'
)


def test_text_reply() -> None:
    reply = read_text_stream(TEXT_BODY)
    assert reply.text == "Hello\nworld"
    assert reply.reasoning == "Hmm"
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_1", "f", "{}")]
    assert reply.finish_reason == "tool_calls" and reply.usage == {"total_tokens": 3}
    assert reply.error is None and reply.heartbeats == 1
    assert len(reply.events) == 4


def test_text_reply_error() -> None:
    reply = read_text_stream(
        b'data: Hi\n\nevent: error\ndata: {"error":{"type":"server_error","message":"oops"}}\n\n'
    )
    assert reply.text == "Hi" and reply.done is None and reply.error_message == "oops"


def test_openai_reply() -> None:
    body = sse_body(
        chunk_dicts(
            "Hi there",
            reasoning="Think",
            tool_calls=[tool_call("f", {"x": 1})],
            usage=True,
        )
    )
    reply = read_openai_stream(body)
    assert reply.text == "Hi there" and reply.reasoning == "Think"
    assert reply.tool_calls[0].name == "f" and json.loads(reply.tool_calls[0].arguments) == {"x": 1}
    assert reply.finish_reason == "tool_calls" and reply.usage is not None and reply.done
    assert reply.error is None
    error = read_openai_stream(b'data: {"error":{"message":"boom","type":"x"}}\n\n')
    assert error.error == {"message": "boom", "type": "x"} and not error.done


def test_bodies_from_bytes_and_iterators() -> None:
    def parts() -> Iterator[bytes | str]:
        yield b"data: a\n\n"
        yield "data: b\n\n"

    assert read_body(memoryview(b"x")) == b"x"
    assert read_body(parts()) == b"data: a\n\ndata: b\n\n"
    assert [e.data for e in read_events(parts())] == ["a", "b"]
    with pytest.raises(TypeError, match="bytes"):
        read_body("data: a\n\n")
    with pytest.raises(TypeError, match="expects"):
        read_body(42)


def test_async_iterators_outside_and_inside_a_loop() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"data: a\n\n"

    assert read_body(parts()) == b"data: a\n\n"


@pytest.mark.anyio
async def test_aread_body() -> None:
    async def parts() -> AsyncIterator[bytes]:
        yield b"data: a\n\n"

    assert await aread_body(parts()) == b"data: a\n\n"
    with pytest.raises(TypeError, match="aread_body"):
        read_body(parts())


def test_starlette_test_client_response() -> None:
    from starlette.applications import Starlette
    from starlette.responses import StreamingResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    async def route(request: object) -> StreamingResponse:
        return StreamingResponse(iter([b"data: a\n\n", b"data: b\n\n"]))

    client = TestClient(Starlette(routes=[Route("/", route)]))
    assert read_text_stream(client.get("/")).text == "ab"
    with client.stream("GET", "/") as response:
        assert read_text_stream(response).text == "ab"


def test_flask_test_client_response() -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask(__name__)

    @app.get("/")
    def route() -> object:
        return flask.Response(iter([b"data: a\n\n", b"data: b\n\n"]), mimetype="text/event-stream")

    assert read_text_stream(app.test_client().get("/")).text == "ab"
    with app.test_client().get("/", buffered=False) as response:
        assert read_text_stream(response).text == "ab"


def test_django_test_client_responses(django_settings: None) -> None:
    from django.test import Client

    client = Client()
    assert read_text_stream(client.get("/sync")).text == "Hello\nworld"
    assert read_text_stream(client.get("/plain")).text == "x"


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # Django's async side is asyncio's
async def test_django_async_streaming_content(django_settings: None) -> None:
    from django.test import AsyncClient

    response = await AsyncClient().get("/async")
    assert read_text_stream(await aread_body(response)).text == "Hello\nworld"


def test_django_async_content_read_synchronously(django_settings: None) -> None:
    from django.http import StreamingHttpResponse

    async def parts() -> AsyncIterator[bytes]:
        yield b"data: a\n\n"

    assert read_body(StreamingHttpResponse(parts())) == b"data: a\n\n"


def test_a_django_response_can_be_read_twice(django_settings: None) -> None:
    from django.test import Client

    response = Client().get("/sync")
    assert read_body(response) == read_body(response) != b""


@pytest.mark.anyio
async def test_an_async_httpx_streamed_response() -> None:
    import httpx

    from llmsse.testing import FakeOpenAI

    fake = FakeOpenAI("streamed\nasync")
    async with (
        httpx.AsyncClient(transport=fake.transport()) as client,
        client.stream(
            "POST",
            "http://fake.test/v1/chat/completions",
            json={"model": "m", "messages": [], "stream": True},
        ) as response,
    ):
        reply = read_openai_stream(await aread_body(response))
    assert reply.text == "streamed\nasync" and reply.done
