"""Third-party SSE parsers read what llmsse writes the way llmsse.parse does.

Peers: httpx-sse (its EventSource over an httpx response, sync and async) and the
openai SDK's own decoder (``openai._streaming.SSEDecoder``), which is what an openai
client pointed at an llmsse endpoint runs.

Both peers deviate from the spec (PROTOCOLS.md §1.8): at a blank line they dispatch if
*any* of event/data/id/retry is set, and the id persists, so a block without ``data``
(``event:``-, ``id:``- or ``retry:``-only, or a heartbeat comment once any id was sent)
becomes an extra event with empty data, which a browser never sees. They also accept
``retry`` values a browser ignores and do not strip a BOM, but llmsse never writes
those. So the comparison streams give every event a ``data`` field; blocks without
data are only compared where no peer can diverge (heartbeats before any id), and the
divergence itself is pinned below so that a format relying on it is noticed.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable

import httpx
import httpx_sse
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openai._streaming import SSEDecoder as OpenAISSEDecoder

from llmsse import ServerSentEvent, parse
from llmsse.event import encode_comment

Event = tuple[str, str, str, "int | None"]  # (type, data, lastEventId, retry)
Peer = Callable[[list[bytes]], list[Event]]

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
tricky = st.lists(
    st.sampled_from(["\r", "\n", "\r\n", " ", ":", "\0", "\x85", "\u2028", "é", "👋", "{}"])
).map("".join)
any_text = st.one_of(texts, tricky)
single_line = any_text.filter(lambda s: "\r" not in s and "\n" not in s)

events_with_data = st.builds(
    ServerSentEvent,
    data=any_text,
    event=st.none() | single_line,
    id=st.none() | single_line.filter(lambda s: "\0" not in s),
    retry=st.none() | st.integers(0, 10**9),
    comment=st.none() | any_text,
)


@st.composite
def chunked(draw: st.DrawFn, events: st.SearchStrategy[list[ServerSentEvent]]) -> list[bytes]:
    """The encoded stream, cut into network chunks at random byte offsets."""
    stream = b"".join(e.encode() for e in draw(events))
    cuts = sorted(draw(st.lists(st.integers(1, max(1, len(stream) - 1)), max_size=6)))
    bounds = [0, *cuts, len(stream)]
    return [stream[a:b] for a, b in itertools.pairwise(bounds) if stream[a:b]]


streams = chunked(st.lists(events_with_data, min_size=1, max_size=6))

# The same normal form for everyone: unnamed is "message", no id is "".


def ours(chunks: list[bytes]) -> list[Event]:
    return [
        (e.event or "message", e.data or "", e.id or "", e.retry) for e in parse(b"".join(chunks))
    ]


def openai_sdk(chunks: list[bytes]) -> list[Event]:
    return [
        (e.event or "message", e.data, e.id or "", e.retry)
        for e in OpenAISSEDecoder().iter_bytes(iter(chunks))
    ]


_HEADERS = {"content-type": "text/event-stream; charset=utf-8"}


def httpx_sse_sync(chunks: list[bytes]) -> list[Event]:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_HEADERS, content=iter(chunks))

    with (
        httpx.Client(transport=httpx.MockTransport(handler)) as client,
        httpx_sse.connect_sse(client, "GET", "http://test/stream") as source,
    ):
        return [(e.event, e.data, e.id, e.retry) for e in source.iter_sse()]


def httpx_sse_async(chunks: list[bytes]) -> list[Event]:
    async def body() -> AsyncIterator[bytes]:
        for chunk in chunks:
            yield chunk

    async def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers=_HEADERS, content=body())

    async def main() -> list[Event]:
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client,
            httpx_sse.aconnect_sse(client, "GET", "http://test/stream") as source,
        ):
            return [(e.event, e.data, e.id, e.retry) async for e in source.aiter_sse()]

    return asyncio.run(main())


PEERS = [openai_sdk, httpx_sse_sync]


@pytest.mark.parametrize("peer", PEERS)
@given(chunks=streams)
def test_peer_agrees_on_events_with_data(peer: Peer, chunks: list[bytes]) -> None:
    expected = ours(chunks)
    # Not vacuous: every event llmsse wrote (each has data) is dispatched.
    assert len(expected) == b"".join(chunks).count(b"\n\n")
    assert peer(chunks) == expected


@settings(max_examples=30, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=streams)
def test_httpx_sse_async_agrees(chunks: list[bytes]) -> None:
    assert httpx_sse_async(chunks) == ours(chunks)


@pytest.mark.parametrize("peer", PEERS)
@given(
    events=st.lists(
        st.one_of(
            events_with_data.map(
                lambda e: ServerSentEvent(e.data, event=e.event, comment=e.comment)
            ),
            st.just(ServerSentEvent(comment="keep-alive")),
        ),
        max_size=8,
    )
)
def test_peer_agrees_with_heartbeats_before_any_id(
    peer: Peer, events: list[ServerSentEvent]
) -> None:
    # Heartbeat comments are harmless to the peers as long as no id has been sent.
    chunks = [e.encode() for e in events]
    assert peer(chunks) == ours(chunks)


@pytest.mark.parametrize("peer", [*PEERS, httpx_sse_async])
def test_fixed_stream_all_peers(peer: Peer) -> None:
    events = [
        ServerSentEvent("hello"),
        ServerSentEvent("line 1\r\nline 2\rline 3\n", event="delta", id="1", retry=2500),
        ServerSentEvent('{"choices":[]}', comment="multi\nline comment"),
        ServerSentEvent("", event="", id=""),
        ServerSentEvent("[DONE]"),
    ]
    stream = b"".join(e.encode() for e in events)
    chunks = [stream[i : i + 3] for i in range(0, len(stream), 3)]
    expected = [
        ("message", "hello", "", None),
        ("delta", "line 1\nline 2\nline 3\n", "1", 2500),
        ("message", '{"choices":[]}', "1", None),
        ("message", "", "", None),
        ("message", "[DONE]", "", None),
    ]
    assert ours(chunks) == expected
    assert peer(chunks) == expected


# --- the known divergences, pinned -------------------------------------------------
# If a peer fixes one of these, the test fails and the comparison above can widen.


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize(
    "block",
    [
        ServerSentEvent(event="x"),
        ServerSentEvent(id="7"),
        ServerSentEvent(retry=3000),
    ],
    ids=["event-only", "id-only", "retry-only"],
)
def test_peers_dispatch_blocks_without_data(peer: Peer, block: ServerSentEvent) -> None:
    stream = block.encode() + ServerSentEvent("x").encode()
    assert [data for _, data, _, _ in ours([stream])] == ["x"]
    assert [data for _, data, _, _ in peer([stream])] == ["", "x"]


@pytest.mark.parametrize("peer", PEERS)
def test_peers_dispatch_heartbeat_after_an_id(peer: Peer) -> None:
    # So a stream meant for the openai SDK (whose Stream json-decodes every event's
    # data) must not combine ids with heartbeat comments, nor send retry-only blocks.
    stream = ServerSentEvent("a", id="1").encode() + encode_comment("keep-alive")
    assert ours([stream]) == [("message", "a", "1", None)]
    assert peer([stream]) == [("message", "a", "1", None), ("message", "", "1", None)]


def test_chunked_helper_keeps_bytes() -> None:
    # Guard for the strategy: cutting must neither lose nor duplicate bytes.
    @given(st.lists(events_with_data, max_size=3), st.data())
    def check(events: list[ServerSentEvent], data: st.DataObject) -> None:
        stream = b"".join(e.encode() for e in events)
        chunks = data.draw(chunked(st.just(events)))
        assert b"".join(chunks) == stream

    check()
