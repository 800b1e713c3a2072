"""The "openai" format's chunk templates write exactly what pydantic writes.

A template (llmsse/formats/_template.py) writes a chunk that repeats an earlier one except
for its text as constant pieces around that text. Whatever the chunks, the bytes must be
the serializer's: each test compares the format's output with ``to_json`` chunk by chunk.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk
from pydantic import BaseModel, ConfigDict

from llmsse.formats._template import Ineligible, chunk_template
from llmsse.formats.openai import OpenAIFormat, _chunk_json

OBFUSCATION_IS_A_FIELD = "obfuscation" in ChatCompletionChunk.model_fields
TO_JSON = ChatCompletionChunk.__pydantic_serializer__.to_json
BASE = {
    "id": "chatcmpl-1",
    "object": "chat.completion.chunk",
    "created": 1764064800,
    "model": "gpt-x",
    "service_tier": "default",
    "system_fingerprint": "fp_1",
}


def wire(
    content: Any = "Hi",
    *,
    delta: dict[str, Any] | None = None,
    finish_reason: Any = None,
    **top: Any,
) -> dict[str, Any]:
    """The JSON of a chunk as the API sends it, with ``usage: null`` and padding."""
    body: dict[str, Any] = {**BASE, "usage": None, "obfuscation": "pad", **top}
    choice = {"index": 0, "delta": {"content": content, **(delta or {})}, "logprobs": None}
    body.setdefault("choices", [{**choice, "finish_reason": finish_reason}])
    return {k: v for k, v in body.items() if v is not DROP}


DROP = object()


def built(data: dict[str, Any], how: str = "construct") -> ChatCompletionChunk:
    """A chunk made the way the SDK makes it (``construct``) or validated."""
    data = json.loads(json.dumps(data))  # fresh objects, as parsed from the wire
    if how == "validate":
        return ChatCompletionChunk.model_validate(data)
    return ChatCompletionChunk.construct(**data)


def expected(chunk: Any) -> bytes:
    return b"data: " + _chunk_json(chunk) + b"\n\n"


def encode_all(chunks: list[Any], **options: Any) -> tuple[OpenAIFormat, list[bytes]]:
    fmt = OpenAIFormat(**options)
    fmt.accumulate = False
    return fmt, [fmt.chunk(c) for c in chunks]


def without_templates(chunks: list[Any], **options: Any) -> list[bytes]:
    fmt = OpenAIFormat(**options)
    fmt.accumulate = False
    fmt._learn = lambda chunk: None  # type: ignore[method-assign]
    return [fmt.chunk(c) for c in chunks]


def test_a_plain_stream_is_written_from_a_template() -> None:
    pieces = ["Hello", ' "world"', "\n", "\\", "\x00\x1f\x7f", "é😀", "\u2028", "</script>"]
    stream = [built(wire(p, obfuscation=DROP)) for p in ["", *pieces * 5]]
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    # the role-less first chunk and the first text chunk were serialised, the rest templated
    assert fmt._template is not None
    assert fmt._misses <= 2


def test_the_obfuscation_padding_is_a_slot_of_its_own() -> None:
    stream = [built(wire(p, obfuscation=p[::-1] + "xyz")) for p in ["a", "bc", 'd"e', "f\ng"] * 4]
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    # a declared field in newer SDKs, one of pydantic's extras in older ones: both templated
    assert fmt._misses <= 2


@pytest.mark.parametrize("how", ["construct", "validate"])
def test_provider_extras_are_templated_in_their_order(how: str) -> None:
    # OpenRouter's shape: a provider at the top, native_finish_reason in the choice
    def openrouter(text: str, **top: Any) -> dict[str, Any]:
        choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
        choice |= {"logprobs": None, "native_finish_reason": None}
        return wire(text, choices=[choice], **{"provider": "OpenAI", "obfuscation": DROP, **top})

    stream = [built(openrouter(p), how) for p in ["a", "b", "c", "d", "e"]]
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    assert fmt._misses <= 2
    other = built(openrouter("i", provider="Other"), how)  # same keys, another value
    assert fmt.chunk(other) == expected(other)
    # the same extras in another order are written in that order
    swapped = built(openrouter("f"), how)
    extra = swapped.__pydantic_extra__
    assert extra is not None
    swapped.__pydantic_extra__ = {"usage_extra": None, **extra}
    again = built(openrouter("g", usage_extra=None), how)
    moved = built(openrouter("h"), how)
    assert moved.__pydantic_extra__ is not None
    moved.__pydantic_extra__ = {"other": "x", "provider": "OpenAI"}
    tail = [swapped, again, moved]
    _, out = encode_all(stream + tail)
    assert out == [expected(c) for c in stream + tail]


def test_vllm_reasoning_then_text_is_templated() -> None:
    def vllm(delta: dict[str, Any]) -> dict[str, Any]:
        body = {k: v for k, v in BASE.items() if k != "service_tier"}
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return {**body, "choices": [choice]}

    reasoning = [built(vllm({"reasoning_content": r, "content": None})) for r in "Let me see"]
    text = [built(vllm({"content": t})) for t in ["The", " answer", " is", " 4", "."]]
    stream = reasoning + text
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    assert fmt._misses <= 3  # the first chunk, the first text chunk (and no more)


@pytest.mark.parametrize(
    "odd",
    [
        {"created": 1764064800.0},  # equal to the template's int, written differently
        {"created": True, "id": 1},
        {"model": "gpt-y"},
        {"system_fingerprint": None},
        {"usage": DROP},
        {"service_tier": DROP},
        {"provider": "extra"},
        {"delta": {"refusal": None}},
        {"delta": {"reasoning_content": "hmm"}},
        {"delta": {"role": "assistant"}},
        {"delta": {"refusal": "no"}, "template": {"refusal": None}},
        {"delta": {"role": "user"}, "template": {"role": "assistant"}},
        {"content": None},
        {"content": 7},
        {"content": "\ud83d"},  # a lone surrogate: the fallback escapes it
        {"choices": []},
        # the same fields set as the template's choice, other values
        {
            "choices": [
                {"index": 1, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}
            ]
        },
        {
            "choices": [
                {"index": 0.0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": None}
            ]
        },
        {
            "choices": [
                {
                    "index": 0,
                    "delta": {"content": "x"},
                    "logprobs": None,
                    "finish_reason": None,
                    "native_finish_reason": None,
                }
            ]
        },
        {"choices": [{"index": 0, "delta": {"content": "x"}, "finish_reason": None}]},
        {
            "choices": [
                {"index": 0, "delta": {"content": "x"}, "logprobs": None, "finish_reason": "stop"}
            ]
        },
    ],
)
def test_a_chunk_unlike_the_template_is_written_by_the_serializer(odd: dict[str, Any]) -> None:
    delta = odd.pop("delta", None)
    content = odd.pop("content", "odd")
    like = odd.pop("template", None)
    stream = [built(wire(p, delta=like)) for p in ["a", "b", "c"]]
    stream.append(built(wire(content, delta=delta, **odd)))
    stream.append(built(wire("d", delta=like)))
    _, out = encode_all(stream)
    assert out == [expected(c) for c in stream]


def test_a_model_of_another_class_inside_the_chunk_is_a_miss() -> None:
    from openai.types.chat.chat_completion_chunk import ChoiceDelta

    class MyDelta(ChoiceDelta):
        pass

    stream = [built(wire(p, obfuscation=DROP)) for p in ["a", "b"]]
    choice = stream[1].choices[0]
    mine = MyDelta.construct(**choice.delta.model_dump(exclude_unset=True))
    odd = stream[1].model_copy(update={"choices": [choice.model_copy(update={"delta": mine})]})
    fmt, out = encode_all([*stream, odd])
    assert fmt._template is not None
    assert out == [expected(c) for c in [*stream, odd]]


def test_reasoning_beside_empty_content_is_templated() -> None:
    def deepseek(reasoning: str | None, content: str) -> ChatCompletionChunk:
        delta = {"reasoning_content": reasoning}
        return built(wire(content, delta=delta, obfuscation=DROP))

    stream = [deepseek(r, "") for r in ["We", " need", " to", " add"]]
    stream += [deepseek(None, t) for t in ["2", " +", " 2", " = 4"]]
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    assert fmt._misses <= 3  # the first chunk, the first of the answer's (and no more)


def test_a_value_whose_comparison_raises_is_a_miss() -> None:
    from decimal import Decimal

    stream = [built(wire(p)) for p in ["a", "b", "c"]]
    odd = built(wire("d"))
    odd.__dict__["created"] = Decimal("sNaN")  # == raises InvalidOperation
    fmt, out = encode_all([*stream, odd])
    assert fmt._template is not None
    assert out == [expected(c) for c in [*stream, odd]]


def test_an_extra_named_like_a_field_is_never_templated() -> None:
    def shadowed(text: str, model: str) -> ChatCompletionChunk:
        chunk = built(wire(text, obfuscation=DROP))
        chunk.__dict__["model"] = model
        object.__setattr__(chunk, "__pydantic_extra__", {"model": "e"})
        return chunk

    with pytest.raises(Ineligible):
        chunk_template(shadowed("a", "m"), TO_JSON, b"", b"")
    stream = [shadowed("a", "m"), shadowed("b", "m"), shadowed("c", "other")]
    _, out = encode_all(stream)
    assert out == [expected(c) for c in stream]


def test_a_class_with_a_custom_serializer_is_never_templated() -> None:
    from pydantic import field_serializer

    class Shouting(ChatCompletionChunk):
        @field_serializer("model")
        def _loud(self, value: str) -> str:
            return value.upper()

    Shouting.__module__ = "openai.types.shouting"  # the module alone is not trusted
    chunks = [Shouting.construct(**wire(t, obfuscation=DROP)) for t in ["a", "b", "c"]]
    to_json = Shouting.__pydantic_serializer__.to_json
    with pytest.raises(Ineligible):
        chunk_template(chunks[0], to_json, b"", b"")
    _, out = encode_all(chunks)
    assert out == [expected(c) for c in chunks]
    assert b'"model":"GPT-X"' in out[2]


def test_ids_and_retry_wrap_the_templated_json() -> None:
    stream = [built(wire(p)) for p in ["a", "b", "c", "d", "e"]]
    for options in ({"ids": True}, {"retry": 1000}, {"ids": True, "retry": 5}):
        _, out = encode_all(stream, **options)
        assert out == without_templates(stream, **options)


def test_only_the_sdk_s_own_classes_are_templated() -> None:
    class Delta(BaseModel):
        model_config = ConfigDict(extra="allow")
        content: str | None = None

        def model_post_init(self, context: Any) -> None:  # not a serializer, but ours
            pass

    class Choice(BaseModel):
        index: int = 0
        delta: Delta

    class Chunk(BaseModel):
        id: str
        choices: list[Choice]

    def mine(text: str) -> Chunk:
        return Chunk(id="x", choices=[Choice(delta=Delta(content=text))])

    with pytest.raises(Ineligible):
        chunk_template(mine("a"), Chunk.__pydantic_serializer__.to_json, b"", b"")
    stream = [mine(t) for t in ["a", "b", "c"]]
    fmt, out = encode_all(stream)
    assert fmt._template is None
    assert out == [expected(c) for c in stream]


def test_a_template_must_reproduce_its_own_chunk() -> None:
    chunk = built(wire("a", obfuscation=DROP))
    render = chunk_template(chunk, TO_JSON, b"", b"")
    assert render(chunk) == TO_JSON(chunk, exclude_unset=True, by_alias=True, warnings=False)
    calls = []

    def lying_after_the_first_call(obj: Any, **options: Any) -> bytes:
        # the sentinel copy is serialised first, the chunk itself (the check) second
        calls.append(obj)
        data = TO_JSON(obj, **options)
        return data.replace(b"gpt-x", b"gpt-z") if len(calls) > 1 else data

    with pytest.raises(ValueError, match="reproduce"):
        chunk_template(chunk, lying_after_the_first_call, b"", b"")


def test_a_chunk_that_spells_out_a_sentinel_is_not_a_template() -> None:
    # the sentinel must occur once in the JSON to be cut out
    stream = [built(wire(p, id="\x00llmsse slot 0\x00")) for p in ["a", "b", "c"]]
    with pytest.raises(ValueError, match="sentinel"):
        chunk_template(stream[0], TO_JSON, b"", b"")
    fmt, out = encode_all(stream)
    assert fmt._template is None
    assert out == [expected(c) for c in stream]


def test_shapes_that_never_repeat_build_few_templates() -> None:
    # every other chunk changes shape: each one misses, templates are rebuilt rarely
    stream = [
        built(wire(str(i), delta={"role": "assistant"} if i % 2 else None)) for i in range(200)
    ]
    fmt, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    assert fmt._builds <= 3 + fmt._misses // 8


# --- any stream ---------------------------------------------------------------------------

TEXT = st.text(max_size=8) | st.sampled_from(["\ud800", "\udfff", '"', "\\", "\x00", "\u2028"])
TOP_VARIANTS: list[dict[str, Any]] = [
    {},
    {},
    {"obfuscation": DROP},
    {"usage": DROP},
    {"created": 1764064800.0},
    {"model": "other"},
    {"provider": "p"},
    {"system_fingerprint": None},
    {"finish_reason": "length"},
]
DELTA_VARIANTS: list[dict[str, Any] | None] = [
    None,
    None,
    {"role": "assistant"},
    {"refusal": None},
    {"reasoning_content": "r"},
    {"tool_calls": [{"index": 0, "function": {"arguments": "{"}}]},
]


@st.composite
def streams(draw: st.DrawFn) -> list[ChatCompletionChunk]:
    how = draw(st.sampled_from(["construct", "validate"]))
    out = []
    top: dict[str, Any] = {}
    delta: dict[str, Any] | None = None
    for _ in range(draw(st.integers(1, 25))):
        if draw(st.integers(0, 3)) == 0:  # a change of shape, kept for the next chunks
            top = draw(st.sampled_from(TOP_VARIANTS))
            delta = draw(st.sampled_from(DELTA_VARIANTS))
        pad = draw(TEXT) if "obfuscation" not in top else DROP
        content = draw(TEXT | st.none())
        chosen = {"obfuscation": pad, **top}
        try:
            out.append(built(wire(content, delta=delta, **chosen), how))
        except (ValueError, UnicodeEncodeError):  # validation of an odd variant
            out.append(built(wire(content, delta=delta, **chosen)))
    return out


@settings(max_examples=150, deadline=None)
@given(streams())
def test_any_stream_is_written_as_the_serializer_writes_it(stream: list[Any]) -> None:
    _, out = encode_all(stream)
    assert out == [expected(c) for c in stream]
    _, out = encode_all(stream, ids=True)
    assert out == without_templates(stream, ids=True)
