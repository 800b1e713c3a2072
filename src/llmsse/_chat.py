"""Accumulating a chat-completion stream: what each chunk adds to the assistant message.

Works on the SDK's objects as they arrive unvalidated: ``choices``, ``delta`` and a tool
call's ``index`` may be ``None``, ``content`` may be a list of parts, provider fields
such as ``reasoning_content`` live in pydantic's extras.
"""

from __future__ import annotations

from typing import Any

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


def _reasoning_of(delta: Any) -> Any:
    # reasoning_content (DeepSeek, vLLM, SGLang) wins; reasoning (OpenRouter, newer vLLM)
    # only when it is absent: some servers fill both with the same text.
    extra = getattr(delta, "__pydantic_extra__", None)
    if extra is None:
        r = getattr(delta, "reasoning_content", None)
        return getattr(delta, "reasoning", None) if r is None else r
    if not extra:
        return None
    r = extra.get("reasoning_content")
    return extra.get("reasoning") if r is None else r


class ChatState:
    """The running assistant message of choice 0.

    :meth:`absorb` returns the text delta of a chunk (the common case, kept cheap);
    anything else a client should see (reasoning, refusal, completed tool calls) is
    appended to :attr:`pending` as ``(kind, value)`` in the order it arrived.
    """

    __slots__ = ("_calls", "_reasoning", "_refusal", "_text", "pending", "result")

    def __init__(self, result: StreamResult) -> None:
        self.result = result
        self.pending: list[tuple[str, Any]] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._calls: dict[int, ToolCall] = {}

    def absorb(self, chunk: Any) -> str | None:
        usage = getattr(chunk, "usage", None)
        if usage is not None:
            self.result.usage = to_plain(usage)
        choices = chunk.choices
        if not choices:
            return None
        text = None
        for choice in choices:
            if choice.index:  # n > 1: only choice 0 (an index of None counts as 0)
                continue
            delta = choice.delta
            if delta is not None:
                content = delta.content
                if content:
                    if content.__class__ is str:
                        text = content
                        self._text.append(content)
                    else:
                        text = self._content_parts(content)
                reasoning = _reasoning_of(delta)
                if reasoning and isinstance(reasoning, str):
                    self._reasoning.append(reasoning)
                    self.pending.append(("reasoning", reasoning))
                refusal = getattr(delta, "refusal", None)
                if refusal and isinstance(refusal, str):
                    self._refusal.append(refusal)
                    self.pending.append(("refusal", refusal))
                tool_calls = getattr(delta, "tool_calls", None)
                if tool_calls:
                    self._tool_fragments(tool_calls)
            finish = choice.finish_reason
            if finish is not None:
                self.result.finish_reason = finish
                self.flush_tool_calls()
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
            if function is not None:
                name = getattr(function, "name", None)
                if name:
                    call.name = name
                arguments = getattr(function, "arguments", None)
                if arguments:
                    call.arguments += arguments

    def flush_tool_calls(self) -> None:
        """Hand every assembled tool call to :attr:`pending` (at the finish reason or the end)."""
        if self._calls:
            calls = list(self._calls.values())
            self._calls.clear()
            self.result.tool_calls.extend(calls)
            self.pending.extend(("tool_call", call) for call in calls)

    def add_text(self, text: str) -> None:
        self._text.append(text)

    def settle(self) -> None:
        """Write the accumulated text into the result (once the stream is over)."""
        self.flush_tool_calls()
        self.pending.clear()
        result = self.result
        result.text = "".join(self._text)
        result.reasoning = "".join(self._reasoning)
        result.refusal = "".join(self._refusal)
