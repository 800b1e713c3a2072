"""llmsse: stream LLM output to frontends as Server-Sent Events."""

from llmsse.decoder import SSEDecoder, parse
from llmsse.event import ServerSentEvent
from llmsse.result import StreamResult, ToolCall

__version__ = "0.1.0.dev0"

__all__ = [
    "SSEDecoder",
    "ServerSentEvent",
    "StreamResult",
    "ToolCall",
    "__version__",
    "parse",
]
