"""Accumulating a chat-completion stream: what each chunk adds to the assistant message.

Works on the SDK's objects as they arrive unvalidated: ``choices``, ``delta`` and a tool
call's ``index`` may be ``None``, ``content`` may be a list of parts, provider fields
such as ``reasoning_content`` live in pydantic's extras.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Any

from llmsse._json import dumps
from llmsse.result import StreamResult, ToolCall

__all__ = ["ChatState", "to_plain"]


def to_plain(obj: Any) -> Any:
    """A JSON-ready view of an SDK object (pydantic model, dict, or plain object)."""
    if obj is None or isinstance(obj, (str, int, float, bool, list, dict)):
        return obj
    dump = getattr(obj, "model_dump", None)
    if dump is not None:
        return dump(mode="json", exclude_unset=True, warnings=False)
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


def reasoning_of(extra: dict[str, Any] | None) -> Any:
    """The reasoning a delta's provider extras carry (``None`` or a falsy value: none)."""
    # reasoning_content (DeepSeek, vLLM, SGLang) wins; reasoning (OpenRouter, newer
    # vLLM) only when it is absent: some servers fill both with the same text.
    if not extra:
        return None
    reasoning = extra.get("reasoning_content")
    return extra.get("reasoning") if reasoning is None else reasoning


# Python 3.12 and later specialise attribute reads on the SDK's pydantic models: a field
# read costs about what a plain attribute's does, while ``__dict__`` (never specialised)
# costs twice that. On 3.10 and 3.11 every attribute read on a model goes through
# ``BaseModel.__getattr__``'s slow hook, so there the hot paths read each object's
# ``__dict__`` once and the fields from it. Measured in benchmarks/README.md.
ATTRS = sys.version_info >= (3, 12)


def _plain_text_attrs(chunk: Any) -> str | None:
    """:data:`plain_text` reading fields as attributes (the faster on Python 3.12+)."""
    try:
        choice = chunk.choices[0]
        if chunk.usage is None and not choice.index and choice.finish_reason is None:
            delta = choice.delta
            text = delta.content
            if (
                text
                and type(text) is str
                and not (
                    delta.refusal
                    or delta.tool_calls
                    or (delta.__pydantic_extra__ and reasoning_of(delta.__pydantic_extra__))
                )
            ):
                return text
    except Exception:  # IndexError: no choices; AttributeError: not an SDK object
        pass
    return None


def _plain_text_dict(chunk: Any) -> str | None:
    """:data:`plain_text` reading fields from ``__dict__`` (the faster on 3.10 and 3.11)."""
    try:
        fields = chunk.__dict__
        choice = fields["choices"][0]
        if fields["usage"] is None:
            fields = choice.__dict__
            if not fields["index"] and fields["finish_reason"] is None:
                delta = fields["delta"]
                fields = delta.__dict__
                text = fields["content"]
                if (
                    text
                    and type(text) is str
                    and not (
                        fields["refusal"]
                        or fields["tool_calls"]
                        or (delta.__pydantic_extra__ and reasoning_of(delta.__pydantic_extra__))
                    )
                ):
                    return text
    except Exception:  # IndexError: no choices; AttributeError: not an SDK object
        pass
    return None


# plain_text(chunk): the text of a chunk that carries nothing but text for choice 0, else
# None. The hot path of every format: nearly all chunks of a stream are such chunks. None
# (usage, a finish reason, reasoning, tool calls, another SDK's objects) means: use
# ChatState.absorb(), which handles every case. Provider extras without reasoning in them
# (Qwen, SGLang and vLLM send "reasoning_content": null beside every piece of the answer)
# are no reason to decline: absorb() would show nothing of them either. pipeline._direct
# inlines both forms: keep the three in step. Only choices[0] is read (no len(): it costs
# as much as the rest of the check): the API sends at most one entry per choice index in
# a chunk, so when that entry is choice 0's plain text, any other entry is another
# choice's, which the slow path would not show either. (Not `[choice] = choices`: that
# uses up an iterator.)
plain_text: Callable[[Any], str | None] = _plain_text_attrs if ATTRS else _plain_text_dict

# text_event(chunk, add_text): the text format's event for a chunk that plain_text()
# accepts (after add_text(text) unless it is None), else None: also when the text ends
# with a CR (maybe half of a CRLF) or has a lone surrogate, which TextFormat holds back.
# None itself when the C speedups are not there. The pipelines and TextFormat try it first.
text_event: Callable[[Any, Callable[[str], object] | None], bytes | None] | None = None

# The C speedups (src/llmsse/_speedups.c, built at install time when a C compiler is
# there): the same checks and bytes as plain_text() and TextFormat's framing of it, at
# about half the time of the pure-Python loop on 3.11 (benchmarks/README.md).
# LLMSSE_NO_SPEEDUPS=1 turns them off; _responses takes its versions from here too.
SPEEDUPS = False
if not os.environ.get("LLMSSE_NO_SPEEDUPS"):
    try:
        from llmsse import _speedups
    except ImportError:
        pass
    else:
        plain_text = _speedups.plain_text
        text_event = _speedups.text_event
        SPEEDUPS = True


class ChatState:
    """The running assistant message of choice 0.

    :meth:`absorb` returns the text delta of a chunk (the common case, kept cheap);
    anything else a client should see (reasoning, refusal, completed tool calls) is
    appended to :attr:`pending` as ``(kind, value)`` in the order it arrived.

    With :attr:`stream_tools` set, a tool call is also announced as it streams:
    ``("tool_start", call)`` once its id and name are known, then ``("tool_args",
    (call, fragment))`` per piece of its arguments (those that came earlier first).
    """

    __slots__ = (
        "_calls",
        "_reasoning",
        "_refusal",
        "_started",
        "_text",
        "add_text",
        "pending",
        "result",
        "stream_tools",
    )

    def __init__(self, result: StreamResult) -> None:
        self.result = result
        self.pending: list[tuple[str, Any]] = []
        self._text: list[str] = []
        #: Record a piece of answer text (a bound ``list.append``: called per chunk).
        self.add_text = self._text.append
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, ToolCall] = {}
        #: Whether tool calls are announced while they stream (see the class docstring).
        self.stream_tools = False
        self._started: set[int] = set()  # indexes of the calls announced so far

    def absorb(self, chunk: Any) -> str | None:
        """Record what ``chunk`` adds; return its text delta for choice 0 (or ``None``)."""
        # The openai SDK's objects are pydantic models whose attribute access goes
        # through BaseModel.__getattr__'s slow hook; their fields all sit in __dict__.
        # Only reading happens inside the try: a chunk of another shape is read again,
        # attribute by attribute, and nothing can have been recorded twice.
        delta = finish = reasoning = None
        try:
            fields = chunk.__dict__
            usage = fields["usage"]
            for choice in fields["choices"] or ():
                fields = choice.__dict__
                if not fields["index"]:  # n > 1: only choice 0 (an index of None counts as 0)
                    delta = fields["delta"]
                    finish = fields["finish_reason"]
                    break
            if delta is not None:
                fields = delta.__dict__
                content = fields["content"]
                refusal = fields["refusal"]
                tool_calls = fields["tool_calls"]
                reasoning = reasoning_of(delta.__pydantic_extra__)
        except (AttributeError, KeyError, TypeError):
            return self._absorb_any(chunk)
        text = None
        if delta is not None:
            text = self._delta(content, refusal, tool_calls, reasoning)
        return self._end_chunk(text, finish, usage)

    def _absorb_any(self, chunk: Any) -> str | None:
        # Chunk objects of other SDKs: any attribute may be missing, but not `choices`.
        # Without it the item is no chunk (a str or an event in a mixed source): the
        # TypeError sends the pipelines to the feeder of its kind instead of dropping it.
        if not hasattr(chunk, "choices"):
            raise TypeError(f"not a chat-completion chunk: {type(chunk).__name__}")
        text = finish = None
        for choice in chunk.choices or ():
            if getattr(choice, "index", None):
                continue
            finish = getattr(choice, "finish_reason", None)
            delta = getattr(choice, "delta", None)
            if delta is not None:
                reasoning = getattr(delta, "reasoning_content", None)
                if reasoning is None:
                    reasoning = getattr(delta, "reasoning", None)
                text = self._delta(
                    getattr(delta, "content", None),
                    getattr(delta, "refusal", None),
                    getattr(delta, "tool_calls", None),
                    reasoning,
                )
            break
        return self._end_chunk(text, finish, getattr(chunk, "usage", None))

    def _end_chunk(self, text: str | None, finish: Any, usage: Any) -> str | None:
        if finish is not None:
            self.result.finish_reason = finish
            self.flush_tool_calls()
        if usage is not None:
            self.result.usage = to_plain(usage)
        return text

    def _delta(self, content: Any, refusal: Any, tool_calls: Any, reasoning: Any) -> str | None:
        """Record a delta that carries more than plain text (the less common path)."""
        if reasoning and isinstance(reasoning, str):
            self._reasoning.append(reasoning)
            self.pending.append(("reasoning", reasoning))
        text = None
        if content:
            if isinstance(content, str):
                text = content
                self._text.append(content)
            else:
                text = self._content_parts(content)
        if refusal and isinstance(refusal, str):
            self._refusal.append(refusal)
            self.pending.append(("refusal", refusal))
        if tool_calls:
            self._tool_fragments(tool_calls)
        return text

    def _content_parts(self, content: Any) -> str | None:
        # Some servers (Mistral) stream content as a list of typed parts.
        if not isinstance(content, list):
            return None
        texts: list[str] = []
        for part in content:
            part = to_plain(part)
            if not isinstance(part, dict):
                continue
            kind = part.get("type")
            if kind == "text" and isinstance(part.get("text"), str):
                texts.append(part["text"])
            elif kind == "thinking":
                thinking = part.get("thinking")
                if isinstance(thinking, list):
                    thinking = "".join(p.get("text", "") for p in thinking if isinstance(p, dict))
                if isinstance(thinking, str) and thinking:
                    self._reasoning.append(thinking)
                    self.pending.append(("reasoning", thinking))
        text = "".join(texts)
        if text:
            self._text.append(text)
        return text or None

    def _tool_fragments(self, fragments: Any) -> None:
        calls = self._calls
        for fragment in fragments:
            index = getattr(fragment, "index", None)
            frag_id = getattr(fragment, "id", None)
            if index is None:
                # Gemini omits the index: a new id means a new call.
                last = next(reversed(calls.values()), None) if calls else None
                if last is None or (frag_id and last.id and frag_id != last.id):
                    index = len(calls)
                else:
                    index = last.index
            call = calls.get(index)
            if call is None:
                call = calls[index] = ToolCall(index=index)
            if frag_id:
                call.id = frag_id
            function = getattr(fragment, "function", None)
            arguments = None
            if function is not None:
                name = getattr(function, "name", None)
                if name:
                    call.name = name
                arguments = getattr(function, "arguments", None)
                if arguments:
                    # Some servers send the arguments as an object, not a JSON string.
                    if not isinstance(arguments, str):
                        arguments = dumps(arguments).decode()
                    call.arguments += arguments
            if self.stream_tools:
                self._announce(call, arguments)

    def _announce(self, call: ToolCall, arguments: str | None) -> None:
        # A client can only show a call once it has an id and a name; argument
        # fragments that came before them are sent in one piece at the start.
        if call.index in self._started:
            if arguments:
                self.pending.append(("tool_args", (call, arguments)))
        elif call.id and call.name:
            self._started.add(call.index)
            self.pending.append(("tool_start", call))
            if call.arguments:
                self.pending.append(("tool_args", (call, call.arguments)))

    # --- recording from sources that are not chunks (the Responses API) ---------------

    def add_reasoning(self, text: str) -> None:
        """Record a piece of reasoning text and hand it to :attr:`pending`."""
        self._reasoning.append(text)
        self.pending.append(("reasoning", text))

    def add_refusal(self, text: str) -> None:
        """Record a piece of refusal text and hand it to :attr:`pending`."""
        self._refusal.append(text)
        self.pending.append(("refusal", text))

    def add_tool_call(self, index: int, id: str | None, name: str | None) -> ToolCall:
        """Start (or complete the id and name of) the tool call ``index``."""
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ToolCall(index=index)
        if id:
            call.id = id
        if name:
            call.name = name
        if self.stream_tools:
            self._announce(call, None)
        return call

    def add_arguments(self, index: int, fragment: str) -> None:
        """Append a fragment of the arguments of the tool call ``index``."""
        call = self._calls.get(index)
        if call is None:
            call = self._calls[index] = ToolCall(index=index)
        call.arguments += fragment
        if self.stream_tools:
            self._announce(call, fragment)

    def end_tool_call(self, index: int) -> None:
        """Hand the tool call ``index`` to :attr:`pending` as complete (if still open)."""
        call = self._calls.pop(index, None)
        if call is not None:
            self._started.discard(index)
            self.result.tool_calls.append(call)
            self.pending.append(("tool_call", call))

    def flush_tool_calls(self) -> None:
        """Hand every assembled tool call to :attr:`pending` (at the finish reason or the end)."""
        if self._calls:
            calls = list(self._calls.values())
            self._calls.clear()
            self._started.clear()
            self.result.tool_calls.extend(calls)
            self.pending.extend(("tool_call", call) for call in calls)

    def settle(self) -> None:
        """Write the accumulated text into the result (once the stream is over)."""
        self.flush_tool_calls()
        self.pending.clear()
        result = self.result
        result.text = "".join(self._text)
        result.reasoning = "".join(self._reasoning)
        result.refusal = "".join(self._refusal)
