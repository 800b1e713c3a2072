"""llmsse.testing.chunks: chunks shaped like the API's, as dicts, objects and bytes."""

from __future__ import annotations

import json

import openai
import pytest
from openai.types.chat import ChatCompletionChunk

import llmsse
from llmsse.testing import (
    azure_prompt_filter_chunk,
    chunk_dicts,
    chunks,
    split_pieces,
    sse_body,
    to_chunk,
    tool_call,
)


def test_split_pieces_keeps_every_character() -> None:
    text = "Hello  big\nworld \n\n"
    assert "".join(split_pieces(text)) == text
    assert split_pieces("Hello big world") == ["Hello", " big", " world"]
    assert split_pieces(["a", "b\n"]) == ["a", "b\n"]
    with pytest.raises(TypeError):
        split_pieces(["a", 1])  # type: ignore[list-item]


def test_text_stream_has_role_content_finish_in_order() -> None:
    out = chunk_dicts(["Hel", "lo"])
    assert [c["choices"][0]["delta"] for c in out] == [
        {"role": "assistant", "content": "", "refusal": None},
        {"content": "Hel"},
        {"content": "lo"},
        {},
    ]
    assert [c["choices"][0]["finish_reason"] for c in out] == [None, None, None, "stop"]
    assert {c["id"] for c in out} == {"chatcmpl-fake"}
    assert all(c["object"] == "chat.completion.chunk" for c in out)


def test_usage_chunk_comes_after_the_finish_chunk_with_no_choices() -> None:
    out = chunk_dicts("a b", usage={"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3})
    assert out[-2]["choices"][0]["finish_reason"] == "stop"
    assert out[-1]["choices"] == []
    assert out[-1]["usage"]["total_tokens"] == 3
    counted = chunk_dicts("a b", usage=True)[-1]["usage"]
    assert counted["completion_tokens"] == 2


def test_tool_calls_are_split_into_fragments_like_the_api() -> None:
    out = chunk_dicts(
        tool_calls=[
            tool_call("get_weather", {"city": "Paris"}, id="call_a", chunk_size=5),
            tool_call("get_time", '{"tz":"CET"}', pieces=['{"tz"', ':"CET"}']),
        ]
    )
    fragments = [c["choices"][0]["delta"]["tool_calls"][0] for c in out[1:-1]]
    assert fragments[0] == {
        "index": 0,
        "id": "call_a",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    later = [f for f in fragments[1:] if f["index"] == 0]
    assert all(
        set(f) == {"index", "function"} and set(f["function"]) == {"arguments"} for f in later
    )
    assert "".join(f["function"]["arguments"] for f in later) == '{"city":"Paris"}'
    second = [f for f in fragments if f["index"] == 1]
    assert second[0]["id"] == "call_1" and second[0]["function"]["name"] == "get_time"
    assert [f["function"]["arguments"] for f in second[1:]] == ['{"tz"', ':"CET"}']
    assert out[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_tool_call_pieces_must_join_to_the_arguments() -> None:
    with pytest.raises(ValueError, match="join"):
        tool_call("f", "{}", pieces=["{"])


def test_the_sdk_accumulator_rebuilds_the_message_from_the_objects() -> None:
    from openai.lib.streaming.chat import ChatCompletionStreamState

    state = ChatCompletionStreamState(
        input_tools=openai.NOT_GIVEN, response_format=openai.NOT_GIVEN
    )
    for chunk in chunks(
        "Let me check.", tool_calls=[tool_call("get_weather", {"city": "Paris"})], usage=True
    ):
        state.handle_chunk(chunk)
    completion = state.get_final_completion()
    message = completion.choices[0].message
    assert message.content == "Let me check."
    assert message.tool_calls is not None
    assert message.tool_calls[0].function.name == "get_weather"
    assert json.loads(message.tool_calls[0].function.arguments) == {"city": "Paris"}
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.usage is not None


@pytest.mark.parametrize("field", ["reasoning_content", "reasoning"])
def test_reasoning_deltas_are_extras_before_the_content(field: str) -> None:
    out = chunks("Answer", reasoning=["Thinking", " hard"], reasoning_field=field)  # type: ignore[arg-type]
    deltas = [c.choices[0].delta for c in out]
    assert [getattr(d, field, None) for d in deltas[1:3]] == ["Thinking", " hard"]
    assert deltas[1].model_extra == {field: "Thinking"}
    assert deltas[3].content == "Answer"


def test_refusal_deltas() -> None:
    out = chunks(refusal="I can't help with that.")
    assert "".join(c.choices[0].delta.refusal or "" for c in out) == "I can't help with that."
    assert out[-1].choices[0].finish_reason == "stop"


def test_other_choices_are_interleaved_with_their_own_index() -> None:
    out = chunk_dicts("a b", other_choices=["x y z"])
    indexes = [c["choices"][0]["index"] for c in out]
    assert indexes == [0, 1, 0, 1, 0, 1, 1, 0, 1]
    text1 = "".join(
        c["choices"][0]["delta"].get("content", "")
        for c in out
        if indexes and c["choices"][0]["index"] == 1
    )
    assert text1 == "x y z"


def test_azure_first_chunk_is_built_without_validation() -> None:
    out = chunks("Hi", azure=True)
    first = out[0]
    assert isinstance(first, ChatCompletionChunk)
    assert first.object == "" and first.id == "" and first.choices == []
    assert first.model_extra is not None and "prompt_filter_results" in first.model_extra
    assert chunk_dicts("Hi", azure=True)[0] == azure_prompt_filter_chunk()


def test_to_chunk_validates_what_is_valid() -> None:
    chunk = to_chunk(chunk_dicts("Hi")[1])
    assert chunk.choices[0].delta.content == "Hi"
    odd = to_chunk({**chunk_dicts("Hi")[-1], "object": ""})  # construct() path
    assert odd.object == ""


def test_cut_off_stream_has_no_finish_chunk() -> None:
    out = chunk_dicts("a b", finish=False)
    assert all(c["choices"][0]["finish_reason"] is None for c in out)


def test_sse_body_is_the_openai_wire_format() -> None:
    body = sse_body(chunk_dicts("Hi"))
    assert body.endswith(b"data: [DONE]\n\n")
    assert b"\r" not in body
    events = llmsse.parse(body)
    assert [json.loads(e.data or "")["choices"][0]["delta"] for e in events[:-1]][1] == {
        "content": "Hi"
    }
    assert sse_body(chunks("Hi"), done=False).count(b"data: ") == 3
