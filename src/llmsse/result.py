"""What a finished stream hands to ``on_complete``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Outcome", "StreamResult", "ToolCall"]

Outcome = Literal["finished", "failed", "disconnected"]


@dataclass(slots=True)
class ToolCall:
    """One tool call assembled from its streamed fragments."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The JSON object sent in the "text" format's ``tool_call`` event."""
        return {"index": self.index, "id": self.id, "name": self.name, "arguments": self.arguments}


@dataclass(slots=True)
class StreamResult:
    """The assistant message accumulated from a stream, and how the stream ended.

    Passed once to ``on_complete`` on every way out of a stream. Text, reasoning,
    refusal and tool calls are those of choice 0 (the only one when ``n == 1``).

    Attributes:
        text: The answer text as the model produced it.
        reasoning: Reasoning text (``reasoning_content`` / ``reasoning`` deltas; from the
            Responses API, reasoning summary parts joined by a blank line).
        refusal: Refusal text, if the model refused.
        tool_calls: Tool calls in the order they started (from the Responses API, the
            call's ``id`` is the item's ``call_id``).
        finish_reason: The upstream finish reason (``"stop"``, ``"tool_calls"``, ...), if any.
        usage: The usage object as a dict (from the final usage chunk), if any. Responses
            API usage comes under the Chat Completions names: ``input_tokens`` as
            ``prompt_tokens``, ``output_tokens`` as ``completion_tokens``, and their
            ``*_details`` likewise.
        outcome: ``"finished"`` (upstream ended), ``"failed"`` (upstream raised) or
            ``"disconnected"`` (the consumer stopped reading: client gone, cancelled).
        error: The exception when ``outcome == "failed"``.
    """

    text: str = ""
    reasoning: str = ""
    refusal: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    finish_reason: str | None = None
    usage: dict[str, Any] | None = None
    outcome: Outcome = "finished"
    error: BaseException | None = None
