"""The offline fake model's "brain": it picks a scripted reply from the conversation.

It is deliberately dumb and deterministic, so that the browser tests know the exact answer
to expect, and so that each reply shows one thing a streaming UI must handle: multi-line
text, a fenced code block, reasoning before the answer, a tool call, a long answer to stop,
an upstream failure halfway through.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["Reply", "ToolCallReply", "reply"]


@dataclass(frozen=True, slots=True)
class ToolCallReply:
    """A tool call the fake model makes: the function name and its JSON arguments."""

    name: str
    arguments: str
    id: str = "call_demo_1"


@dataclass(frozen=True, slots=True)
class Reply:
    """What the fake model streams for one turn.

    Attributes:
        text: The answer, streamed word by word (newlines kept inside the pieces).
        reasoning: Streamed first as ``reasoning_content`` deltas, if any.
        tool_call: A tool call streamed after the text, if any.
        fail: Fail with an API error (a mid-stream error event) right after the text.
    """

    text: str = ""
    reasoning: str = ""
    tool_call: ToolCallReply | None = None
    fail: bool = False

    @property
    def finish_reason(self) -> str:
        """The finish reason the fake model reports when it does not fail."""
        return "tool_calls" if self.tool_call is not None else "stop"


HELLO = (
    "Hello! I am the offline fake model of the llmsse demo.\n"
    "Every word you see arrived as its own Server-Sent Event, through the real `openai` SDK.\n"
    "\n"
    "Try one of these:\n"
    "- ask for some code\n"
    "- ask about the weather in Paris (a tool call)\n"
    "- ask me to think about something (reasoning events)\n"
    "- ask for a long story, then press Stop\n"
    "- ask me to fail (an error event)"
)

CODE = (
    "Here is a complete FastAPI endpoint that streams an answer:\n"
    "\n"
    "```python\n"
    "from fastapi import FastAPI\n"
    "from openai import AsyncOpenAI\n"
    "from llmsse.starlette import sse_response\n"
    "\n"
    "app = FastAPI()\n"
    "client = AsyncOpenAI()\n"
    "\n"
    '@app.post("/chat")\n'
    "async def chat(body: dict):\n"
    "    stream = await client.chat.completions.create(\n"
    '        model="gpt-4o-mini", messages=body["messages"], stream=True,\n'
    "    )\n"
    "    return sse_response(stream)\n"
    "```\n"
    "\n"
    "The page reads it with `fetch`; each text delta is an unnamed event,\n"
    "and the stream ends with a `done` event."
)

THINK_REASONING = (
    "The user wants to know why streaming matters. Users judge speed by the first token, "
    "not the last one. So the answer should be about perceived latency."
)

THINK = (
    "Because people read while the model writes.\n"
    "\n"
    "A full answer can take ten seconds; the first token takes a fraction of one.\n"
    "Streaming turns a blank wait into visible progress."
)

STORY = "\n\n".join(
    f"Chapter {n}. "
    + " ".join(
        [
            "The stream kept flowing, one event at a time, through proxies that had",
            "been told not to buffer and a browser that rendered every word.",
            "Nobody waited for the end to start reading.",
        ]
    )
    for n in range(1, 41)
)

FAIL = (
    "I will start answering, and then the upstream API will fail halfway through.\n"
    "Watch the error event arrive"
)

WEATHER_REASONING = "The user asks about the weather. I should call the get_weather tool."

_CITY = re.compile(r"\bin ([A-Z][\w-]*(?: [A-Z][\w-]*)*)")


def _last_user_text(messages: Sequence[Mapping[str, Any]]) -> str:
    for message in reversed(messages):
        if message.get("role") == "user":
            content = message.get("content")
            return content if isinstance(content, str) else ""
    return ""


def reply(messages: Sequence[Mapping[str, Any]]) -> Reply:
    """Pick the fake model's reply to a chat-completions ``messages`` list.

    Keywords in the last user message choose the reply: "code", "weather", "think"/"why",
    "story"/"long", "fail"/"error"; anything else gets a multi-line greeting.
    """
    prompt = _last_user_text(messages)
    lowered = prompt.lower()
    if "fail" in lowered or "error" in lowered:
        return Reply(text=FAIL, fail=True)
    if "weather" in lowered:
        match = _CITY.search(prompt)
        city = match.group(1) if match else "Paris"
        arguments = json.dumps({"city": city})
        return Reply(
            reasoning=WEATHER_REASONING,
            text="Let me check the weather.",
            tool_call=ToolCallReply(name="get_weather", arguments=arguments),
        )
    if "code" in lowered or "example" in lowered or "python" in lowered:
        return Reply(text=CODE)
    if "story" in lowered or "long" in lowered:
        return Reply(text=STORY)
    if "think" in lowered or "why" in lowered or "reason" in lowered:
        return Reply(reasoning=THINK_REASONING, text=THINK)
    return Reply(text=HELLO)
