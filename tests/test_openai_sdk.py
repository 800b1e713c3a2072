"""The real openai SDK on both ends: as a source, and reading the "openai" format back."""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import httpx
import openai
import pytest

import llmsse
from _chunks import answer, chunk
from llmsse import StreamResult

RAW_CHUNKS: list[dict[str, Any]] = [
    # Azure's first chunk: empty choices and a provider field.
    {"id": "", "object": "", "created": 0, "model": "", "choices": [], "prompt_filter_results": []},
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"reasoning_content": "Let me think."}, "finish_reason": None}
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {"index": 0, "delta": {"content": "Line one\nline two"}, "finish_reason": None}
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": ""},
                        }
                    ]
                },
                "finish_reason": None,
            }
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [
            {
                "index": 0,
                "delta": {
                    "tool_calls": [{"index": 0, "function": {"arguments": '{"city":"Paris"}'}}]
                },
                "finish_reason": None,
            }
        ],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
    },
    {
        "id": "c",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [],
        "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
    },
]


def api_body(chunks: list[dict[str, Any]]) -> list[bytes]:
    return [b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks] + [b"data: [DONE]\n\n"]


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A response body sent piece by piece, that records whether it was closed."""

    def __init__(self, pieces: list[bytes], delay: float = 0.0) -> None:
        self.pieces = pieces
        self.delay = delay
        self.closed = False

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if self.closed:
                return
            time.sleep(self.delay)
            yield piece

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            if self.closed:
                return
            await anyio.sleep(self.delay)
            yield piece

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True


def clients(
    pieces: list[bytes], delay: float = 0.0
) -> tuple[openai.OpenAI, openai.AsyncOpenAI, list[Body]]:
    bodies: list[Body] = []

    def handler(request: httpx.Request) -> httpx.Response:
        body = Body(pieces, delay)
        bodies.append(body)
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=body)

    kw: dict[str, Any] = {
        "api_key": "sk-test",
        "base_url": "http://fake.local/v1",
        "max_retries": 0,
    }
    sync = openai.OpenAI(http_client=httpx.Client(transport=httpx.MockTransport(handler)), **kw)
    aclient = openai.AsyncOpenAI(
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)), **kw
    )
    return sync, aclient, bodies


def read_back(body: bytes) -> list[Any]:
    """What the openai SDK makes of an llmsse "openai" stream."""
    sync, _, _ = clients([body])
    with sync.chat.completions.create(model="m", messages=[], stream=True) as stream:
        return [c.to_dict() for c in stream]


# --- llmsse's "openai" format read by the SDK -----------------------------------------


@pytest.mark.parametrize(
    "options",
    [{}, {"retry": 3000}, {"ids": True}, {"ids": True, "retry": 10}],
    ids=["plain", "retry", "ids", "ids+retry"],
)
def test_sdk_reads_the_openai_format_back_to_the_same_chunks(options: dict[str, Any]) -> None:
    sync, _, _ = clients(api_body(RAW_CHUNKS))
    with sync.chat.completions.create(model="m", messages=[], stream=True) as upstream:
        body = b"".join(llmsse.iter_sse(upstream, format="openai", heartbeat=None, **options))
    assert read_back(body) == RAW_CHUNKS


def test_sdk_reads_through_heartbeats_with_ids() -> None:
    def slow() -> Iterator[Any]:
        for c in answer("a", "b"):
            time.sleep(0.06)
            yield c

    body = b"".join(llmsse.iter_sse(slow(), format="openai", heartbeat=0.02, ids=True, retry=5))
    assert b": ping" in body
    assert [c["choices"][0]["delta"].get("content") for c in read_back(body) if c["choices"]] == [
        "",
        "a",
        "b",
        None,
    ]


def test_sdk_raises_its_error_on_the_error_event() -> None:
    def failing() -> Iterator[Any]:
        yield chunk({"content": "partial"})
        raise ConnectionResetError("upstream at 10.0.0.7 reset")

    body = b"".join(
        llmsse.iter_sse(failing(), format="openai", heartbeat=None, on_error=lambda e: "Try again.")
    )
    assert b"[DONE]" not in body and b"10.0.0.7" not in body
    sync, _, _ = clients([body])
    got = []
    with pytest.raises(openai.APIError, match=r"Try again\.") as info:
        for c in sync.chat.completions.create(model="m", messages=[], stream=True):
            got.append(c.choices[0].delta.content)
    assert got == ["partial"]
    assert info.value.type == "internal_error"


# --- the SDK's streams as sources -----------------------------------------------------


EXPECTED_TEXT_EVENTS = [
    ("reasoning", "Let me think."),
    ("message", "Line one\nline two"),
    (
        "tool_call",
        {"index": 0, "id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
    ),
    (
        "done",
        {
            "finish_reason": "tool_calls",
            "usage": {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        },
    ),
]


def text_events(body: bytes) -> list[tuple[str | None, Any]]:
    return [
        (e.event, json.loads(e.data or "") if e.event in ("tool_call", "done") else e.data)
        for e in llmsse.parse(body)
    ]


@pytest.mark.parametrize("heartbeat", [None, 5.0])
def test_sync_stream_to_text_format(heartbeat: float | None) -> None:
    sync, _, bodies = clients(api_body(RAW_CHUNKS))
    results: list[StreamResult] = []
    stream = sync.chat.completions.create(model="m", messages=[], stream=True)
    body = b"".join(llmsse.iter_sse(stream, heartbeat=heartbeat, on_complete=results.append))
    assert text_events(body) == EXPECTED_TEXT_EVENTS
    assert results[0].tool_calls[0].arguments == '{"city":"Paris"}'
    assert stream.response.is_closed
    assert bodies[0].closed


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
@pytest.mark.parametrize("heartbeat", [None, 5.0])
def test_async_stream_to_text_format(backend: str, heartbeat: float | None) -> None:
    async def main() -> bytes:
        _, aclient, _ = clients(api_body(RAW_CHUNKS))
        if backend == "trio" and getattr(aclient, "_platform", "") is None:
            # Before the request the SDK detects the platform in a thread; openai releases
            # older than about 1.6x do that with asyncio.to_thread, which trio cannot run.
            # That is the SDK's own setup, not the stream this test is about.
            from openai._base_client import get_platform

            aclient._platform = get_platform()
        stream = await aclient.chat.completions.create(model="m", messages=[], stream=True)
        return b"".join([p async for p in llmsse.aiter_sse(stream, heartbeat=heartbeat)])

    body = anyio.run(main, backend=backend)
    assert text_events(body) == EXPECTED_TEXT_EVENTS


@pytest.mark.parametrize("heartbeat", [None, 0.05])
def test_closing_early_closes_the_sdk_response(heartbeat: float | None) -> None:
    pieces = api_body(
        [RAW_CHUNKS[1]]
        + [
            {
                **RAW_CHUNKS[3],
                "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
            }
            for i in range(50)
        ]
    )
    sync, _, _ = clients(pieces, delay=0.02)
    stream = sync.chat.completions.create(model="m", messages=[], stream=True)
    gen = llmsse.iter_sse(stream, heartbeat=heartbeat)
    first = [next(gen) for _ in range(3)]
    assert all(p.startswith((b"data: w", b": ping")) for p in first)
    gen.close()  # type: ignore[attr-defined]
    deadline = time.monotonic() + 1
    while not stream.response.is_closed and time.monotonic() < deadline:
        time.sleep(0.01)
    assert stream.response.is_closed


@pytest.mark.parametrize("heartbeat", [None, 0.05])
def test_async_closing_early_closes_the_sdk_response(heartbeat: float | None) -> None:
    pieces = api_body(
        [
            {
                **RAW_CHUNKS[3],
                "choices": [{"index": 0, "delta": {"content": f"w{i} "}, "finish_reason": None}],
            }
            for i in range(50)
        ]
    )

    async def main() -> bool:
        _, aclient, _ = clients(pieces, delay=0.02)
        stream = await aclient.chat.completions.create(model="m", messages=[], stream=True)
        agen = llmsse.aiter_sse(stream, heartbeat=heartbeat)
        async for piece in agen:
            if piece.startswith(b"data: w2"):
                break
        await agen.aclose()  # type: ignore[attr-defined]
        return stream.response.is_closed

    assert anyio.run(main)


def test_sdk_mid_stream_error_becomes_the_error_event() -> None:
    pieces = [
        *api_body(RAW_CHUNKS[1:4])[:-1],
        b'data: {"error": {"message": "overloaded sk-abc", "type": "server_error"}}\n\n',
    ]
    sync, _, _ = clients(pieces)
    results: list[StreamResult] = []
    stream = sync.chat.completions.create(model="m", messages=[], stream=True)
    events = llmsse.parse(b"".join(llmsse.iter_sse(stream, on_complete=results.append)))
    assert events[-1].event == "error"
    assert json.loads(events[-1].data or "") == {
        "error": {"type": "upstream_error", "message": "The response could not be completed."}
    }
    assert isinstance(results[0].error, openai.APIError)
    assert results[0].outcome == "failed"


def test_closing_a_blocked_sync_stream_ends_the_model_request_at_once() -> None:
    """A reader thread blocked in recv() on the SDK's socket must not keep the request open."""
    import socket
    import threading

    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    hung_up = threading.Event()

    def serve() -> None:
        conn, _ = server.accept()
        with conn:
            conn.recv(65536)
            first = b"data: " + json.dumps(RAW_CHUNKS[3]).encode() + b"\n\n"
            conn.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n"
                b"transfer-encoding: chunked\r\n\r\n" + b"%x\r\n" % len(first) + first + b"\r\n"
            )
            conn.settimeout(10)  # the model "thinks" for 10 s: only a hang-up ends this early
            try:
                while conn.recv(65536):  # the rest of the request, then nothing until EOF
                    pass
                hung_up.set()
            except TimeoutError:
                pass
            except OSError:
                hung_up.set()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = openai.OpenAI(api_key="sk-test", base_url=f"http://127.0.0.1:{port}/v1", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    gen = llmsse.iter_sse(stream, heartbeat=0.05)
    # Heartbeats run from the first moment: on a busy machine one may precede the chunk.
    first = next(piece for piece in gen if piece != b": ping\n\n")
    assert first == b"data: Line one\ndata: line two\n\n"
    assert next(gen) == b": ping\n\n"  # the reader thread is now blocked in recv()
    gen.close()  # type: ignore[attr-defined]
    assert hung_up.wait(2), "the upstream request was still open 2 s after the client left"
    server.close()
    client.close()
