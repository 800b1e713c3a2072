"""Build chat-completion chunks the way the OpenAI API streams them.

Every builder exists twice: ``chunk_dicts(...)`` gives the JSON objects of the wire (what the
fake API sends) and ``chunks(...)`` gives real ``openai.types.chat.ChatCompletionChunk``
objects (what ``client.chat.completions.create(stream=True)`` yields). ``sse_body(...)`` turns
the dicts into the exact bytes of an OpenAI streaming response.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

__all__ = [
    "ToolCallSpec",
    "azure_prompt_filter_chunk",
    "chunk_dicts",
    "chunks",
    "split_pieces",
    "sse_body",
    "to_chunk",
    "tool_call",
]

ReasoningField = Literal["reasoning_content", "reasoning"]
Pieces = str | Sequence[str]

# A piece per word, whitespace attached to the word that follows it (" world"),
# the way a tokenizer's output usually looks; newlines stay inside the pieces.
_word = re.compile(r"\s*\S+|\s+")


def split_pieces(text: Pieces) -> list[str]:
    """Split ``text`` into streamed pieces: a ``str`` per word, a sequence as given.

    >>> split_pieces("Hello big\\nworld")
    ['Hello', ' big', '\\nworld']
    """
    if isinstance(text, str):
        return _word.findall(text)
    pieces = list(text)
    for piece in pieces:
        if not isinstance(piece, str):
            raise TypeError(f"pieces must be str, got {type(piece).__name__}: {piece!r}")
    return pieces


@dataclass(frozen=True, slots=True)
class ToolCallSpec:
    """A tool call to stream: its name, its JSON arguments and how they are split.

    Build it with :func:`tool_call`.

    Attributes:
        name: The function name.
        arguments: The complete arguments string (JSON).
        id: The call id (``call_...``); ``None`` makes one from the call's index.
        pieces: The argument fragments, in order; they join to ``arguments``.
    """

    name: str
    arguments: str
    id: str | None = None
    pieces: tuple[str, ...] = ()

    def fragments(self) -> list[str]:
        """The argument fragments streamed after the call's first (empty) fragment."""
        return list(self.pieces) if self.pieces else _split_arguments(self.arguments)


def _split_arguments(arguments: str, size: int = 8) -> list[str]:
    return [arguments[i : i + size] for i in range(0, len(arguments), size)]


def tool_call(
    name: str,
    arguments: str | Mapping[str, Any] = "{}",
    *,
    id: str | None = None,
    pieces: Sequence[str] | None = None,
    chunk_size: int = 8,
) -> ToolCallSpec:
    """Describe a tool call for :func:`chunks` and the fake API.

    Args:
        name: The function name.
        arguments: The arguments as a JSON string, or a mapping (dumped compactly).
        id: The call id; by default ``call_<index>`` with the call's index.
        pieces: The exact argument fragments (they must join to ``arguments``).
        chunk_size: Otherwise the arguments are cut into fragments of this many characters.
    """
    args = (
        arguments
        if isinstance(arguments, str)
        else json.dumps(arguments, separators=(",", ":"), ensure_ascii=False)
    )
    if pieces is not None:
        if "".join(pieces) != args:
            raise ValueError(
                f"tool_call pieces must join to the arguments: {''.join(pieces)!r} != {args!r}"
            )
        return ToolCallSpec(name, args, id, tuple(pieces))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    return ToolCallSpec(name, args, id, tuple(_split_arguments(args, chunk_size)))


def _as_tool_call(value: ToolCallSpec | tuple[str, Any]) -> ToolCallSpec:
    if isinstance(value, ToolCallSpec):
        return value
    if isinstance(value, tuple) and len(value) == 2:
        return tool_call(value[0], value[1])
    raise TypeError(
        f"tool_calls items must be tool_call(...) or (name, arguments) tuples, got {value!r}"
    )


def chunk_dicts(
    content: Pieces | None = None,
    *,
    reasoning: Pieces | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    refusal: Pieces | None = None,
    tool_calls: Iterable[ToolCallSpec | tuple[str, Any]] = (),
    other_choices: Sequence[Pieces] = (),
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | bool | None = None,
    azure: bool = False,
    id: str = "chatcmpl-fake",
    model: str = "gpt-fake",
    created: int = 1_700_000_000,
    role_chunk: bool = True,
    finish: bool = True,
) -> list[dict[str, Any]]:
    """The JSON objects of one streamed chat completion, in the order the API sends them.

    The stream is: an Azure prompt-filter chunk (if ``azure``), the role chunk
    (``{"role": "assistant", "content": "", "refusal": null}``), reasoning deltas, content
    deltas, refusal deltas, tool-call fragments (per call: a first fragment with ``id``,
    ``type``, ``function.name`` and ``arguments: ""``, then ``index`` + argument pieces
    only), the finish chunk (``delta: {}``) and, if ``usage`` is given, the usage chunk with
    ``choices: []`` after it.

    Args:
        content: The answer: a ``str`` (split per word) or the exact pieces.
        reasoning: Reasoning deltas, sent as ``delta.<reasoning_field>`` (an extra field).
        reasoning_field: ``"reasoning_content"`` (DeepSeek, vLLM) or ``"reasoning"`` (OpenRouter).
        refusal: Refusal deltas (``delta.refusal``).
        tool_calls: Calls from :func:`tool_call` (or ``(name, arguments)`` pairs); several
            are parallel calls with indexes 0, 1, ...
        other_choices: Answers for choices 1, 2, ... (``n > 1``); their chunks are
            interleaved with choice 0's, as the API does.
        finish_reason: By default ``"tool_calls"`` when there are tool calls, else ``"stop"``.
        usage: The usage object, or ``True`` for one counted from the pieces.
        azure: Start with Azure's empty chunk (``id: ""``, ``object: ""``, ``choices: []``,
            ``prompt_filter_results``).
        id: The completion id shared by every chunk.
        model: The model name in every chunk.
        created: The unix time in every chunk.
        role_chunk: Send the first chunk with the role.
        finish: Send the finish chunk (and the usage chunk); ``False`` for a cut-off stream.
    """
    calls = [_as_tool_call(c) for c in tool_calls]
    if finish_reason is None:
        finish_reason = "tool_calls" if calls else "stop"

    def chunk(choices: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        return {
            "id": id,
            "object": "chat.completion.chunk",
            "created": created,
            "model": model,
            "system_fingerprint": None,
            "choices": choices,
            **extra,
        }

    def choice(index: int, delta: dict[str, Any], reason: str | None = None) -> dict[str, Any]:
        return {"index": index, "delta": delta, "logprobs": None, "finish_reason": reason}

    # One list of deltas per choice; choice 0 carries reasoning, refusal and tool calls.
    per_choice: list[list[dict[str, Any]]] = []
    deltas: list[dict[str, Any]] = []
    if reasoning is not None:
        deltas += [{reasoning_field: piece} for piece in split_pieces(reasoning)]
    if content is not None:
        deltas += [{"content": piece} for piece in split_pieces(content)]
    if refusal is not None:
        deltas += [{"refusal": piece} for piece in split_pieces(refusal)]
    for index, call in enumerate(calls):
        first = {
            "index": index,
            "id": call.id if call.id is not None else f"call_{index}",
            "type": "function",
            "function": {"name": call.name, "arguments": ""},
        }
        deltas.append({"tool_calls": [first]})
        deltas += [
            {"tool_calls": [{"index": index, "function": {"arguments": piece}}]}
            for piece in call.fragments()
        ]
    per_choice.append(deltas)
    for other in other_choices:
        per_choice.append([{"content": piece} for piece in split_pieces(other)])

    out: list[dict[str, Any]] = []
    if azure:
        out.append(azure_prompt_filter_chunk())
    if role_chunk:
        for index in range(len(per_choice)):
            role = {"role": "assistant", "content": "", "refusal": None}
            out.append(chunk([choice(index, role)]))
    longest = max(len(d) for d in per_choice)
    for step in range(longest):
        for index, choice_deltas in enumerate(per_choice):
            if step < len(choice_deltas):
                out.append(chunk([choice(index, choice_deltas[step])]))
    if finish:
        for index in range(len(per_choice)):
            out.append(chunk([choice(index, {}, finish_reason)]))
        if usage is not None and usage is not False:
            if usage is True:
                completion = sum(len(d) for d in per_choice)
                usage = {
                    "prompt_tokens": 10,
                    "completion_tokens": completion,
                    "total_tokens": 10 + completion,
                }
            out.append(chunk([], usage=dict(usage)))
    return out


def azure_prompt_filter_chunk() -> dict[str, Any]:
    """Azure OpenAI's first chunk: empty id, model and object, no choices, filter results."""
    return {
        "id": "",
        "object": "",
        "created": 0,
        "model": "",
        "choices": [],
        "prompt_filter_results": [
            {
                "prompt_index": 0,
                "content_filter_results": {
                    category: {"filtered": False, "severity": "safe"}
                    for category in ("hate", "self_harm", "sexual", "violence")
                },
            }
        ],
    }


def to_chunk(data: Mapping[str, Any]) -> ChatCompletionChunk:
    """Make a real ``ChatCompletionChunk`` from its JSON object, as the SDK does.

    Valid chunks are validated (``model_validate``); provider quirks the schema rejects
    (Azure's ``object: ""``, an unknown ``finish_reason``) are built without validation
    (``construct``), which is what the SDK itself does with what it receives.
    """
    from openai.types.chat import ChatCompletionChunk
    from pydantic import ValidationError

    try:
        return ChatCompletionChunk.model_validate(dict(data))
    except ValidationError:
        return ChatCompletionChunk.construct(**dict(data))


def chunks(
    content: Pieces | None = None,
    *,
    reasoning: Pieces | None = None,
    reasoning_field: ReasoningField = "reasoning_content",
    refusal: Pieces | None = None,
    tool_calls: Iterable[ToolCallSpec | tuple[str, Any]] = (),
    other_choices: Sequence[Pieces] = (),
    finish_reason: str | None = None,
    usage: Mapping[str, Any] | bool | None = None,
    azure: bool = False,
    id: str = "chatcmpl-fake",
    model: str = "gpt-fake",
    created: int = 1_700_000_000,
    role_chunk: bool = True,
    finish: bool = True,
) -> list[ChatCompletionChunk]:
    """Real ``ChatCompletionChunk`` objects of one streamed completion.

    Same arguments and order as :func:`chunk_dicts`; reasoning deltas are extras
    (``chunk.choices[0].delta.reasoning_content``, also in ``model_extra``).
    """
    return [
        to_chunk(d)
        for d in chunk_dicts(
            content,
            reasoning=reasoning,
            reasoning_field=reasoning_field,
            refusal=refusal,
            tool_calls=tool_calls,
            other_choices=other_choices,
            finish_reason=finish_reason,
            usage=usage,
            azure=azure,
            id=id,
            model=model,
            created=created,
            role_chunk=role_chunk,
            finish=finish,
        )
    ]


def sse_body(
    items: Iterable[Mapping[str, Any] | ChatCompletionChunk], *, done: bool = True
) -> bytes:
    """The bytes of an OpenAI streaming response: ``data: <json>`` per chunk, ``data: [DONE]``.

    Accepts chunk dicts or ``ChatCompletionChunk`` objects (dumped with the fields they set).
    """
    out = []
    for item in items:
        data = item if isinstance(item, Mapping) else item.to_dict()
        out.append(b"data: " + json.dumps(data, separators=(",", ":")).encode() + b"\n\n")
    if done:
        out.append(b"data: [DONE]\n\n")
    return b"".join(out)
