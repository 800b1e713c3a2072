"""llmsse: stream LLM output to frontends as Server-Sent Events."""

from llmsse._headers import sse_headers
from llmsse._responses import UpstreamError
from llmsse._sources import is_async_source
from llmsse.aio import aiter_sse
from llmsse.decoder import SSEDecoder, parse
from llmsse.event import ServerSentEvent
from llmsse.formats.base import Format
from llmsse.pipeline import iter_sse
from llmsse.result import StreamResult, ToolCall

__version__ = "0.1.0.dev0"

__all__ = [
    "Format",
    "SSEDecoder",
    "ServerSentEvent",
    "StreamResult",
    "ToolCall",
    "UpstreamError",
    "__version__",
    "aiter_sse",
    "is_async_source",
    "iter_sse",
    "parse",
    "sse_headers",
]
