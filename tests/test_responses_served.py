"""A Responses source on a real server: a FastAPI route on uvicorn returns
``sse_response(client.responses.stream(...))`` (and ``responses.create(stream=True)``), the
model is the fake API on a real socket. The events arrive in every format, and a client
that leaves closes the model's request."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI
from openai import AsyncOpenAI

import llmsse
from llmsse import StreamResult
from llmsse.starlette import sse_response
from llmsse.testing import FakeChatServer, FakeOpenAI, Reply, read_responses_stream


class App:
    def __init__(self, base_url: str) -> None:
        self.results: list[StreamResult] = []
        self.app = FastAPI()
        client = AsyncOpenAI(api_key="sk-fake", base_url=base_url, max_retries=0)

        @self.app.get("/helper")
        async def helper(format: str = "text") -> Any:
            source = client.responses.stream(model="m", input="x")
            return sse_response(source, format=format, on_complete=self.results.append)

        @self.app.get("/create")
        async def create(format: str = "text") -> Any:
            source = await client.responses.create(model="m", input="x", stream=True)
            return sse_response(source, format=format, on_complete=self.results.append)


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeChatServer]:
    with FakeChatServer(FakeOpenAI()) as server:
        yield server


@pytest.fixture(scope="module")
def served(upstream: FakeChatServer) -> Iterator[tuple[str, App]]:
    app = App(upstream.base_url)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app.app, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started
    yield f"http://127.0.0.1:{port}", app
    server.should_exit = True
    thread.join(5)


@pytest.mark.parametrize("route", ["helper", "create"])
@pytest.mark.parametrize("fmt", ["text", "openai", "ai-sdk", "ag-ui"])
def test_every_format_over_a_real_server(
    served: tuple[str, App], upstream: FakeChatServer, route: str, fmt: str
) -> None:
    url, app = served
    # The responses.stream() helper of openai 1.66 (the oldest supported) cannot parse
    # today's reasoning items: reasoning through the plain stream only.
    reasoning = "why" if route == "create" else ""
    upstream.reply(Reply("Hello over sockets", reasoning=reasoning or None))
    app.results.clear()
    response = httpx.get(f"{url}/{route}", params={"format": fmt}, timeout=10)
    assert response.headers["content-type"].startswith("text/event-stream")
    if fmt == "openai":
        assert read_responses_stream(response.content).text == "Hello over sockets"
    else:
        assert llmsse.parse(response.content)  # the format's own tests check the events
    (result,) = app.results
    assert (result.text, result.reasoning, result.outcome) == (
        "Hello over sockets",
        reasoning,
        "finished",
    )


@pytest.mark.parametrize("route", ["helper", "create"])
def test_a_client_that_leaves_closes_the_models_request(
    served: tuple[str, App], upstream: FakeChatServer, route: str
) -> None:
    url, app = served
    upstream.reply(Reply(" ".join(["word"] * 400), delay=0.02))
    app.results.clear()
    with httpx.stream("GET", f"{url}/{route}", timeout=10) as response:
        lines = response.iter_lines()
        while "data: word" not in next(lines):
            pass
    request = upstream.requests[-1]
    deadline = time.monotonic() + 3
    while not (request.closed and app.results) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert request.disconnected  # the model's request ended before its last event
    assert [r.outcome for r in app.results] == ["disconnected"]
