"""Small builders of real SDK chunk objects for the core's own tests."""

from __future__ import annotations

from typing import Any

from openai.types.chat import ChatCompletionChunk


def chunk(
    delta: dict[str, Any] | None = None,
    finish: str | None = None,
    *,
    index: int | None = 0,
    choices: list[dict[str, Any]] | None = None,
    **fields: Any,
) -> ChatCompletionChunk:
    """A chunk built the way the SDK builds it (``construct``: no validation)."""
    if choices is None:
        choices = [
            {"index": index, "delta": delta if delta is not None else {}, "finish_reason": finish}
        ]
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "m"}
    body.update(fields)
    body["choices"] = choices
    return ChatCompletionChunk.construct(**body)


def usage_chunk(prompt: int = 5, completion: int = 7) -> ChatCompletionChunk:
    return chunk(
        choices=[],
        usage={
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    )


def answer(*pieces: str, finish: str = "stop", usage: bool = True) -> list[ChatCompletionChunk]:
    """Role chunk, one chunk per piece, finish chunk, then (optionally) the usage chunk."""
    out = [chunk({"role": "assistant", "content": ""})]
    out += [chunk({"content": p}) for p in pieces]
    out.append(chunk({}, finish))
    if usage:
        out.append(usage_chunk())
    return out
