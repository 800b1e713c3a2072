"""The kit around llmsse's own pipelines and adapters: fake upstream in, kit readers out."""

from __future__ import annotations

import json
from typing import Any

import httpx
import openai
import pytest

import llmsse
from llmsse.testing import (
    FakeAsyncStream,
    FakeOpenAI,
    FakeStream,
    Reply,
    assert_sse_response,
    assert_valid_sse,
    chunks,
    read_openai_stream,
    read_text_stream,
    tool_call,
)

ANSWER = "Here is a list:\n\n- one\r\n- two\n"
MESSAGES: Any = [{"role": "user", "content": "Hi"}]


def full_chunks() -> list[Any]:
    return chunks(
        ANSWER,
        reasoning="Thinking it over",
        tool_calls=[tool_call("get_weather", {"city": "Paris"}), tool_call("get_time", {})],
        usage=True,
    )


def test_iter_sse_text_format_round_trips() -> None:
    source = FakeStream(full_chunks())
    body = b"".join(llmsse.iter_sse(source, heartbeat=None))
    assert_valid_sse(body)
    reply = read_text_stream(body)
    assert reply.text == ANSWER.replace("\r\n", "\n")  # SSE has one line break: LF
    assert reply.reasoning == "Thinking it over"
    assert [(c.index, c.name) for c in reply.tool_calls] == [(0, "get_weather"), (1, "get_time")]
    assert json.loads(reply.tool_calls[0].arguments) == {"city": "Paris"}
    assert reply.finish_reason == "tool_calls" and reply.usage is not None
    assert source.close_count == 1 and source.exhausted


def test_iter_sse_upstream_error_is_a_terminal_error_event() -> None:
    source = FakeStream(chunks("one two three"), error_after=3)
    body = b"".join(llmsse.iter_sse(source, heartbeat=None))
    assert_valid_sse(body)
    reply = read_text_stream(body)
    assert reply.done is None and reply.error is not None
    assert reply.text == "one two"
    assert "The server had an error" not in body.decode()  # exception text stays private
    assert source.close_count == 1


def test_closing_the_pipeline_early_closes_the_upstream_once() -> None:
    source = FakeStream(chunks("a b c d e f"))
    events = llmsse.iter_sse(source, heartbeat=None)
    next(events)
    events.close()  # type: ignore[attr-defined]
    assert source.close_count == 1 and not source.exhausted


def test_heartbeats_while_the_model_thinks() -> None:
    source = FakeStream(chunks("Hi"), first_delay=0.3)
    reply = read_text_stream(llmsse.iter_sse(source, heartbeat=0.05))
    assert reply.heartbeats >= 2 and reply.text == "Hi"
    assert reply.body.startswith(b": ping\n\n")


@pytest.mark.anyio
async def test_aiter_sse_round_trips_an_async_stream() -> None:
    source = FakeAsyncStream(full_chunks(), delay=0.001)
    body = b"".join([part async for part in llmsse.aiter_sse(source, heartbeat=None)])
    reply = read_text_stream(assert_valid_sse(body) and body)
    assert reply.text == ANSWER.replace("\r\n", "\n") and source.close_count == 1


@pytest.mark.anyio
async def test_aiter_sse_reads_a_sync_stream_off_the_event_loop() -> None:
    source = FakeStream(chunks("Hello world"), delay=0.001)
    body = b"".join([part async for part in llmsse.aiter_sse(source, heartbeat=None)])
    assert read_text_stream(body).text == "Hello world"
    assert not source.on_event_loop and source.close_count == 1


def test_openai_format_is_read_back_by_the_real_sdk() -> None:
    body = b"".join(llmsse.iter_sse(FakeStream(full_chunks()), format="openai", heartbeat=None))
    assert_valid_sse(body, format="openai")
    kit_view = read_openai_stream(body)
    assert kit_view.text == ANSWER and kit_view.done
    assert kit_view.tool_calls[1].name == "get_time"

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = openai.OpenAI(
        api_key="sk",
        base_url="http://relay.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )
    completions: Any = client.chat.completions
    if not hasattr(completions, "stream"):  # openai < 1.48 has the helper under beta
        completions = client.beta.chat.completions
    with completions.stream(model="m", messages=MESSAGES) as stream:
        completion = stream.get_final_completion()
    assert completion.choices[0].message.content == ANSWER
    assert completion.choices[0].finish_reason == "tool_calls"


def test_real_sdk_from_the_fake_api_through_iter_sse() -> None:
    fake = FakeOpenAI(Reply(ANSWER, reasoning="Hmm"), Reply(["x"] * 50))
    client = fake.client()
    stream = client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    reply = read_text_stream(llmsse.iter_sse(stream, heartbeat=None))
    assert reply.text == ANSWER.replace("\r\n", "\n") and reply.reasoning == "Hmm"
    assert reply.usage is not None and fake.requests[0].delivered

    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    events = llmsse.iter_sse(stream, heartbeat=None)
    next(events)
    events.close()  # type: ignore[attr-defined]  # the browser left
    assert fake.last_request.disconnected  # the upstream request was closed, not left running


def test_upstream_http_error_before_streaming_is_the_routes_business() -> None:
    fake = FakeOpenAI(Reply(status=503, error_body={"error": {"message": "down"}}))
    with pytest.raises(openai.InternalServerError):
        fake.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)


# -- the adapters, as a user tests a route ---------------------------------------------------


def test_starlette_route() -> None:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from llmsse.starlette import sse_response

    fake = FakeOpenAI(ANSWER)
    client = fake.async_client()

    async def chat(request: Request) -> Any:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return sse_response(stream)

    response = TestClient(Starlette(routes=[Route("/chat", chat, methods=["POST"])])).post("/chat")
    assert_sse_response(response)
    assert read_text_stream(response).text == ANSWER.replace("\r\n", "\n")


def test_flask_route() -> None:
    flask = pytest.importorskip("flask")
    from llmsse.flask import sse_response

    fake = FakeOpenAI(ANSWER)
    app = flask.Flask(__name__)

    @app.post("/chat")
    def chat() -> Any:
        stream = fake.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
        return sse_response(stream)

    response = app.test_client().post("/chat")
    assert_sse_response(response)
    assert read_text_stream(response).text == ANSWER.replace("\r\n", "\n")
    assert fake.last_request.delivered


def test_django_view(django_settings: None) -> None:
    from django.test import Client

    response = Client().get("/llmsse")
    assert_sse_response(response)
    reply = read_text_stream(response)
    assert reply.text == "Hello\nfrom Django" and reply.usage is not None
