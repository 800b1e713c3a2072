"""Test kit for llmsse users: fakes of the openai SDK's streams, builders of chat chunks
and Responses API events, an offline fake of the OpenAI chat-completions API (over an HTTP
transport or a real local server), readers of SSE responses and assertions that catch
broken streams.

The pytest plugin (``llmsse.testing.plugin``, registered automatically) turns these into
fixtures: ``fake_openai``, ``fake_chat_server``, ``chunk_builder``. Nothing here is imported
by ``import llmsse``.
"""

from llmsse.testing.assertions import assert_sse_response, assert_valid_sse, sse_problems
from llmsse.testing.builder import ChunkBuilder
from llmsse.testing.chunks import (
    ToolCallSpec,
    azure_prompt_filter_chunk,
    chunk_dicts,
    chunks,
    split_pieces,
    sse_body,
    to_chunk,
    tool_call,
)
from llmsse.testing.errors import api_connection_error, api_error, api_status_error
from llmsse.testing.fake_api import (
    FakeOpenAI,
    FakeTransport,
    RecordedRequest,
    Reply,
    Responder,
    StreamError,
    echo,
    http_error,
)
from llmsse.testing.read import (
    OpenAIStreamReply,
    ResponsesStreamReply,
    TextStreamReply,
    aread_body,
    read_body,
    read_events,
    read_openai_stream,
    read_responses_stream,
    read_text_stream,
)
from llmsse.testing.read_ui import (
    AGUIStreamReply,
    AISDKStreamReply,
    StreamToolCall,
    read_ag_ui_stream,
    read_ai_sdk_stream,
)
from llmsse.testing.responses import (
    ResponseEnd,
    response_event_dicts,
    response_events,
    responses_sse_body,
    to_response_event,
)
from llmsse.testing.server import FakeChatServer
from llmsse.testing.sources import FakeAsyncStream, FakeStream

__all__ = [
    "AGUIStreamReply",
    "AISDKStreamReply",
    "ChunkBuilder",
    "FakeAsyncStream",
    "FakeChatServer",
    "FakeOpenAI",
    "FakeStream",
    "FakeTransport",
    "OpenAIStreamReply",
    "RecordedRequest",
    "Reply",
    "Responder",
    "ResponseEnd",
    "ResponsesStreamReply",
    "StreamError",
    "StreamToolCall",
    "TextStreamReply",
    "ToolCallSpec",
    "api_connection_error",
    "api_error",
    "api_status_error",
    "aread_body",
    "assert_sse_response",
    "assert_valid_sse",
    "azure_prompt_filter_chunk",
    "chunk_dicts",
    "chunks",
    "echo",
    "http_error",
    "read_ag_ui_stream",
    "read_ai_sdk_stream",
    "read_body",
    "read_events",
    "read_openai_stream",
    "read_responses_stream",
    "read_text_stream",
    "response_event_dicts",
    "response_events",
    "responses_sse_body",
    "split_pieces",
    "sse_body",
    "sse_problems",
    "to_chunk",
    "to_response_event",
    "tool_call",
]
