"""llmsse's optional C speedups (src/llmsse/_speedups.c) on their own.

tests/test_fast_path.py runs every stream through them as well; here: that they are
built and chosen, that they accept and decline exactly what the Python code does, and
that they neither leak nor free a reference they do not own.
"""

from __future__ import annotations

import os
import subprocess
import sys
import types
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from _cext import speedups
from _chunks import USAGE, chunk
from llmsse import _chat, _responses
from llmsse.event import encode_data
from llmsse.testing import response_events

PYTHON = _chat._plain_text_dict  # the Python version the C one translates


def test_built_and_chosen() -> None:
    c = speedups()  # fails on CI (and wherever a C compiler is) when they are missing
    if os.environ.get("LLMSSE_NO_SPEEDUPS"):
        assert not _chat.SPEEDUPS
    else:
        assert _chat.SPEEDUPS
        assert _chat.plain_text is c.plain_text and _chat.text_event is c.text_event


@pytest.mark.parametrize("value", ["1", ""])
def test_llmsse_no_speedups_turns_them_off(value: str) -> None:
    speedups()
    env = {**os.environ, "LLMSSE_NO_SPEEDUPS": value}
    code = (
        "from llmsse import _chat, _responses; "
        "print(_chat.SPEEDUPS, _chat.text_event is None, _responses.output_text_event is None)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert out.stdout.split() == (
        ["False", "True", "True"] if value else ["True", "False", "False"]
    )


def ns(**fields: Any) -> types.SimpleNamespace:
    return types.SimpleNamespace(**fields)


class Bool:
    """A field value whose truth is ``truth``, or that raises it when it is an exception
    class (a new instance each time: re-raising one would grow its traceback)."""

    def __init__(self, truth: bool | type[BaseException]) -> None:
        self.truth = truth

    def __bool__(self) -> bool:
        if isinstance(self.truth, bool):
            return self.truth
        raise self.truth("from __bool__")


def shaped(
    content: Any = "hi",
    *,
    index: Any = 0,
    finish: Any = None,
    usage: Any = None,
    refusal: Any = None,
    tools: Any = None,
    extra: Any = None,
) -> types.SimpleNamespace:
    """A chunk-shaped object of plain namespaces (their __dict__ is a real dict)."""
    delta = ns(content=content, refusal=refusal, tool_calls=tools, __pydantic_extra__=extra)
    choice = ns(index=index, delta=delta, finish_reason=finish)
    return ns(choices=[choice], usage=usage)


BOOLS = [Bool(True), Bool(False), Bool(ValueError)]
values = st.sampled_from([None, "", "x", "a\nb", 0, 1, [], [1], {}, {"a": 1}, *BOOLS])
extras = st.one_of(
    st.none(),
    st.dictionaries(st.sampled_from(["reasoning_content", "reasoning", "other"]), values),
)


@given(
    content=st.one_of(values, st.text(max_size=5)),
    index=values,
    finish=values,
    usage=values,
    refusal=values,
    tools=values,
    extra=extras,
)
def test_plain_text_is_the_python_version(**fields: Any) -> None:
    c = speedups()
    item = shaped(**fields)
    assert c.plain_text(item) == PYTHON(item)


@pytest.mark.parametrize(
    "item",
    [
        None,
        7,
        "text",
        ns(),
        ns(choices=[], usage=None),
        ns(choices=None, usage=None),
        ns(choices=[ns(index=0, finish_reason=None)], usage=None),  # no delta
        ns(choices=[ns()], usage=None),
        ns(choices=[ns(index=0, finish_reason=None, delta=ns(content="x"))], usage=None),
        shaped(extra=["not", "a", "dict"]),
        shaped(extra={"reasoning_content": None, "reasoning": Bool(ValueError)}),
        shaped(content=Bool(True)),
    ],
)
def test_odd_objects_are_declined(item: Any) -> None:
    c = speedups()
    assert c.plain_text(item) is None
    assert c.text_event(item, None) is None
    assert PYTHON(item) is None


class Extras(dict[str, Any]):
    pass


class Text(str):
    pass


@pytest.mark.parametrize(
    "item",
    [
        # Python accepts these; C leaves them to the slow path, which gives the same bytes.
        ns(choices=(shaped().choices[0],), usage=None),
        shaped(extra=Extras()),
        shaped(content=Text("sub")),
    ],
)
def test_declined_where_python_may_accept(item: Any) -> None:
    assert speedups().plain_text(item) is None


def test_interrupts_propagate() -> None:
    c = speedups()
    for item in (shaped(refusal=Bool(KeyboardInterrupt)), shaped(index=Bool(SystemExit))):
        with pytest.raises((KeyboardInterrupt, SystemExit)):
            c.plain_text(item)
        with pytest.raises((KeyboardInterrupt, SystemExit)):
            c.text_event(item, None)


TEXTS = ["a", " hello", "é", "naïve café", "日本語", "😀", "👩\u200d💻", "\t\x00\x85\u2028"]


@pytest.mark.parametrize("text", [*TEXTS, "x" * 5000])
def test_text_event_bytes(text: str) -> None:
    c = speedups()
    kept: list[str] = []
    for item in (chunk({"content": text}), shaped(text)):
        assert c.text_event(item, None) == f"data: {text}\n\n".encode()
        assert c.text_event(item, kept.append) == f"data: {text}\n\n".encode()
    assert kept == [text, text]


@pytest.mark.parametrize("text", ["a\r", "\r", "é\r", "a\r\nb\r", "a\ud83d", "\ude00b", "é\udfff"])
def test_text_event_leaves_held_text_to_the_format(text: str) -> None:
    # A CR at the end may be half of a CRLF, a lone surrogate half of a pair: TextFormat
    # holds them back for the next delta.
    c = speedups()
    kept: list[str] = []
    item = chunk({"content": text})
    assert c.plain_text(item) == text
    assert c.text_event(item, kept.append) is None
    assert kept == []


@given(st.text(alphabet=st.sampled_from("ab\r\né日😀\x85\u2028 "), min_size=1, max_size=12))
def test_text_event_writes_what_encode_data_writes(text: str) -> None:
    c = speedups()
    expected = None if text.endswith("\r") else encode_data(text)
    assert c.text_event(chunk({"content": text}), None) == expected
    assert c.output_text_event(ns(type=DELTA, delta=text), None) == expected


def test_text_event_arguments() -> None:
    c = speedups()
    with pytest.raises(TypeError, match="2 arguments"):
        c.text_event(chunk({"content": "a"}))  # type: ignore[call-arg]

    def broken(text: str) -> None:
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        c.text_event(chunk({"content": "a"}), broken)


def parts(item: Any) -> list[Any]:
    """Every object the C code reads from ``item`` (to watch their reference counts)."""
    seen = [item, item.__dict__]
    for choice in item.__dict__.get("choices") or []:
        delta = choice.__dict__.get("delta")
        seen += [choice, choice.__dict__, delta]
        if delta is not None:
            seen += [delta.__dict__, *delta.__dict__.values()]
            extra = getattr(delta, "__pydantic_extra__", None)
            seen += [extra, *(extra.values() if isinstance(extra, dict) else [])]
    return seen


LEAK_CASES = {
    "plain": chunk({"content": "plain"}),
    "non-ascii": chunk({"content": "naïve 😀"}),
    "line-break": chunk({"content": "a\nb"}),
    "surrogate": chunk({"content": "a\ud83d"}),
    "usage": chunk({"content": "u"}, usage=USAGE),
    "finish": chunk({"content": "f"}, "stop"),
    "index": chunk({"content": "i"}, index=1),
    "refusal": chunk({"content": "r", "refusal": "no"}),
    "reasoning": chunk({"content": "x", "reasoning_content": "hmm"}),
    "null-reasoning": chunk({"content": "x", "reasoning_content": None, "reasoning": None}),
    "empty": chunk({"content": ""}),
    "no-choices": chunk(choices=[], usage=USAGE),
    "raising": shaped(tools=Bool(ValueError)),
    "non-dict-extras": shaped(extra=[1]),
}


@pytest.mark.parametrize("case", sorted(LEAK_CASES))
def test_no_reference_is_leaked_or_stolen(case: str) -> None:
    c = speedups()
    item = LEAK_CASES[case]
    watched = parts(item)
    kept: list[str] = []
    c.plain_text(item), c.text_event(item, kept.append)  # warm up (interning, caches)
    kept.clear()
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(1000):
        c.plain_text(item)
        c.text_event(item, None)
        c.text_event(item, kept.append)
    kept.clear()
    assert [sys.getrefcount(obj) for obj in watched] == before


class Fields:
    """An object whose fields live in its __dict__, as a pydantic model's do."""

    def __init__(self, **fields: Any) -> None:
        for name, value in fields.items():
            object.__setattr__(self, name, value)  # past any hook of a subclass


class Hooked(Fields):
    """Like a pydantic model: a __getattr__ for missing names only (C skips its hook)."""

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(name)


class Overridden(Fields):
    """A __getattribute__ of its own: C must go through it, as Python does."""

    def __getattribute__(self, name: str) -> Any:
        if name == "__dict__":
            return {**object.__getattribute__(self, "__dict__"), "content": "from the hook"}
        return object.__getattribute__(self, name)


class OwnDict(Fields):
    """A __dict__ property of its own: C must read it, as Python does."""

    @property  # type: ignore[misc]
    def __dict__(self) -> dict[str, Any]:  # type: ignore[override]
        return {"content": "from the property", "refusal": None, "tool_calls": None}


def built(cls: type[Fields], content: str = "x") -> Fields:
    delta = cls(content=content, refusal=None, tool_calls=None, __pydantic_extra__=None)
    choice = cls(index=0, delta=delta, finish_reason=None)
    return cls(choices=[choice], usage=None)


@pytest.mark.parametrize("cls", [Fields, Hooked, Overridden])
def test_attribute_hooks_are_honoured(cls: type[Fields]) -> None:
    c = speedups()
    item = built(cls)
    expected = "from the hook" if cls is Overridden else "x"
    assert c.plain_text(item) == PYTHON(item) == expected
    assert c.text_event(item, None) == f"data: {expected}\n\n".encode()


def test_a_dict_property_is_honoured() -> None:
    c = speedups()
    delta = OwnDict(content="x", refusal=None, tool_calls=None, __pydantic_extra__=None)
    item = ns(choices=[ns(index=0, delta=delta, finish_reason=None)], usage=None)
    assert c.plain_text(item) == PYTHON(item) == "from the property"


def test_a_class_changed_after_it_was_read() -> None:
    c = speedups()

    class Late(Hooked):
        pass

    item = built(Late)
    assert c.plain_text(item) == "x"
    Late.__getattribute__ = Overridden.__getattribute__  # type: ignore[method-assign]
    assert c.plain_text(item) == PYTHON(item) == "from the hook"
    del Late.__getattribute__
    assert c.plain_text(item) == PYTHON(item) == "x"


# Responses API events: output_text() and output_text_event().

DELTA = "response.output_text.delta"
KINDS = [DELTA, "response.output_text.done", "response.refusal.delta", "error", "", None, 3]


@given(
    kind=st.sampled_from(KINDS),
    delta=st.one_of(values, st.text(max_size=5)),
)
def test_output_text_is_the_python_version(kind: Any, delta: Any) -> None:
    c = speedups()
    event = ns(type=kind, delta=delta)
    assert c.output_text(event) == _responses._output_text_dict(event)


@pytest.mark.parametrize(
    "event",
    [None, "text", ns(), ns(type=DELTA), ns(delta="x"), ns(type=Text(DELTA), delta="x")],
)
def test_odd_events_are_declined(event: Any) -> None:
    c = speedups()
    assert c.output_text(event) is None
    assert c.output_text_event(event, None) is None


@pytest.mark.parametrize("text", [*TEXTS, "a\nb", "a\r", "a\ud83d"])
def test_output_text_event_bytes(text: str) -> None:
    c = speedups()
    [event] = [e for e in response_events([text]) if e.type == DELTA]
    kept: list[str] = []
    assert c.output_text(event) == text
    held = text.endswith("\r") or "\ud83d" in text  # TextFormat holds those back
    expected = None if held else encode_data(text)
    assert c.output_text_event(event, kept.append) == expected
    assert kept == ([] if held else [text])
    with pytest.raises(TypeError, match="2 arguments"):
        c.output_text_event(event)  # type: ignore[call-arg]


@pytest.mark.parametrize("text", ["plain", "naïve 😀", "a\nb", "a\ud83d"])
def test_no_reference_is_leaked_or_stolen_by_events(text: str) -> None:
    c = speedups()
    events = response_events([text])
    # Not None or numbers: shared, their counts move with whatever else runs.
    watched = [x for e in events for x in (e, e.__dict__, *e.__dict__.values())]
    watched = [x for x in watched if x is not None and not isinstance(x, int)]
    kept: list[str] = []
    before = [sys.getrefcount(obj) for obj in watched]
    for _ in range(1000):
        for event in events:
            c.output_text(event)
            c.output_text_event(event, None)
            c.output_text_event(event, kept.append)
    del event  # the loop's own reference
    kept.clear()
    assert [sys.getrefcount(obj) for obj in watched] == before


def test_what_they_decline_is_not_read_again(monkeypatch: pytest.MonkeyPatch) -> None:
    # TextFormat.chunk() and response_event() send what the C code declines (reasoning, a
    # finish reason, a CR that may be half of a CRLF, ...) straight to the slow path:
    # the Python check would decline it too.
    c = speedups()
    read: list[Any] = []

    def recording(item: Any) -> Any:
        read.append(item)
        return None

    from llmsse.formats import text as text_format

    monkeypatch.setattr(text_format, "text_event", c.text_event)
    monkeypatch.setattr(text_format, "output_text_event", c.output_text_event)
    monkeypatch.setattr(text_format, "plain_text", recording)
    monkeypatch.setattr(text_format, "output_text", recording)
    chunks = [
        chunk({"content": "a"}),
        chunk({"reasoning_content": "hm"}),
        chunk({"content": "b\r"}),
        chunk({"content": "\nc"}),
        chunk({}, "stop"),
    ]
    fmt = text_format.TextFormat()
    out = b"".join(fmt.chunk(item) for item in chunks) + fmt.finish()
    assert out.startswith(
        b"data: a\n\nevent: reasoning\ndata: hm\n\ndata: b\n\ndata: \ndata: c\n\n"
    )
    events = response_events(["a", "b\r", "\nc"])
    fmt = text_format.TextFormat()
    out = b"".join(fmt.response_event(event) for event in events)
    assert b"data: a\n\ndata: b\n\ndata: \ndata: c\n\n" in out
    assert read == []
