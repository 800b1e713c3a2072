"""llmsse.testing.FakeOpenAI through the real openai SDK (sync and async), offline."""

from __future__ import annotations

import json
import time
from typing import Any

import httpx
import openai
import pytest

from llmsse.testing import (
    FakeOpenAI,
    RecordedRequest,
    Reply,
    StreamError,
    echo,
    http_error,
    tool_call,
)

MESSAGES: Any = [{"role": "user", "content": "Hi"}]

# openai wraps a connection dropped mid-body in APIConnectionError; early 1.x releases let
# the HTTP library's error through.
DROPPED = (openai.APIConnectionError, httpx.RemoteProtocolError)


def stream_text(client: openai.OpenAI, **kwargs: Any) -> tuple[str, list[Any]]:
    with client.chat.completions.create(
        model="gpt-test", messages=MESSAGES, stream=True, **kwargs
    ) as stream:
        got = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in got if c.choices)
    return text, got


def test_sync_client_streams_the_scripted_text() -> None:
    fake = FakeOpenAI("Hello\nbig world")
    text, got = stream_text(fake.client())
    assert text == "Hello\nbig world"
    assert got[0].choices[0].delta.role == "assistant"
    assert got[-1].choices[0].finish_reason == "stop"
    assert all(c.model == "gpt-test" for c in got)  # the requested model is echoed
    request = fake.last_request
    assert request.stream and request.messages == MESSAGES and request.model == "gpt-test"
    assert request.path == "/v1/chat/completions" and request.delivered and not request.disconnected


def test_usage_chunk_only_when_the_request_asks_for_it() -> None:
    fake = FakeOpenAI("a b", "a b")
    _, without = stream_text(fake.client())
    assert all(c.usage is None for c in without) and without[-1].choices
    _, with_usage = stream_text(fake.client(), stream_options={"include_usage": True})
    assert with_usage[-1].choices == [] and with_usage[-1].usage is not None
    assert with_usage[-2].choices[0].finish_reason == "stop"
    assert fake.requests[1].include_usage and not fake.requests[0].include_usage


def test_tool_calls_through_the_sdk_stream_helper() -> None:
    fake = FakeOpenAI(
        Reply(tool_calls=[tool_call("get_weather", {"city": "Paris"}), ("get_time", {})])
    )
    client = fake.client()
    completions: Any = client.chat.completions
    if not hasattr(completions, "stream"):  # openai < 1.48 has the helper under beta
        completions = client.beta.chat.completions
    with completions.stream(model="m", messages=MESSAGES) as stream:
        completion = stream.get_final_completion()
    calls = completion.choices[0].message.tool_calls or []
    assert [c.function.name for c in calls] == ["get_weather", "get_time"]
    assert json.loads(calls[0].function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"


def test_reasoning_and_refusal_deltas() -> None:
    fake = FakeOpenAI(Reply("42", reasoning="Let me think", reasoning_field="reasoning"))
    _, got = stream_text(fake.client())
    thoughts = "".join((c.choices[0].delta.model_extra or {}).get("reasoning", "") for c in got)
    assert thoughts == "Let me think"
    fake.reply(Reply(refusal="No."))
    _, got = stream_text(fake.client())
    assert "".join(c.choices[0].delta.refusal or "" for c in got) == "No."


def test_mid_stream_error_raises_the_sdk_api_error() -> None:
    fake = FakeOpenAI(Reply("one two three", error=StreamError("boom", code="overloaded")))
    got = []
    with pytest.raises(openai.APIError) as info:
        for chunk in fake.client().chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            got.append(chunk)
    assert info.value.message == "boom" and info.value.code == "overloaded"
    assert "".join(c.choices[0].delta.content or "" for c in got) == "one two three"
    assert not isinstance(info.value, openai.APIStatusError)


def test_error_after_n_chunks() -> None:
    fake = FakeOpenAI(Reply("one two three", error="boom", error_after=2))
    got = []
    with pytest.raises(openai.APIError):
        for chunk in fake.client().chat.completions.create(
            model="m", messages=MESSAGES, stream=True
        ):
            got.append(chunk)
    assert len(got) == 2


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (401, openai.AuthenticationError),
        (429, openai.RateLimitError),
        (500, openai.InternalServerError),
        (400, openai.BadRequestError),
    ],
)
def test_http_errors_are_raised_by_create_before_streaming(status: int, error: type) -> None:
    fake = FakeOpenAI(http_error(status))
    with pytest.raises(error) as info:
        fake.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    assert info.value.status_code == status


def test_http_errors_are_not_retried_by_a_retrying_client() -> None:
    fake = FakeOpenAI(http_error(429), "never sent")
    with pytest.raises(openai.RateLimitError):
        fake.client(max_retries=2).chat.completions.create(model="m", messages=MESSAGES)
    assert len(fake.requests) == 1 and fake.pending == 1


def test_a_dropped_connection_is_an_api_connection_error() -> None:
    fake = FakeOpenAI(Reply("one two three", disconnect_after=2))
    with pytest.raises(DROPPED):
        stream_text(fake.client())
    assert fake.last_request.disconnected


def test_closing_early_is_recorded_as_a_disconnect() -> None:
    fake = FakeOpenAI("one two three four five")
    stream = fake.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    stream.close()
    assert fake.last_request.closed and fake.last_request.disconnected
    assert not fake.last_request.delivered


def test_non_stream_request_gets_a_chat_completion() -> None:
    fake = FakeOpenAI(Reply("Sure.", tool_calls=[tool_call("f", {"a": 1})]))
    completion = fake.client().chat.completions.create(model="m", messages=MESSAGES)
    assert completion.object == "chat.completion"
    message = completion.choices[0].message
    assert message.content == "Sure."
    assert message.tool_calls and json.loads(message.tool_calls[0].function.arguments) == {"a": 1}
    assert completion.usage is not None and completion.usage.total_tokens > 0


def test_an_unscripted_request_fails_loudly() -> None:
    fake = FakeOpenAI()
    with pytest.raises(openai.InternalServerError, match="no scripted reply"):
        fake.client().chat.completions.create(model="m", messages=MESSAGES)


def test_responders_and_defaults() -> None:
    fake = FakeOpenAI(lambda request: f"{len(request.messages)} messages", default=echo)
    assert stream_text(fake.client())[0] == "1 messages"
    assert stream_text(fake.client())[0] == "You said: Hi"
    assert stream_text(fake.client())[0] == "You said: Hi"


def test_api_key_is_checked_when_set() -> None:
    fake = FakeOpenAI(default="ok", api_key="sk-right")
    assert stream_text(fake.client())[0] == "ok"
    with pytest.raises(openai.AuthenticationError):
        fake.client(api_key="sk-wrong").chat.completions.create(model="m", messages=MESSAGES)


def test_other_paths_are_404() -> None:
    fake = FakeOpenAI(default="ok")
    with pytest.raises(openai.NotFoundError):
        fake.client().embeddings.create(model="m", input="x")


def test_pacing_streams_the_body_incrementally() -> None:
    fake = FakeOpenAI(Reply("a b c d", delay=0.05, first_delay=0.2))
    stream = fake.client().chat.completions.create(model="m", messages=MESSAGES, stream=True)
    arrivals = []
    start = time.monotonic()
    for _ in stream:
        arrivals.append(time.monotonic() - start)
    assert arrivals[0] >= 0.2
    assert arrivals[-1] - arrivals[0] >= 0.2  # 5 more events, 0.05 s apart: not one buffered body


def test_a_legacy_httpx_client_works_too() -> None:
    fake = FakeOpenAI("via httpx")
    client = openai.OpenAI(
        api_key="sk", base_url="http://x/v1", http_client=httpx.Client(transport=fake.transport())
    )
    assert stream_text(client)[0] == "via httpx"


def test_azure_style_stream() -> None:
    fake = FakeOpenAI(Reply("Hi", azure=True))
    _, got = stream_text(fake.client())
    assert got[0].object == "" and got[0].choices == []


@pytest.mark.anyio
async def test_async_client_streams_and_records_an_early_close() -> None:
    fake = FakeOpenAI(Reply("Hello async world", delay=0.01), "again")
    client = fake.async_client()
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    text = ""
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    assert text == "Hello async world" and chunk.usage is not None
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    async for _ in stream:
        break
    await stream.close()
    assert fake.last_request.disconnected


@pytest.mark.anyio
async def test_async_client_errors() -> None:
    fake = FakeOpenAI(http_error(429), Reply("a b", error="boom"))
    client = fake.async_client()
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    with pytest.raises(openai.APIError, match="boom"):
        async for _ in stream:
            pass


def test_recorded_request_helpers() -> None:
    request = RecordedRequest(
        "POST",
        "/v1/chat/completions",
        {},
        json.dumps(
            {"messages": [{"role": "user", "content": [{"type": "text", "text": "parts"}]}]}
        ).encode(),
    )
    assert request.last_user_message == "parts"
    assert RecordedRequest("POST", "/", {}, b"not json").json is None


def test_a_responder_that_raises_fails_the_request_with_its_error() -> None:
    def broken(request: RecordedRequest) -> str:
        raise KeyError("oops")

    with pytest.raises((KeyError, openai.APIConnectionError)):  # wrapped by older SDKs
        FakeOpenAI(broken).client().chat.completions.create(model="m", messages=MESSAGES)
