"""The text format's per-chunk fast paths against its slow path (ChatState.absorb()).

iter_sse(heartbeat=None) handles plain text chunks inline (pipeline._direct); aiter_sse
and the threaded iter_sse take TextFormat.chunk()'s shortcut; the other formats take
_chat.plain_text(). Whatever a shortcut declines goes to the slow path, so every stream
must come out with the same bytes and the same StreamResult as through the slow path.

Each shortcut reads the SDK's objects one of two ways, by attribute (Python 3.12 and
later) or through ``__dict__`` (3.10 and 3.11), or is the C speedups' version of it
(llmsse._speedups, when built): every test here runs all three, on any Python.
"""

from __future__ import annotations

import asyncio
import collections
import json
import re
import sys
import types
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

import llmsse
from _cext import speedups
from _chunks import USAGE, chunk
from llmsse import StreamResult, _chat, _responses
from llmsse.formats import FormatSpec, _parts, openai
from llmsse.formats import text as text_format
from llmsse.formats.base import Format
from llmsse.formats.text import TextFormat
from llmsse.testing import response_events, to_response_event, tool_call

CHOSEN = (
    _chat.ATTRS,
    _chat.plain_text,
    _chat.text_event,
    _responses.output_text,
    _responses.output_text_event,
)
FORMS = {
    "attrs": (True, _chat._plain_text_attrs, None, _responses._output_text_attrs, None),
    "dict": (False, _chat._plain_text_dict, None, _responses._output_text_dict, None),
    "c": None,  # the C speedups: the functions of llmsse._speedups
}


@pytest.fixture(params=sorted(FORMS), autouse=True)
def form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every way of reading the SDK's objects, whatever this Python and build would choose."""
    chosen = FORMS[request.param]
    if chosen is None:
        c = speedups()
        chosen = (CHOSEN[0], c.plain_text, c.text_event, c.output_text, c.output_text_event)
    attrs, plain_text, text_event, output_text, output_text_event = chosen
    monkeypatch.setattr(_chat, "ATTRS", attrs)  # read by iter_sse at each stream's start
    for module in (_chat, text_format, openai, _parts):
        monkeypatch.setattr(module, "plain_text", plain_text)
    for module in (_chat, text_format):
        monkeypatch.setattr(module, "text_event", text_event)
    monkeypatch.setattr(text_format, "output_text", output_text)
    monkeypatch.setattr(text_format, "output_text_event", output_text_event)
    return str(request.param)


# iter_sse without heartbeats (the inline loop), iter_sse with them (a reader thread,
# TextFormat.chunk()), aiter_sse (TextFormat.chunk()).
PIPELINES = ["direct", "thread", "async", "async+heartbeat"]


class SlowText(TextFormat):
    """The text format without its shortcuts: every chunk goes through ChatState.absorb(),
    every Responses event through the ResponsesReader."""

    def chunk(self, chunk: Any) -> bytes:
        return self._chunk(chunk)

    def response_event(self, event: Any) -> bytes:
        return Format.response_event(self, event)


class Source:
    """A sync source that records how often it was closed (and can fail part-way)."""

    def __init__(self, items: list[Any], *, fail_after: int | None = None) -> None:
        self.items = items
        self.fail_after = fail_after
        self.closes = 0

    def __iter__(self) -> Iterator[Any]:
        for n, item in enumerate(self.items):
            if n == self.fail_after:
                raise RuntimeError("upstream broke")
            yield item

    def close(self) -> None:
        self.closes += 1


def run(
    pipeline: str, items: list[Any], format: FormatSpec = "text", **options: Any
) -> tuple[bytes, StreamResult]:
    """All the bytes of ``items`` streamed by ``pipeline``, and the on_complete result."""
    results: list[StreamResult] = []
    options["on_complete"] = results.append
    if pipeline in ("direct", "thread"):
        heartbeat = None if pipeline == "direct" else 30.0
        out = b"".join(llmsse.iter_sse(iter(items), format=format, heartbeat=heartbeat, **options))
    else:
        heartbeat = 30.0 if pipeline == "async+heartbeat" else None

        async def source() -> AsyncIterator[Any]:
            for item in items:
                yield item

        async def main() -> bytes:
            gen = llmsse.aiter_sse(source(), format=format, heartbeat=heartbeat, **options)
            return b"".join([piece async for piece in gen])

        out = asyncio.run(main())
    [result] = results
    return out, result


def summary(result: StreamResult) -> tuple[Any, ...]:
    calls = [call.to_dict() for call in result.tool_calls]
    return (
        result.text,
        result.reasoning,
        result.refusal,
        calls,
        result.finish_reason,
        result.usage,
        result.outcome,
    )


def text(piece: Any) -> ChatCompletionChunk:
    return chunk({"content": piece})


def around(*middle: Any) -> list[Any]:
    """``middle`` between plain text chunks (so the fast loop is running when it comes)
    and followed by more of them (so it must start again) and the finish chunk."""
    head = [chunk({"role": "assistant", "content": ""}), text("Hel"), text("lo")]
    return [*head, *middle, text(" wor"), text("ld"), chunk({}, "stop")]


def tool_delta(**delta: Any) -> dict[str, Any]:
    call = {"index": 0, "id": "call_1", "type": "function"}
    return {**delta, "tool_calls": [{**call, "function": {"name": "f", "arguments": "{}"}}]}


def construct(content: Any, **fields: Any) -> ChatCompletionChunk:
    """A chunk built without validation, as the SDK builds the ones it receives."""
    choice = {"index": 0, "delta": {"content": content}, "finish_reason": None}
    body = {"id": "c", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return ChatCompletionChunk.construct(**{**body, "choices": [choice], **fields})


def namespace(content: str | None, finish: str | None = None) -> types.SimpleNamespace:
    delta = types.SimpleNamespace(content=content, refusal=None, tool_calls=None)
    choice = types.SimpleNamespace(index=0, delta=delta, finish_reason=finish)
    return types.SimpleNamespace(choices=[choice], usage=None)


class Str(str):
    pass


def with_content(content: Any) -> ChatCompletionChunk:
    """A chunk whose delta's content is ``content`` as it is (construct() may convert it)."""
    made = text("placeholder")
    made.choices[0].delta.content = content
    return made


def once(content: str, finish: str | None = None) -> ChatCompletionChunk:
    """A chunk whose ``choices`` can be read only once (an iterator)."""
    choices = chunk({"content": content}, finish).choices
    return ChatCompletionChunk.construct(**{**construct("").__dict__, "choices": iter(choices)})


# Chunks a shortcut must decline (or take with exactly the slow path's result).
ODD: dict[str, list[Any]] = {
    "usage-on-a-text-chunk": around(chunk({"content": "x"}, usage=USAGE)),
    "choice-1-alone": around(chunk({"content": "other"}, index=1)),
    "index-none": around(chunk({"content": "x"}, index=None)),
    "finish-with-text": around(chunk({"content": "end"}, "length")),
    "finish-on-the-last-text-chunk": [text("a"), text("b"), chunk({"content": "c"}, "length")],
    "empty-content": around(text("")),
    "none-content": around(text(None)),
    "refusal-with-text": around(chunk({"content": "x", "refusal": "no"})),
    "tool-call-with-text": around(chunk(tool_delta(content="x"))),
    "reasoning-with-text": around(chunk({"content": "x", "reasoning_content": "hmm"})),
    "reasoning-alone": around(chunk({"reasoning": "hmm"})),
    "two-choices": around(
        chunk(
            choices=[
                {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                {"index": 1, "delta": {"content": "b"}, "finish_reason": None},
            ]
        )
    ),
    "other-choice-ends-beside-text": around(
        chunk(
            choices=[
                {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                {"index": 1, "delta": {"refusal": "no"}, "finish_reason": "stop"},
            ]
        )
    ),
    "no-choices": around(chunk(choices=[])),
    "usage-chunk": [*around(), chunk(choices=[], usage=USAGE)],
    "lf": around(text("a\nb"), text("\n")),
    "crlf": around(text("a\r\nb")),
    "cr": around(text("a\rb"), text("\r")),
    "crlf-split": around(text("a\r"), text("\nb"), text("c\r"), text("d")),
    "cr-last": [*around(), text("a\r")],
    "cr-then-reasoning": around(text("a\r"), chunk({"reasoning_content": "\nhm"}), text("\nb")),
    "cr-then-str": around(text("a\r"), "\nb"),
    "cr-after-surrogate": around(text("a\ud83d\r"), text("\ude00"), text("x\ud83d"), text("\r")),
    "unprintable": around(text("\t"), text("\x00"), text("\u2028"), text("\x85"), text("\u200b")),
    "surrogate-pair-split": around(text("a\ud83d"), text("\ude00b")),
    "lone-high-surrogate": around(text("a\ud83d"), text("x"), text("\ude00y")),
    "lone-low-surrogate": around(text("\ude00"), text("z\udfff")),
    "high-surrogate-last": [*around(), text("a\ud83d")],
    "mistral-parts": around(chunk({"content": [{"type": "text", "text": "part"}]})),
    "str-subclass": around(with_content(Str("sub")), with_content(Str("a\nb"))),
    "tuple-choices": around(construct("t", choices=tuple(text("t").choices))),
    "str-pieces-between": around("piece", text("x"), "more"),
    "not-pydantic": [namespace("a"), namespace("b"), text("c"), namespace(None, "stop")],
    "unicode": around(text("é"), text("日本語"), text("😀"), text("a\u00a0b"), text("👩\u200d💻")),
    "reasoning-none": around(chunk({"content": "x", "reasoning_content": None})),
    # Extras without reasoning in them: the slow path shows nothing of them either.
    "null-reasoning-stream": [
        chunk({"role": "assistant", "content": "", "reasoning_content": None}),
        chunk({"content": None, "reasoning_content": "think"}),
        *(chunk({"content": p, "reasoning_content": None}) for p in ("qwen", "a\n", "b\r", "\nc")),
        chunk({"content": "", "reasoning_content": None}, "stop"),
    ],
    "null-reasoning-openrouter": around(
        chunk({"content": "orouter", "reasoning": None, "reasoning_details": []})
    ),
    "empty-reasoning-content-wins": around(
        chunk({"content": "emptywins", "reasoning_content": "", "reasoning": "r"})
    ),
    "reasoning-beside-null-reasoning-content": around(
        chunk({"content": "shown", "reasoning_content": None, "reasoning": "r"})
    ),
    "reasoning-not-a-str": around(chunk({"content": "listed", "reasoning_content": ["r"]})),
    "other-extras": around(chunk({"content": "vendor", "matched_stop": None, "x_v": {"a": 1}})),
    "not-text": around(with_content(7), with_content(b"bytes"), with_content(["x"])),
    "user-string": around(with_content(collections.UserString("u"))),
}


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", ODD)
def test_same_bytes_and_result_as_the_slow_path(pipeline: str, case: str) -> None:
    items = ODD[case]
    fast, fast_result = run(pipeline, items)
    slow, slow_result = run(pipeline, items, format=SlowText)
    assert fast == slow
    assert summary(fast_result) == summary(slow_result)


@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", ODD)
def test_ids_are_the_only_difference(pipeline: str, case: str) -> None:
    # The same events, each with the next id, whichever path wrote it.
    items = ODD[case]
    plain, _ = run(pipeline, items)
    with_ids, _ = run(pipeline, items, ids=True)
    events = with_ids.split(b"\n\n")[:-1]
    for n, event in enumerate(events, 1):
        assert b"\nid: %d\n" % n in b"\n" + event + b"\n"
    stripped = b"".join(
        b"\n".join(line for line in event.split(b"\n") if not line.startswith(b"id: ")) + b"\n\n"
        for event in events
    )
    assert stripped == plain


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_usage_on_a_text_chunk_is_kept(pipeline: str) -> None:
    # vLLM's continuous_usage_stats: every chunk carries usage, text chunks too.
    items = [text("a"), text("b"), chunk({"content": "c"}, usage=USAGE), chunk({}, "stop")]
    out, result = run(pipeline, items)
    head, done = out.split(b"event: done\ndata: ")
    assert head == b"data: a\n\ndata: b\n\ndata: c\n\n"
    assert json.loads(done) == {"finish_reason": "stop", "usage": USAGE}
    assert result.usage == USAGE
    assert result.text == "abc"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_finish_reason_on_the_last_text_chunk(pipeline: str) -> None:
    out, result = run(pipeline, [text("a"), text("b"), chunk({"content": "c"}, "length")])
    assert out.endswith(
        b'data: c\n\nevent: done\ndata: {"finish_reason":"length","usage":null}\n\n'
    )
    assert (result.text, result.finish_reason) == ("abc", "length")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_lone_carriage_return_ends_a_line(pipeline: str) -> None:
    out, result = run(pipeline, [text("a"), text("b\rc"), text("\r")])
    assert out.startswith(b"data: a\n\ndata: b\ndata: c\n\ndata: \ndata: \n\n")
    assert result.text == "ab\rc\r"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_an_empty_delta_sends_nothing(pipeline: str) -> None:
    out, _ = run(pipeline, [text("a"), text(""), text("b")])
    assert out.startswith(b"data: a\n\ndata: b\n\nevent: done\n")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_high_surrogate_whose_low_half_never_comes_is_dropped(pipeline: str) -> None:
    # The held half is dropped by the next delta, even one the fast path would take:
    # a low half that comes later still is a lone surrogate (U+FFFD).
    out, _ = run(pipeline, [text("a"), text("b\ud83d"), text("x"), text("\ude00y")])
    assert out.startswith(b"data: a\n\ndata: b\n\ndata: x\n\ndata: \xef\xbf\xbdy\n\n")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_a_text_format_subclass_keeps_its_own_chunk(pipeline: str) -> None:
    class Shouting(TextFormat):
        def chunk(self, chunk: Any) -> bytes:
            return super().chunk(chunk).upper()

    out, _ = run(pipeline, [text("a"), text("b"), text("c")], format=Shouting)
    assert out.startswith(b"DATA: A\n\nDATA: B\n\nDATA: C\n\n")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_text_kept_for_on_complete(pipeline: str) -> None:
    pieces = ["Hel", "lo", " wor", "ld", "\n", "x\ry", "\ud83d", "\ude00"]
    _, result = run(pipeline, [text(piece) for piece in pieces])
    assert result.text == "".join(pieces)


class Resuming:
    """An iterator that, after its first StopIteration, would yield more."""

    def __init__(self, *batches: list[Any]) -> None:
        self.batches = [list(batch) for batch in batches]

    def __iter__(self) -> Resuming:
        return self

    def __next__(self) -> Any:
        if not self.batches:
            raise StopIteration
        if not self.batches[0]:
            del self.batches[0]
            raise StopIteration
        return self.batches[0].pop(0)


@pytest.mark.parametrize("heartbeat", [None, 30.0])
def test_the_source_is_read_up_to_its_first_stop_iteration(heartbeat: float | None) -> None:
    source = Resuming([text("a"), text("b")], [text("c")])
    out = b"".join(llmsse.iter_sse(source, heartbeat=heartbeat))
    assert (
        out == b'data: a\n\ndata: b\n\nevent: done\ndata: {"finish_reason":null,"usage":null}\n\n'
    )


@pytest.mark.parametrize("heartbeat", [None, 30.0])
def test_a_source_failing_in_the_fast_loop(heartbeat: float | None) -> None:
    results: list[StreamResult] = []
    source = Source([text("a"), text("b"), text("c"), text("d")], fail_after=3)
    out = b"".join(llmsse.iter_sse(source, heartbeat=heartbeat, on_complete=results.append))
    assert out.startswith(b"data: a\n\ndata: b\n\ndata: c\n\nevent: error\n")
    assert source.closes == 1
    [result] = results
    assert (result.outcome, result.text) == ("failed", "abc")
    assert isinstance(result.error, RuntimeError)


@pytest.mark.parametrize("heartbeat", [None, 30.0])
def test_closed_by_the_consumer_in_the_fast_loop(heartbeat: float | None) -> None:
    results: list[StreamResult] = []
    source = Source([text("a"), text("b"), text("c"), text("d")])
    gen = llmsse.iter_sse(source, heartbeat=heartbeat, on_complete=results.append)
    assert [next(gen), next(gen)] == [b"data: a\n\n", b"data: b\n\n"]
    gen.close()  # type: ignore[attr-defined]
    assert source.closes == 1
    [result] = results
    assert result.outcome == "disconnected"
    assert result.text.startswith("ab")


_CHUNK_ID = re.compile(rb'"id":"chatcmpl-[0-9a-f]+"')  # made up for the str pieces


# plain_text() is the shortcut of the other formats: without it, the same stream. (The
# openai format sends the SDK's own objects only, so not the "not-pydantic" case.)
@pytest.mark.parametrize(
    ("fmt", "case"),
    [
        (fmt, case)
        for fmt in ("ai-sdk", "openai")
        for case in ODD
        if (fmt, case) != ("openai", "not-pydantic")
    ],
)
def test_plain_text_is_only_a_shortcut(
    monkeypatch: pytest.MonkeyPatch, fmt: str, case: str
) -> None:
    items = ODD[case]
    fast, fast_result = run("direct", items, format=fmt)
    monkeypatch.setattr(_parts, "plain_text", lambda chunk: None)
    monkeypatch.setattr(openai, "plain_text", lambda chunk: None)
    slow, slow_result = run("direct", items, format=fmt)
    assert _CHUNK_ID.sub(b"", fast) == _CHUNK_ID.sub(b"", slow)
    assert summary(fast_result) == summary(slow_result)


def test_the_two_forms_agree_on_every_chunk() -> None:
    items = [c for case in ODD.values() for c in case if not isinstance(c, str)]
    texts = [_chat._plain_text_attrs(c) for c in items]
    assert texts == [_chat._plain_text_dict(c) for c in items]
    # Only chunks that carry nothing but text for choice 0 are plain (index None is 0).
    assert {"Hel", "a\nb", "é", "\t", "a\ud83d", "x"} <= set(texts)
    assert {"qwen", "orouter", "emptywins", "vendor"} <= set(texts)  # extras, no reasoning
    assert not {"end", "other", "part", "sub", "u", 7, "shown", "listed"} & set(texts)
    # The C version leaves tuple choices (from no SDK) to the slow path: the same bytes.
    in_c = [speedups().plain_text(c) for c in items]
    assert in_c == [None if text == "t" else text for text in texts]


def calls_to(monkeypatch: pytest.MonkeyPatch, cls: type, name: str) -> list[Any]:
    """The items the method ``cls.name`` is called with from now on (it still runs)."""
    seen: list[Any] = []
    method = getattr(cls, name)

    def recording(self: Any, item: Any) -> Any:
        seen.append(item)
        return method(self, item)

    monkeypatch.setattr(cls, name, recording)
    return seen


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_extras_without_reasoning_take_the_fast_path(
    monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> None:
    # Qwen, SGLang and vLLM send "reasoning_content": null beside every piece of the
    # answer, OpenRouter "reasoning": null: such chunks must not cost the slow path.
    absorbed = calls_to(monkeypatch, _chat.ChatState, "absorb")
    chunk_calls = calls_to(monkeypatch, TextFormat, "chunk")
    items = [
        text("a"),
        *(chunk({"content": p, "reasoning_content": None}) for p in ("b", "c\nd")),
        chunk({"content": "e", "reasoning": None, "reasoning_details": []}),
        chunk({"content": "f", "reasoning_content": "", "reasoning": None}),
    ]
    out, result = run(pipeline, items)
    assert out.startswith(b"data: a\n\ndata: b\n\ndata: c\ndata: d\n\ndata: e\n\ndata: f\n\n")
    assert absorbed == []
    # iter_sse without heartbeats hands only the first chunk to chunk(), the rest inline.
    assert len(chunk_calls) == (1 if pipeline == "direct" else len(items))
    assert (result.text, result.reasoning) == ("abc\ndef", "")


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_ids_keep_the_fast_path(monkeypatch: pytest.MonkeyPatch, pipeline: str) -> None:
    # Resumable streams run with ids: their plain chunks must not cost the slow path.
    absorbed = calls_to(monkeypatch, _chat.ChatState, "absorb")
    items = [text("a"), text("b\nc"), text("d\r"), text("\ne"), chunk({}, "stop")]
    out, result = run(pipeline, items, ids=True)
    assert out == (
        b"id: 1\ndata: a\n\nid: 2\ndata: b\ndata: c\n\nid: 3\ndata: d\n\nid: 4\ndata: \ndata: e\n\n"
        b'event: done\nid: 5\ndata: {"finish_reason":"stop","usage":null}\n\n'
    )
    # The CR held back for a CRLF and the finish reason take the slow path; nothing else.
    assert absorbed == items[2:]
    assert result.text == "ab\ncd\r\ne"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_ids_keep_the_fast_path_of_str_pieces(
    monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> None:
    texts = calls_to(monkeypatch, TextFormat, "text")
    items = ["a", "b\r\nc", "d\r", "\ne", "f\ud83d", "\ude00"]
    out, result = run(pipeline, items, ids=True)
    assert out == (
        b"id: 1\ndata: a\n\nid: 2\ndata: b\ndata: c\n\nid: 3\ndata: d\n\nid: 4\ndata: \ndata: e\n\n"
        b"id: 5\ndata: f\n\nid: 6\ndata: \xf0\x9f\x98\x80\n\n"
        b'event: done\nid: 7\ndata: {"finish_reason":null,"usage":null}\n\n'
    )
    # Besides the first piece (which picks the feeder), only what may be half of a CRLF
    # or comes after a held CR or surrogate half goes through text().
    assert texts == ["a", "d\r", "\ne", "\ude00"]
    assert result.text == "".join(items)


def text_delta(text: Any) -> Any:
    """A response.output_text.delta event of the openai SDK, as it builds one."""
    data = {"type": "response.output_text.delta", "sequence_number": 0, "item_id": "msg_1"}
    return to_response_event({**data, "output_index": 0, "content_index": 0, "delta": text})


# Responses streams whose text deltas the shortcut must take with exactly the slow
# path's result (or decline).
RESPONSES: dict[str, list[Any]] = {
    "plain": response_events(["Hel", "lo", " wor", "ld"]),
    "line-breaks": response_events(["a\nb", "\n", "c\rd", "\r", "e"]),
    "crlf-split": response_events(["a\r", "\nb", "c\r", "d", "e\r"]),
    "surrogates": response_events(["a\ud83d", "\ude00b", "x\ud83d", "y", "\udfff"]),
    "unprintable": response_events(["\t", "\x00", "\u2028", "\x85"]),
    "with-reasoning-and-tools": response_events(
        ["Checking ", "Paris\r", "\n"],
        reasoning=[["Need\r", "\nweather."], ["Then answer."]],
        refusal=["no\r", "\npe"],
        tool_calls=[tool_call("get_weather", {"city": "Paris"}, id="call_1")],
    ),
    "odd-deltas": [
        text_delta("a"),
        text_delta(""),
        text_delta(None),
        text_delta(7),
        text_delta(Str("sub")),
        text_delta("b"),
        *response_events(["c"]),
    ],
}


@pytest.mark.parametrize("ids", [False, True], ids=["plain", "ids"])
@pytest.mark.parametrize("pipeline", PIPELINES)
@pytest.mark.parametrize("case", RESPONSES)
def test_responses_events_same_bytes_and_result_as_the_slow_path(
    pipeline: str, case: str, ids: bool
) -> None:
    items = RESPONSES[case]
    fast, fast_result = run(pipeline, items, ids=ids)
    slow, slow_result = run(pipeline, items, format=SlowText, ids=ids)
    assert fast == slow
    assert summary(fast_result) == summary(slow_result)


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_responses_text_deltas_skip_the_reader(
    monkeypatch: pytest.MonkeyPatch, pipeline: str
) -> None:
    read = calls_to(monkeypatch, _responses.ResponsesReader, "read")
    items = response_events(["a", "b\nc", "d\r", "\ne"])
    out, result = run(pipeline, items)
    assert out.startswith(b"data: a\n\ndata: b\ndata: c\n\ndata: d\n\ndata: \ndata: e\n\n")
    # Only the held CR (and the text after it) and the events that are not text deltas.
    kinds = [event.type for event in read]
    assert kinds.count("response.output_text.delta") == 2
    assert len(read) == len(items) - 2
    assert result.text == "ab\ncd\r\ne"


@pytest.mark.parametrize("pipeline", PIPELINES)
def test_choices_that_can_be_read_once(pipeline: str) -> None:
    # Fresh chunks for each run: reading their choices uses them up.
    def items() -> list[Any]:
        return around(once("b"), once("c", "length"))

    fast, fast_result = run(pipeline, items())
    slow, slow_result = run(pipeline, items(), format=SlowText)
    assert fast == slow and b"data: b\n\ndata: c\n\n" in fast
    assert summary(fast_result) == summary(slow_result)
    assert fast_result.text == "Hellobc world"


def test_the_form_follows_the_interpreter() -> None:
    attrs, plain_text, text_event, output_text, output_text_event = CHOSEN  # before the fixture
    assert attrs is (sys.version_info >= (3, 12))
    if _chat.SPEEDUPS:  # built, and LLMSSE_NO_SPEEDUPS not set (tests/test_speedups.py)
        c = speedups()
        assert (plain_text, text_event) == (c.plain_text, c.text_event)
        assert (output_text, output_text_event) == (c.output_text, c.output_text_event)
        return
    assert plain_text is (_chat._plain_text_attrs if attrs else _chat._plain_text_dict)
    assert text_event is None and output_text_event is None
    assert output_text is (_responses._output_text_attrs if attrs else _responses._output_text_dict)
