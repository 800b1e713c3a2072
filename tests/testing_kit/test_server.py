"""llmsse.testing.FakeChatServer: the fake API over a real socket on 127.0.0.1."""

from __future__ import annotations

import socket
import time
from typing import Any

import httpx
import openai
import pytest

from llmsse.testing import FakeChatServer, FakeOpenAI, Reply, http_error, read_openai_stream

pytestmark = pytest.mark.integration

MESSAGES: Any = [{"role": "user", "content": "Hi"}]

# openai wraps a connection dropped mid-body in APIConnectionError; early 1.x releases let
# the HTTP library's error through.
DROPPED = (openai.APIConnectionError, httpx.RemoteProtocolError)


def test_sync_client_over_a_socket(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.reply("Hello\nover the wire")
    assert fake_chat_server.base_url.startswith("http://127.0.0.1:")
    client = openai.OpenAI(base_url=fake_chat_server.base_url, api_key="sk-fake", max_retries=0)
    with client.chat.completions.create(model="m", messages=MESSAGES, stream=True) as stream:
        text = "".join(c.choices[0].delta.content or "" for c in stream)
    assert text == "Hello\nover the wire"
    assert fake_chat_server.requests[0].headers["authorization"] == "Bearer sk-fake"


@pytest.mark.anyio
async def test_async_client_over_a_socket(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.reply(Reply("async wire", delay=0.01), http_error(429))
    client = fake_chat_server.async_client()
    stream = await client.chat.completions.create(
        model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True}
    )
    got = [chunk async for chunk in stream]
    assert "".join(c.choices[0].delta.content or "" for c in got if c.choices) == "async wire"
    assert got[-1].usage is not None
    with pytest.raises(openai.RateLimitError):
        await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    await client.close()


def test_the_raw_wire_is_the_openai_format(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.reply("raw bytes")
    with httpx.Client() as http:
        response = http.post(
            f"{fake_chat_server.base_url}/chat/completions",
            json={"model": "m", "messages": MESSAGES, "stream": True},
        )
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["transfer-encoding"] == "chunked"
    reply = read_openai_stream(response)
    assert reply.text == "raw bytes" and reply.done and reply.finish_reason == "stop"


def test_errors_mid_stream_and_dropped_connections(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.reply(Reply("a b c", error="boom"), Reply("a b c", disconnect_after=2))
    client = fake_chat_server.client()
    with pytest.raises(openai.APIError, match="boom"):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    with pytest.raises(DROPPED):
        list(client.chat.completions.create(model="m", messages=MESSAGES, stream=True))


def test_the_server_sees_the_client_leave(fake_chat_server: FakeChatServer) -> None:
    fake_chat_server.reply(Reply(["x"] * 200, delay=0.01))
    client = fake_chat_server.client()
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    for i, _ in enumerate(stream):
        if i == 2:
            break
    stream.close()
    request = fake_chat_server.requests[-1]
    deadline = time.monotonic() + 5
    while not request.disconnected and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request.disconnected and request.parts_sent < request.parts


def test_stop_cuts_a_paced_stream_and_closes_the_port() -> None:
    server = FakeChatServer(FakeOpenAI(Reply("slow " * 50, delay=1.0))).start()
    port = server.port
    client = server.client(timeout=5)
    stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
    next(iter(stream))
    start = time.monotonic()
    server.stop()
    assert time.monotonic() - start < 3
    with pytest.raises(DROPPED):
        list(stream)
    with pytest.raises(ConnectionRefusedError), socket.socket() as probe:
        probe.connect(("127.0.0.1", port))  # nothing listens any more


def test_server_property_needs_a_started_server() -> None:
    with pytest.raises(RuntimeError, match="not started"):
        FakeChatServer().base_url  # noqa: B018


def test_a_client_hanging_up_is_not_reported_as_a_server_error(
    fake_chat_server: FakeChatServer, capsys: pytest.CaptureFixture[str]
) -> None:
    # socketserver prints a traceback for any error in a handler; a reset keep-alive
    # connection (the SDK hanging up after an error event) is not one worth printing.
    inner = fake_chat_server._server
    assert inner is not None
    for error in (ConnectionResetError(104, "Connection reset by peer"), ValueError("real bug")):
        try:
            raise error
        except Exception:
            inner.handle_error(None, ("127.0.0.1", 1))
    err = capsys.readouterr().err
    assert "ConnectionResetError" not in err and "real bug" in err


def test_a_responder_that_raises_is_a_500_that_names_the_error(
    fake_chat_server: FakeChatServer,
) -> None:
    def broken(request: object) -> str:
        raise KeyError("oops")

    fake_chat_server.reply(broken)
    with pytest.raises(openai.InternalServerError, match="KeyError"):
        fake_chat_server.client().chat.completions.create(model="m", messages=MESSAGES)
