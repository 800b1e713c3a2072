"""Tests for llmsse.decoder: SSEDecoder and parse.

The shared decode vectors (PROTOCOLS.md §1.7) pin the spec behaviour; the properties
check that where the bytes are cut, and which line ends are used, never matters.
"""

from __future__ import annotations

import base64
import itertools
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmsse import ServerSentEvent, SSEDecoder, parse

VECTORS = json.loads((Path(__file__).parent / "data" / "sse_vectors.json").read_text("utf-8"))
DECODE = VECTORS["decode"]
DECODE_IDS = [v["name"] for v in DECODE]


def _as_dicts(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    """The browser's view of decoded events, in the vectors' shape."""
    return [{"type": e.event, "data": e.data, "lastEventId": e.id} for e in events]


def _cut(data: bytes, split_at: list[int]) -> list[bytes]:
    bounds = [0, *split_at, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def _feed_all(pieces: list[bytes]) -> tuple[list[ServerSentEvent], SSEDecoder]:
    decoder = SSEDecoder()
    events: list[ServerSentEvent] = []
    for piece in pieces:
        events += decoder.feed(piece)
    events += decoder.close()
    return events, decoder


def _vector_bytes(vector: dict[str, Any]) -> bytes:
    return base64.b64decode(vector["bytes_b64"])


# --- the shared vectors -------------------------------------------------------------


@pytest.mark.parametrize("vector", DECODE, ids=DECODE_IDS)
def test_decode_vector(vector: dict[str, Any]) -> None:
    pieces = _cut(_vector_bytes(vector), vector["split_at"])
    events, decoder = _feed_all(pieces)
    assert _as_dicts(events) == vector["events"]
    # "final" in the vectors is the state after EOF, i.e. after close(): what a client
    # would use to reconnect (Last-Event-ID and the reconnection time).
    assert decoder.last_event_id == vector["lastEventId"]
    assert decoder.retry == vector["retry"]


@pytest.mark.parametrize("vector", DECODE, ids=DECODE_IDS)
def test_decode_vector_parse(vector: dict[str, Any]) -> None:
    assert _as_dicts(parse(_vector_bytes(vector))) == vector["events"]


@pytest.mark.parametrize("vector", DECODE, ids=DECODE_IDS)
def test_decode_vector_byte_by_byte(vector: dict[str, Any]) -> None:
    data = _vector_bytes(vector)
    events, decoder = _feed_all([data[i : i + 1] for i in range(len(data))])
    assert _as_dicts(events) == vector["events"]
    assert decoder.last_event_id == vector["lastEventId"]
    assert decoder.retry == vector["retry"]


@pytest.mark.parametrize("vector", DECODE, ids=DECODE_IDS)
def test_decode_vector_every_single_cut(vector: dict[str, Any]) -> None:
    data = _vector_bytes(vector)
    for cut in range(len(data) + 1):
        events, _ = _feed_all([data[:cut], data[cut:]])
        assert _as_dicts(events) == vector["events"], f"cut at byte {cut}"


@given(st.sampled_from(DECODE), st.data())
def test_decode_vector_random_cuts(vector: dict[str, Any], draw: st.DataObject) -> None:
    data = _vector_bytes(vector)
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=8).map(sorted))
    events, decoder = _feed_all(_cut(data, cuts))
    assert _as_dicts(events) == vector["events"]
    assert decoder.last_event_id == vector["lastEventId"]


# --- the decoder's own contract -----------------------------------------------------


def test_feed_str_is_type_error() -> None:
    with pytest.raises(TypeError, match=r"feed\(\) expects bytes, got str"):
        SSEDecoder().feed("data: x\n\n")  # type: ignore[arg-type]


def test_parse_str_is_type_error() -> None:
    with pytest.raises(TypeError, match="expects bytes"):
        parse("data: x\n\n")  # type: ignore[arg-type]


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
def test_feed_accepts_bytes_like(wrap: Any) -> None:
    assert SSEDecoder().feed(wrap(b"data: x\n\n")) == [
        ServerSentEvent(data="x", event="message", id="")
    ]


def test_events_are_returned_as_soon_as_complete() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n") == []
    assert decoder.feed(b"\n") == [ServerSentEvent(data="a", event="message", id="")]
    assert decoder.feed(b"data: b\r") == []
    # The blank line after a CR-terminated line is complete at once: no waiting for
    # a possible LF, since "\r\r" is two line ends whatever follows.
    assert decoder.feed(b"\r") == [ServerSentEvent(data="b", event="message", id="")]
    assert decoder.feed(b"\n") == []
    assert decoder.close() == []


def test_dispatched_event_carries_retry_of_its_block() -> None:
    events = parse(b"retry: 10\ndata: a\n\ndata: b\n\n")
    assert [e.retry for e in events] == [10, None]


def test_close_drops_incomplete_event_and_allows_reuse() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: lost\n") == []
    assert decoder.close() == []
    # A new stream: its leading BOM is stripped again and nothing of the old one leaks in.
    assert decoder.feed(b"\xef\xbb\xbfdata: new\n\n") == [
        ServerSentEvent(data="new", event="message", id="")
    ]


def test_close_flushes_incomplete_utf8_without_error() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ok\n\ndata: \xf0\x9f") == [
        ServerSentEvent(data="ok", event="message", id="")
    ]
    assert decoder.close() == []


def test_last_event_id_survives_close() -> None:
    # A client reconnects *after* the stream ended, sending Last-Event-ID: the id must
    # still be readable then.
    decoder = SSEDecoder()
    decoder.feed(b"id: 7\nretry: 500\ndata: a\n\n")
    decoder.close()
    assert decoder.last_event_id == "7"
    assert decoder.retry == 500


def test_last_event_id_only_changes_at_end_of_block() -> None:
    # §1.3 step 1: the last event id string is set when the block ends. An id whose
    # block never completed names an event the client did not receive; reconnecting
    # with it would make the server skip that event.
    decoder = SSEDecoder()
    decoder.feed(b"id: 1\ndata: a\n\nid: 2\ndata: b")
    assert decoder.last_event_id == "1"
    decoder.close()
    assert decoder.last_event_id == "1"


def test_bom_only_at_stream_start() -> None:
    # A BOM that arrives after an empty first chunk is still the stream's first byte.
    decoder = SSEDecoder()
    assert decoder.feed(b"") == []
    assert decoder.feed(b"\xef\xbb\xbfdata: 1\n\n") == [
        ServerSentEvent(data="1", event="message", id="")
    ]


# --- properties: encoded streams ----------------------------------------------------

texts = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
tricky = st.lists(st.sampled_from(["\r", "\n", "\r\n", " ", ":", "\0", "é", "👋", "\ufeff"])).map(
    "".join
)
any_text = st.one_of(texts, tricky)
single_line = any_text.filter(lambda s: "\r" not in s and "\n" not in s)


@st.composite
def server_sent_events(draw: st.DrawFn) -> ServerSentEvent:
    fields = {
        "data": draw(st.none() | any_text),
        "event": draw(st.none() | single_line),
        "id": draw(st.none() | single_line.filter(lambda s: "\0" not in s)),
        "retry": draw(st.none() | st.integers(0, 10**6)),
        "comment": draw(st.none() | any_text),
    }
    if all(value is None for value in fields.values()):
        fields["data"] = ""
    return ServerSentEvent(**fields)


streams = st.lists(server_sent_events(), max_size=8)


def _expected(events: list[ServerSentEvent]) -> tuple[list[ServerSentEvent], str]:
    """What a browser makes of a sequence of encoded events (§1.3)."""
    out = []
    last_id = ""
    for e in events:
        if e.id is not None:
            last_id = e.id
        if e.data is not None:
            data = re.sub(r"\r\n|\r", "\n", e.data)
            out.append(
                ServerSentEvent(data=data, event=e.event or "message", id=last_id, retry=e.retry)
            )
    return out, last_id


@given(streams)
def test_encoded_stream_round_trips(events: list[ServerSentEvent]) -> None:
    stream = b"".join(e.encode() for e in events)
    decoded, decoder = _feed_all([stream])
    expected, last_id = _expected(events)
    assert decoded == expected
    assert decoder.last_event_id == last_id


@given(streams, st.data())
def test_encoded_stream_any_split(events: list[ServerSentEvent], draw: st.DataObject) -> None:
    stream = b"".join(e.encode() for e in events)
    cuts = draw.draw(st.lists(st.integers(0, len(stream)), max_size=20).map(sorted))
    assert _feed_all(_cut(stream, cuts))[0] == parse(stream)


@given(streams)
def test_encoded_stream_byte_by_byte(events: list[ServerSentEvent]) -> None:
    stream = b"".join(e.encode() for e in events)
    pieces = [stream[i : i + 1] for i in range(len(stream))]
    assert _feed_all(pieces)[0] == parse(stream)


# --- properties: arbitrary streams with mixed line ends ------------------------------

field_names = st.sampled_from(["data", "event", "id", "retry", "Data", "foo", "", "data "])
separators = st.sampled_from(["", ":", ": ", ":  "])
values = st.text(
    st.sampled_from(["a", "1", "0", " ", ":", "\0", "\t", "é", "\ufeff", "\u0661"]), max_size=5
)
lines = st.one_of(
    st.builds(lambda n, s, v: n + s + v, field_names, separators, values),
    st.builds(lambda v: ":" + v, values),  # comment
    st.just(""),  # blank line: dispatch
)
line_ends = st.sampled_from(["\n", "\r", "\r\n"])


def _reference(lines: list[str]) -> tuple[list[dict[str, Any]], str, int | None]:
    """The spec's steps (§1.2, §1.3), written out literally over complete lines."""
    data_buffer = event_type = id_buffer = last_event_id = ""
    retry: int | None = None
    events = []
    for line in lines:
        if line == "":
            last_event_id = id_buffer
            if data_buffer == "":
                data_buffer = event_type = ""
                continue
            if data_buffer.endswith("\n"):
                data_buffer = data_buffer[:-1]
            events.append(
                {"type": event_type or "message", "data": data_buffer, "lastEventId": last_event_id}
            )
            data_buffer = event_type = ""
        elif line.startswith(":"):
            continue
        else:
            field, colon, value = line.partition(":")
            if colon and value.startswith(" "):
                value = value[1:]
            if field == "event":
                event_type = value
            elif field == "data":
                data_buffer += value + "\n"
            elif field == "id" and "\0" not in value:
                id_buffer = value
            elif field == "retry" and value and all(c in "0123456789" for c in value):
                retry = int(value)
    return events, last_event_id, retry


@st.composite
def mixed_streams(draw: st.DrawFn) -> tuple[bytes, list[str]]:
    """A stream with random line ends, and the complete lines a spec parser sees in it."""
    body = draw(st.lists(lines, max_size=25))
    text = ""
    for line in body:
        end = draw(line_ends)
        # A CR followed by the LF of an empty line would be one CRLF, not two line ends.
        if text.endswith("\r") and line == "" and end == "\n":
            end = "\r\n"
        text += line + end
    complete = list(body)
    # Sometimes leave a last line without its line end: it is never complete.
    tail = draw(st.none() | lines.filter(bool))
    if tail is not None:
        text += tail
    if complete and complete[0].startswith("\ufeff"):
        # The UTF-8 decode step strips one leading BOM (§1.2 step 1).
        complete[0] = complete[0][1:]
    return text.encode(), complete


@given(mixed_streams(), st.data())
def test_mixed_line_ends_match_reference(
    stream: tuple[bytes, list[str]], draw: st.DataObject
) -> None:
    data, complete_lines = stream
    expected_events, expected_id, expected_retry = _reference(complete_lines)
    cuts = draw.draw(st.lists(st.integers(0, len(data)), max_size=10).map(sorted))
    events, decoder = _feed_all(_cut(data, cuts))
    assert _as_dicts(events) == expected_events
    assert decoder.last_event_id == expected_id
    assert decoder.retry == expected_retry


@given(mixed_streams())
def test_mixed_line_ends_equal_lf_only(stream: tuple[bytes, list[str]]) -> None:
    data, _ = stream
    # Re-terminating every line with LF changes nothing (one line break in SSE).
    # A trailing unterminated line must stay unterminated, so split it off first.
    text = data.decode()
    *complete, tail = re.split(r"\r\n|\r|\n", text)
    lf_only = "".join(line + "\n" for line in complete) + tail
    assert parse(data) == parse(lf_only.encode())
    assert _feed_all([data[i : i + 1] for i in range(len(data))])[0] == parse(data)
