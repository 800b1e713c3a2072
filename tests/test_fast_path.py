"""The text format's fast path, in both of its forms, writes what its slow path writes.

Nearly every chunk of a stream carries only text. ``iter_sse`` (heartbeats off) frames
those inline, ``TextFormat.chunk`` (every other pipeline) through ``_chat.plain_text``,
and each reads the SDK's objects one of two ways: by attribute (Python 3.12 and later) or
through ``__dict__`` (3.10 and 3.11). Every test here runs both forms on any Python.
"""

from __future__ import annotations

import dataclasses
import types
from collections.abc import Iterator
from typing import Any

import anyio
import pytest
from openai.types.chat import ChatCompletionChunk

import llmsse
from _chunks import USAGE, chunk, fragment, usage_chunk
from llmsse import StreamResult, _chat
from llmsse.formats import _parts, openai, text
from llmsse.formats.text import TextFormat

FORMS = {"attrs": (True, _chat._plain_text_attrs), "dict": (False, _chat._plain_text_dict)}


@pytest.fixture(params=sorted(FORMS))
def form(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    attrs, plain_text = FORMS[request.param]
    monkeypatch.setattr(_chat, "ATTRS", attrs)  # read by iter_sse at each stream's start
    for module in (_chat, text, openai, _parts):
        monkeypatch.setattr(module, "plain_text", plain_text)
    return str(request.param)


class SlowText(TextFormat):
    """The text format without a fast path: iter_sse inlines TextFormat only, and this
    chunk() goes straight to the general one."""

    def chunk(self, chunk: Any) -> bytes:
        return self._chunk(chunk)


class Sub(str):
    pass


def with_content(content: Any) -> ChatCompletionChunk:
    c = chunk({"content": "x"})
    c.choices[0].delta.content = content
    return c


@dataclasses.dataclass
class Delta:
    content: Any = None
    refusal: Any = None
    tool_calls: Any = None


# Chunks that a fast path must decline, or frame exactly as the slow path does.
ODD: dict[str, list[Any]] = {
    "line breaks": [chunk({"content": t}) for t in ("a\nb", "\r\n", "c\r", "\n\n\n")],
    "not printable": [chunk({"content": t}) for t in ("\tx", "a\u00a0b", "👩\u200d💻", "\x00")],
    "unicode": [chunk({"content": t}) for t in ("é", "日本語", "😀", " ")],
    "surrogate pair": [chunk({"content": "\ud83d"}), chunk({"content": "\ude00"})],
    "lone surrogate": [chunk({"content": "\udc80"})],
    "empty or none": [chunk({"content": ""}), chunk({"content": None}), chunk({})],
    "role": [chunk({"role": "assistant", "content": ""})],
    "finish with text": [chunk({"content": "end"}, "length")],
    "usage with text": [chunk({"content": "u"}, usage=USAGE)],
    "usage": [usage_chunk(1, 2)],
    "other choice": [chunk({"content": "b"}, index=1), chunk({"content": "c"}, index=None)],
    "two choices": [
        chunk(
            choices=[
                {"index": 0, "delta": {"content": "a"}, "finish_reason": None},
                {"index": 1, "delta": {"content": "b"}, "finish_reason": None},
            ]
        )
    ],
    "no choices": [chunk(choices=[])],
    "refusal": [chunk({"content": "t", "refusal": "no"}), chunk({"refusal": "no"})],
    "tool call": [
        fragment(0, "", id="call_1", name="f"),
        fragment(0, '{"a": 1}'),
        chunk({"content": "t", "tool_calls": [{"index": 0, "function": {"arguments": "}"}}]}),
    ],
    "reasoning": [
        chunk({"content": "t", "reasoning_content": "think"}),
        chunk({"content": "t", "reasoning": "hm"}),
        chunk({"content": "t", "reasoning_content": None}),
    ],
    "content parts": [chunk({"content": [{"type": "text", "text": "hi"}]})],
    "str subclass": [with_content(Sub("sub")), with_content(Sub("a\nb"))],
    "not text": [with_content(7), with_content(b"bytes"), with_content(["x"])],
    "plain objects": [
        types.SimpleNamespace(
            choices=[types.SimpleNamespace(index=0, finish_reason=None, delta=Delta("ns"))],
            usage=None,
        )
    ],
    "strings": ["a str", "line\nbreak"],
}


def stream(odd: list[Any]) -> list[Any]:
    """Plain text chunks around and between ``odd``: the fast path runs, meets each odd
    chunk, hands it over, and takes up the stream again."""
    items: list[Any] = [chunk({"role": "assistant", "content": ""}), chunk({"content": "A"})]
    for i, item in enumerate(odd):
        items += [item, chunk({"content": f"<{i}>"}), chunk({"content": "x\ny"})]
    return items  # no finish or usage chunk of its own: the odd chunks' must show


def run_sync(items: list[Any], **options: Any) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []
    body = b"".join(llmsse.iter_sse(iter(items), on_complete=results.append, **options))
    return body, results[0]


def run_async(items: list[Any]) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []

    async def main() -> bytes:
        gen = llmsse.aiter_sse(iter(items), heartbeat=None, on_complete=results.append)
        return b"".join([piece async for piece in gen])

    return anyio.run(main), results[0]


def outcome(body: bytes, result: StreamResult) -> tuple[Any, ...]:
    return (body, result.text, result.reasoning, result.refusal, result.tool_calls,
            result.finish_reason, result.usage, result.outcome)  # fmt: skip


@pytest.mark.parametrize("name", sorted(ODD))
def test_every_path_writes_the_slow_paths_bytes(form: str, name: str) -> None:
    items = stream(ODD[name])
    expected = outcome(*run_sync(items, heartbeat=None, format=SlowText))
    assert outcome(*run_sync(items, heartbeat=None)) == expected  # inline
    assert outcome(*run_sync(items, heartbeat=30.0)) == expected  # TextFormat.chunk
    assert outcome(*run_async(items)) == expected  # TextFormat.chunk
    with_ids = run_sync(items, heartbeat=30.0, ids=True)
    assert outcome(*with_ids) == outcome(
        *run_sync(items, heartbeat=None, format=SlowText, ids=True)
    )
    assert b"id: 1\n" in with_ids[0] and b"id: " not in expected[0]
    # The text-only case, without on_complete (nothing kept): the same bytes.
    assert b"".join(llmsse.iter_sse(items, heartbeat=None)) == expected[0]


def test_the_two_forms_agree_on_every_chunk() -> None:
    items = [c for odd in ODD.values() for c in stream(odd)]
    texts = [_chat._plain_text_attrs(c) for c in items]
    assert texts == [_chat._plain_text_dict(c) for c in items]
    # Only chunks that carry nothing but text for choice 0 have a "plain" text.
    assert {"A", "x\ny", "é", "\tx", "c", "\ud83d"} <= set(texts)  # "c": index None is 0
    assert not {"end", "u", "b", "t", "sub", "ns", "hi", 7, "a str"} & set(texts)


def test_the_form_follows_the_interpreter() -> None:
    import sys

    assert _chat.ATTRS is (sys.version_info >= (3, 12))
    assert _chat.plain_text is (_chat._plain_text_attrs if _chat.ATTRS else _chat._plain_text_dict)


class Source:
    """Plain text chunks, then a failure or more chunks; records its closes."""

    def __init__(self, n: int, fail: bool) -> None:
        self.n, self.fail, self.closes = n, fail, 0

    def __iter__(self) -> Iterator[Any]:
        yield chunk({"role": "assistant", "content": ""})
        for i in range(self.n):
            yield chunk({"content": f"{i} "})
        if self.fail:
            raise RuntimeError("sk-secret in the middle of the text")

    def close(self) -> None:
        self.closes += 1


def test_a_failure_inside_the_fast_loop_ends_with_the_error_event(form: str) -> None:
    source = Source(50, fail=True)
    results: list[StreamResult] = []
    body = b"".join(llmsse.iter_sse(source, heartbeat=None, on_complete=results.append))
    events = llmsse.parse(body)
    assert [e.data for e in events[:50]] == [f"{i} " for i in range(50)]
    assert events[-1].event == "error" and "sk-secret" not in body.decode()
    assert source.closes == 1
    assert results[0].outcome == "failed" and results[0].text == "".join(f"{i} " for i in range(50))


def test_closing_inside_the_fast_loop_closes_the_source_once(form: str) -> None:
    source = Source(50, fail=False)
    results: list[StreamResult] = []
    gen = llmsse.iter_sse(source, heartbeat=None, on_complete=results.append)
    assert [next(gen) for _ in range(10)] == [f"data: {i} \n\n".encode() for i in range(10)]
    gen.close()
    assert source.closes == 1
    assert results[0].outcome == "disconnected" and results[0].text == "0 1 2 3 4 5 6 7 8 9 "


class Reiterating:
    """An iterator that misbehaves: it yields again after StopIteration."""

    def __init__(self, items: list[Any]) -> None:
        self.items, self.stops = list(items), 0

    def __iter__(self) -> Reiterating:
        return self

    def __next__(self) -> Any:
        if self.items:
            return self.items.pop(0)
        self.stops += 1
        if self.stops == 1:
            self.items.append(chunk({"content": "late"}))
        raise StopIteration


def test_the_stream_ends_at_the_first_stop_of_the_source(form: str) -> None:
    source = Reiterating([chunk({"content": "a"}), chunk({"content": "b"})])
    body = b"".join(llmsse.iter_sse(source, heartbeat=None))
    assert b"late" not in body and source.stops == 1
