"""Shorthands over llmsse.testing's builders for the core's own tests."""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st
from openai.types.chat import ChatCompletionChunk

from llmsse.testing import chunks, to_chunk, tool_call

USAGE = {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12}


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int | None = 0,
    choices: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> ChatCompletionChunk:
    """One chunk with one choice (or the given ``choices``), built as the SDK builds it."""
    if choices is None:
        choices = [{"index": index, "delta": delta or {}, "finish_reason": finish}]
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    return to_chunk({**body, **fields, "choices": choices})


def fragment(index: int | None, args: str | None = None, **fields: Any) -> ChatCompletionChunk:
    """A chunk with one tool-call fragment: ``index``, its ``args`` piece, and ``id`` /
    ``name`` when given."""
    call: dict[str, Any] = {"index": index, **fields}
    function: dict[str, Any] = {}
    if "name" in fields:
        function["name"] = call.pop("name")
    if args is not None:
        function["arguments"] = args
    if function:
        call["function"] = function
    return chunk({"tool_calls": [call]})


def usage_chunk(prompt: int = 5, completion: int = 7) -> ChatCompletionChunk:
    usage = {"prompt_tokens": prompt, "completion_tokens": completion}
    return chunk(choices=[], usage={**usage, "total_tokens": prompt + completion})


def answer(*pieces: str, finish: str = "stop", usage: bool = True) -> list[ChatCompletionChunk]:
    """Role chunk, one chunk per piece, finish chunk, then (optionally) the usage chunk."""
    return chunks(list(pieces), finish_reason=finish, usage=USAGE if usage else None)


def weather_example(*, azure: bool = True) -> list[ChatCompletionChunk]:
    """The input of PROTOCOLS.md §6's examples: (Azure's empty first chunk,) a role chunk with
    ``content: ""``, reasoning, two text deltas, a streamed tool call, finish, usage."""
    return chunks(
        ["Checking ", "Paris…\n"],
        reasoning=["Need weather."],
        tool_calls=[
            tool_call(
                "get_weather", '{"city":"Paris"}', id="call_1", pieces=['{"city":', '"Paris"}']
            )
        ],
        finish_reason="tool_calls",
        usage={"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21},
        azure=azure,
    )


def js_string(text: str) -> str:
    """``text`` as a JavaScript client holds it: surrogate halves sent one by one (as
    ASCII escapes) joined into the character."""
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


#: A text delta for property tests: any UTF-8 text, or a piece that breaks naive framing.
PIECE = st.text(st.characters(codec="utf-8"), max_size=12) | st.sampled_from(
    ["\n", "\r\n", "\r", "\n\n", "data: x", '"', "\\", "\u2028", "\x00", ":", " "]
)
