"""Properties every format keeps, checked the same way for all four.

Each format is read back with the test kit's own reader (``read_text_stream``,
``read_openai_stream`` / ``read_responses_stream``, ``read_ai_sdk_stream``,
``read_ag_ui_stream``), which checks the format's lifecycle as it reads; "ai-sdk" and
"ag-ui" bodies also go through the stricter checks of their own test modules (compact
JSON per event, the ``ag-ui-protocol`` models, one part open at a time).

What the formats guarantee about text: "openai", "ai-sdk" and "ag-ui" carry it in JSON
strings, so it comes back exactly; "text" carries it in ``data:`` lines, so a CR or a CRLF
in a delta arrives as LF (SSE has one line break), each delta on its own.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

import llmsse
import test_ag_ui
import test_ai_sdk
from _chunks import PIECE, answer, chunk, fragment, usage_chunk
from _responses import mixed_events, ops
from llmsse import StreamResult
from llmsse.testing import (
    FakeStream,
    api_error,
    assert_valid_sse,
    read_ag_ui_stream,
    read_ai_sdk_stream,
    read_events,
    read_openai_stream,
    read_responses_stream,
    read_text_stream,
    to_response_event,
)

FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]
#: The formats that carry text in JSON strings: any text comes back exactly.
JSON_FORMATS = ["openai", "ai-sdk", "ag-ui"]
#: The formats that send a refusal as answer text (the others as a refusal of its own).
REFUSAL_IS_ANSWER = {"ai-sdk", "ag-ui"}


def as_lf(text: str) -> str:
    """Text as the "text" format delivers it: SSE turns CR and CRLF into LF, a CRLF
    split between two deltas too (the format holds a CR that ends a delta back)."""
    return text.replace("\r\n", "\n").replace("\r", "\n")


def delivered(fmt: str) -> Callable[[str], str]:
    """What ``fmt`` makes of the text of all the deltas of one kind, joined."""
    return as_lf if fmt == "text" else str


@dataclass(frozen=True)
class Read:
    """What a client of a format reads from a body."""

    answer: str
    reasoning: str
    refusal: str  # "" where the refusal is answer text
    tool_calls: list[str]  # each call's arguments (for "ai-sdk", its input as JSON)
    ending: str | None  # "finished", "failed", or None when the stream just stopped


def read(fmt: str, data: bytes) -> Read:
    """Read ``data`` with the kit's reader of ``fmt``, which fails unless the stream is
    well formed for the format, from its first event to its terminal one."""
    ending: str | None
    if fmt == "text":
        assert_valid_sse(data, format="text")
        text = read_text_stream(data)
        calls = [call.arguments for call in text.tool_calls]
        ending = "failed" if text.error is not None else "finished"
        return Read(text.text, text.reasoning, text.refusal, calls, ending)
    if fmt == "openai":
        assert_valid_sse(data, format="openai")
        events = read_events(data)
        if events and events[0].event != "message":  # the Responses wire format
            responses = read_responses_stream(data)
            calls = [call.arguments for call in responses.tool_calls]
            ending = "failed" if responses.error is not None else "finished"
            return Read(responses.text, responses.reasoning, responses.refusal, calls, ending)
        chat = read_openai_stream(data)
        calls = [call.arguments for call in chat.tool_calls]
        ending = "finished" if chat.done else "failed" if chat.error is not None else None
        return Read(chat.text, chat.reasoning, chat.refusal, calls, ending)
    if fmt == "ai-sdk":
        ui = read_ai_sdk_stream(data)
        test_ai_sdk.check_lifecycle(test_ai_sdk.ui_chunks(data))
        assert "" not in [chunk.get("delta") for chunk in ui.chunks]
        calls = [ai_sdk_input(call.input) for call in ui.tool_calls]
        ending = {"finish": "finished", "error": "failed"}.get(ui.terminal or "")
        return Read(ui.text, ui.reasoning, "", calls, ending)
    agui = read_ag_ui_stream(data)
    test_ag_ui.check_lifecycle(test_ag_ui.events(data))
    calls = [call.arguments for call in agui.tool_calls]
    ending = {"RUN_FINISHED": "finished", "RUN_ERROR": "failed"}.get(agui.terminal or "")
    return Read(agui.text, agui.reasoning, "", calls, ending)


def ai_sdk_input(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def ai_sdk_input_of(arguments: str) -> str:
    """The ``input`` "ai-sdk" sends for a call's arguments: the JSON value (``{}`` for
    none), or the raw text in a ``tool-input-error`` when it is not JSON."""

    def refuse(name: str) -> Any:
        raise ValueError(name)

    try:
        return ai_sdk_input(json.loads(arguments or "{}", parse_constant=refuse))
    except ValueError:
        return ai_sdk_input(arguments)


def body(source: Any, fmt: str, **options: Any) -> bytes:
    return b"".join(llmsse.iter_sse(source, format=fmt, heartbeat=None, **options))


per_format = pytest.mark.parametrize("fmt", FORMATS)


# --- text ------------------------------------------------------------------------------


@per_format
@settings(max_examples=100, deadline=None)
@given(pieces=st.lists(PIECE, max_size=10), as_str=st.booleans())
@example(pieces=["a\r", "\nb", "c\r\n", "\r"], as_str=False)
def test_any_text_survives(fmt: str, pieces: list[str], as_str: bool) -> None:
    """Chunks or ``str`` pieces: the answer is the text sent."""
    source: Any = pieces if as_str else answer(*pieces)
    got = read(fmt, body(source, fmt))
    assert got.ending == "finished"
    assert got.answer == delivered(fmt)("".join(pieces))


# Lone surrogates: a provider can JSON-escape half of a pair; raw UTF-8 cannot carry it.
SURROGATE_PIECE = st.text(
    st.one_of(st.characters(categories=["Cs"]), st.characters(codec="utf-8")), max_size=6
)


@per_format
@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(SURROGATE_PIECE, max_size=6))
@example(pieces=["\ud83d", "\ude00!"])
def test_lone_surrogates_keep_the_stream_well_formed(fmt: str, pieces: list[str]) -> None:
    data = body(answer(*pieces), fmt)
    assert read(fmt, data).ending in ("finished", "failed")


@pytest.mark.parametrize("fmt", JSON_FORMATS)
@settings(max_examples=40, deadline=None)
@given(pieces=st.lists(SURROGATE_PIECE, max_size=6))
@example(pieces=["\ud83d", "\ude00!"])
def test_lone_surrogates_survive(fmt: str, pieces: list[str]) -> None:
    """JSON formats send such a payload with ASCII escapes; a JS client joining the
    deltas rebuilds the character (PROTOCOLS.md §6.5)."""
    data = body(answer(*pieces), fmt)
    got = read(fmt, data)
    assert got.ending == "finished"
    assert got.answer == "".join(pieces)
    if pieces == ["\ud83d", "\ude00!"]:
        assert b"\\ud83d" in data


def utf8_view(pieces: list[str]) -> str:
    """What the "text" format promises for deltas with surrogates: UTF-8 cannot carry
    one, so a pair split between two deltas is joined (the high half waits for the
    next delta), a high half whose next delta does not start with its low half is
    dropped, and any other lone surrogate becomes U+FFFD. A CR that ends a delta waits
    for the next one too (it may be half of a CRLF), and is sent at the end if none comes."""
    out, held = [], ""
    for piece in pieces:
        if not piece:
            continue
        if held != "\r" and not "\udc00" <= piece[0] <= "\udfff":
            held = ""
        piece, held = held + piece, ""
        if piece[-1] == "\r" or "\ud800" <= piece[-1] <= "\udbff":
            piece, held = piece[:-1], piece[-1]
        out.append(piece.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace"))
    if held == "\r":
        out.append(held)
    return as_lf("".join(out))


@pytest.mark.parametrize("source", ["chunks", "str"])
@settings(max_examples=60, deadline=None)
@given(pieces=st.lists(SURROGATE_PIECE, max_size=6))
@example(pieces=["\ud83d", "\ude00!"])
@example(pieces=["x\ud83d", "abc", "\ude00"])
@example(pieces=["\ude00\ud83d", "\ud83d", "\ude00\ude00"])
@example(pieces=["a\ud83d\r", "\ude00", "\ud83d", "\r"])
@example(pieces=["\r", "\ud83d", "\r\ude00", "\n"])
def test_text_format_carries_what_utf8_can(source: str, pieces: list[str]) -> None:
    items: list[Any] = answer(*pieces) if source == "chunks" else list(pieces)
    data = b"".join(llmsse.iter_sse(items, format="text", heartbeat=None))
    got = read("text", data)
    assert got.ending == "finished"
    assert got.answer == utf8_view(pieces)
    if pieces == ["\ud83d", "\ude00!"]:
        assert "\U0001f600!" in got.answer


# --- lifecycle over random chunks ---------------------------------------------------------------


def random_chunk() -> st.SearchStrategy[ChatCompletionChunk]:
    text = st.text(max_size=5)
    return st.one_of(
        st.builds(lambda t: chunk({"content": t}), text),
        st.builds(lambda t: chunk({"reasoning_content": t}), text),
        st.builds(lambda t: chunk({"refusal": t}), text),
        st.builds(lambda t, r: chunk({"content": t, "reasoning_content": r}), text, text),
        st.just(chunk({"content": None})),
        st.builds(
            lambda i, a, n: fragment(i, a, **({"id": f"id{i}", "name": "f"} if n else {})),
            st.integers(0, 2),
            st.sampled_from(["", "{", '"k":', "1", "}", None]),
            st.booleans(),
        ),
        st.builds(lambda r: chunk({}, r), st.sampled_from(["stop", "tool_calls", "length"])),
        st.just(usage_chunk()),
    )


@per_format
@settings(max_examples=200, deadline=None)
@given(source=st.lists(random_chunk(), max_size=12), fail=st.booleans())
def test_any_chunk_sequence_keeps_the_lifecycle(
    fmt: str, source: list[ChatCompletionChunk], fail: bool
) -> None:
    results: list[StreamResult] = []
    upstream: Any = source
    if fail:
        upstream = FakeStream(source, error=api_error("secret"), error_after=len(source))
    data = body(upstream, fmt, on_complete=results.append)
    got = read(fmt, data)
    assert got.ending == ("failed" if fail else "finished")
    assert b"secret" not in data
    # The answer is the text (and, where it is answer text, the refusal) in the order it
    # came, text first in a chunk.
    same = delivered(fmt)
    deltas = [c.choices[0].delta for c in source if c.choices]
    if fmt in REFUSAL_IS_ANSWER:
        assert got.answer == "".join((d.content or "") + (d.refusal or "") for d in deltas)
    else:
        assert got.answer == same("".join(d.content or "" for d in deltas))
        assert got.refusal == same("".join(d.refusal or "" for d in deltas))
    thoughts = [(d.model_extra or {}).get("reasoning_content") or "" for d in deltas]
    assert got.reasoning == same("".join(thoughts))
    assert results[0].reasoning == "".join(thoughts)
    # Every tool call reaches the client whole.
    if not fail:
        sent = [call.arguments for call in results[0].tool_calls]
        if fmt == "ai-sdk":
            sent = [ai_sdk_input_of(arguments) for arguments in sent]
        elif fmt == "openai":  # the chunks as they came: an OpenAI client joins by index
            sent = list(arguments_by_index(source).values())
        assert sorted(got.tool_calls) == sorted(sent)


def arguments_by_index(source: list[ChatCompletionChunk]) -> dict[int, str]:
    calls: dict[int, str] = {}
    for item in source:
        for choice in item.choices:
            for call in (choice.delta.tool_calls if choice.index == 0 else None) or []:
                index = call.index or 0
                arguments = call.function.arguments if call.function else None
                calls[index] = calls.get(index, "") + (arguments or "")
    return calls


# --- lifecycle over random Responses API events -------------------------------------------------


@per_format
@settings(max_examples=120, deadline=None)
@given(steps=ops)
def test_any_responses_event_mix_keeps_the_lifecycle(
    fmt: str, steps: list[tuple[Any, ...]]
) -> None:
    dicts, expected = mixed_events(steps)
    results: list[StreamResult] = []
    data = body([to_response_event(d) for d in dicts], fmt, on_complete=results.append)
    got = read(fmt, data)
    assert got.ending == "finished"
    assert results[0].reasoning == expected["reasoning"]
    # What the client reads: each kind of text as the format delivers it.
    same = delivered(fmt)
    assert got.reasoning == same(expected["reasoning"])
    if fmt in REFUSAL_IS_ANSWER:  # text and refusal parts interleave as they came
        assert sorted(got.answer) == sorted(expected["text"] + expected["refusal"])
    else:
        assert (got.answer, got.refusal) == (same(expected["text"]), same(expected["refusal"]))
