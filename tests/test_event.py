"""Tests for llmsse.event: ServerSentEvent, encode_data and encode_comment.

The exact bytes come from the shared vectors (PROTOCOLS.md §1.6); the properties check
that whatever the encoder writes, the spec decoder reads back the same text.
"""

from __future__ import annotations

import base64
import builtins
import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from llmsse import ServerSentEvent, SSEDecoder, parse
from llmsse.event import encode_comment, encode_data

VECTORS = json.loads((Path(__file__).parent / "data" / "sse_vectors.json").read_text("utf-8"))
ENCODE_OK = [v for v in VECTORS["encode"] if "error" not in v]
ENCODE_ERR = [v for v in VECTORS["encode"] if "error" in v]


def _ids(vectors: list[dict[str, Any]]) -> list[str]:
    return [v["name"] for v in vectors]


def _as_dicts(events: list[ServerSentEvent]) -> list[dict[str, Any]]:
    """The browser's view of decoded events, in the vectors' shape."""
    return [{"type": e.event, "data": e.data, "lastEventId": e.id} for e in events]


# Any text a Python str can hold and UTF-8 can encode: everything except lone surrogates.
texts = st.text(st.characters(exclude_categories=("Cs",)))
# Text that is dense in the characters the encoder has to get right.
tricky_texts = st.lists(
    st.sampled_from(
        ["\r", "\n", "\r\n", " ", ":", "\0", "\x85", "\u2028", "\ufeff", "a", "é", "👋"]
    )
).map("".join)
any_text = st.one_of(texts, tricky_texts)
event_names = any_text.filter(lambda s: "\r" not in s and "\n" not in s)
event_ids = event_names.filter(lambda s: "\0" not in s)


def _normalise_newlines(text: str) -> str:
    # SSE has one line break: what a client reads back has CRLF and lone CR as LF.
    return re.sub(r"\r\n|\r", "\n", text)


# --- the shared vectors -------------------------------------------------------------


@pytest.mark.parametrize("vector", ENCODE_OK, ids=_ids(ENCODE_OK))
def test_encode_vector_bytes(vector: dict[str, Any]) -> None:
    expected = base64.b64decode(vector["bytes_b64"])
    assert ServerSentEvent(**vector["input"]).encode() == expected


@pytest.mark.parametrize("vector", ENCODE_OK, ids=_ids(ENCODE_OK))
def test_encode_vector_decodes_to(vector: dict[str, Any]) -> None:
    encoded = ServerSentEvent(**vector["input"]).encode()
    assert _as_dicts(parse(encoded)) == vector["decodes_to"]


@pytest.mark.parametrize(
    "vector",
    [v for v in ENCODE_OK if set(v["input"]) == {"data"}],
    ids=_ids([v for v in ENCODE_OK if set(v["input"]) == {"data"}]),
)
def test_encode_data_vector(vector: dict[str, Any]) -> None:
    # The fast path for the common case must write exactly what ServerSentEvent writes.
    assert encode_data(vector["input"]["data"]) == base64.b64decode(vector["bytes_b64"])


@pytest.mark.parametrize(
    "vector",
    [v for v in ENCODE_OK if set(v["input"]) == {"comment"}],
    ids=_ids([v for v in ENCODE_OK if set(v["input"]) == {"comment"}]),
)
def test_encode_comment_vector(vector: dict[str, Any]) -> None:
    assert encode_comment(vector["input"]["comment"]) == base64.b64decode(vector["bytes_b64"])


@pytest.mark.parametrize("vector", ENCODE_ERR, ids=_ids(ENCODE_ERR))
def test_encode_vector_error(vector: dict[str, Any]) -> None:
    expected = getattr(builtins, vector["error"])
    with pytest.raises(expected) as excinfo:
        ServerSentEvent(**vector["input"]).encode()
    # UnicodeEncodeError is a ValueError subclass: insist on the exact type named.
    assert excinfo.type is expected


@pytest.mark.parametrize(
    "vector",
    [v for v in ENCODE_ERR if v["error"] == "ValueError"],
    ids=_ids([v for v in ENCODE_ERR if v["error"] == "ValueError"]),
)
def test_invalid_field_rejected_at_construction(vector: dict[str, Any]) -> None:
    # A stream must never break half-way: bad fields fail when the event is made,
    # before any byte of it could be sent.
    with pytest.raises(ValueError):
        ServerSentEvent(**vector["input"])


def test_lone_surrogate_fails_only_at_encode() -> None:
    event = ServerSentEvent(data="\ud83d")
    with pytest.raises(UnicodeEncodeError):
        event.encode()
    with pytest.raises(UnicodeEncodeError):
        encode_data("\ud83d")


SHARED_VECTORS = Path("/work/shared/sse_vectors.json")

# tests/data holds a copy so CI needs only this repository (a fresh clone has no shared
# original): the check that the copy has not drifted exists only where the original is at hand.
if SHARED_VECTORS.exists():

    def test_vectors_file_matches_shared_copy() -> None:
        assert json.loads(SHARED_VECTORS.read_text("utf-8")) == VECTORS


def test_vectors_cover_protocols_tables() -> None:
    # PROTOCOLS.md §1.6 lists E1-E36 and §1.7 D1-D59; a truncated copy would pass silently.
    assert len(VECTORS["encode"]) == 36
    assert len(VECTORS["decode"]) == 59


# --- bad input: clear errors naming the field ----------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"event": "a\nb", "data": "x"}, "event"),
        ({"event": "a\rb", "data": "x"}, "event"),
        ({"event": "a\r\nb", "data": "x"}, "event"),
        ({"event": "\n"}, "event"),
        ({"id": "1\n2"}, "id"),
        ({"id": "1\r"}, "id"),
        ({"id": "\r\n"}, "id"),
        ({"id": "1\x002", "data": "x"}, "id"),
        ({"retry": -1}, "retry"),
        ({"retry": True}, "retry"),
        ({"retry": False}, "retry"),
        ({"retry": "100"}, "retry"),
        ({"retry": 1.5}, "retry"),
        ({"retry": 100.0}, "retry"),
    ],
)
def test_invalid_value_names_the_field(kwargs: dict[str, Any], field: str) -> None:
    with pytest.raises(ValueError, match=rf"\b{field}\b"):
        ServerSentEvent(**kwargs)


def test_no_fields_at_all() -> None:
    with pytest.raises(ValueError, match="at least one of data, event, id, retry, comment"):
        ServerSentEvent()
    with pytest.raises(ValueError, match="at least one"):
        ServerSentEvent(None, event=None, id=None, retry=None, comment=None)


@pytest.mark.parametrize("field", ["data", "event", "id", "comment"])
@pytest.mark.parametrize("value", [b"x", 1, {"a": 1}, ["x"]], ids=["bytes", "int", "dict", "list"])
def test_non_str_text_field_is_type_error(field: str, value: object) -> None:
    with pytest.raises(TypeError, match=rf"\b{field}\b.*must be a str.*{type(value).__name__}"):
        ServerSentEvent(**{field: value})


@pytest.mark.parametrize("value", [b"x", 1, None, {"a": 1}, ["x"]])
@pytest.mark.parametrize("function", [encode_data, encode_comment])
def test_encode_helpers_reject_non_str(function: Any, value: object) -> None:
    # Passing a dict (meaning JSON) or bytes is the likely mistake; the error must say so
    # and must be a TypeError, not an AttributeError from inside the encoder.
    with pytest.raises(TypeError, match=rf"expects .*str, got {type(value).__name__}"):
        function(value)


def test_event_is_frozen() -> None:
    # Validation happens once, in __post_init__; mutation would bypass it.
    event = ServerSentEvent(data="x")
    with pytest.raises(dataclasses.FrozenInstanceError):
        event.event = "a\nb"  # type: ignore[misc]


def test_str_subclass_accepted() -> None:
    class Text(str):
        pass

    assert ServerSentEvent(data=Text("a\nb"), event=Text("e")).encode() == (
        b"event: e\ndata: a\ndata: b\n\n"
    )


def test_data_positional_and_other_fields_keyword_only() -> None:
    assert ServerSentEvent("x").data == "x"
    with pytest.raises(TypeError):
        ServerSentEvent("x", "e")  # type: ignore[misc]


# --- properties ----------------------------------------------------------------------


def _assert_well_formed(encoded: bytes) -> None:
    """LF only, valid UTF-8, exactly one blank line and it ends the event."""
    assert b"\r" not in encoded
    encoded.decode("utf-8")
    assert encoded.endswith(b"\n\n")
    lines = encoded[:-1].split(b"\n")
    assert lines[-1] == b""
    # No line but the terminator is empty, so no text can end the event early or
    # inject a second one.
    assert all(lines[:-1])


@given(any_text)
def test_data_round_trips(text: str) -> None:
    encoded = ServerSentEvent(data=text).encode()
    _assert_well_formed(encoded)
    [event] = parse(encoded)
    assert event.data == _normalise_newlines(text)
    assert (event.event, event.id) == ("message", "")


@given(any_text)
def test_encode_data_equals_event_encode(text: str) -> None:
    assert encode_data(text) == ServerSentEvent(data=text).encode()


@given(any_text)
def test_comment_never_dispatches(text: str) -> None:
    encoded = encode_comment(text)
    _assert_well_formed(encoded)
    assert encoded == ServerSentEvent(comment=text).encode()
    assert parse(encoded) == []


@given(
    data=any_text,
    event=st.none() | event_names,
    id=st.none() | event_ids,
    retry=st.none() | st.integers(min_value=0, max_value=2**63),
    comment=st.none() | any_text,
)
def test_all_fields_round_trip(
    data: str, event: str | None, id: str | None, retry: int | None, comment: str | None
) -> None:
    encoded = ServerSentEvent(data=data, event=event, id=id, retry=retry, comment=comment).encode()
    _assert_well_formed(encoded)
    [decoded] = parse(encoded)
    assert decoded.data == _normalise_newlines(data)
    # An empty or absent type is "message" to a browser (§1.3 step 5).
    assert decoded.event == (event or "message")
    assert decoded.id == (id or "")
    assert decoded.retry == retry


@given(event=event_names, id=event_ids, retry=st.integers(min_value=0))
def test_fields_without_data_dispatch_nothing(event: str, id: str, retry: int) -> None:
    # §1.3: no data, no event; but the id and retry still reach the client.
    decoder = SSEDecoder()
    assert decoder.feed(ServerSentEvent(event=event, id=id, retry=retry).encode()) == []
    assert decoder.last_event_id == id
    assert decoder.retry == retry
