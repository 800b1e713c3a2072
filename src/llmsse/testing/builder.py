"""One object that makes chunks and fake streams, for the ``chunk_builder`` fixture."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

from llmsse.testing.chunks import chunk_dicts, chunks, sse_body, tool_call
from llmsse.testing.sources import FakeAsyncStream, FakeStream

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionChunk

__all__ = ["ChunkBuilder"]


class ChunkBuilder:
    """Chunks and fake streams with a fresh completion id each time.

    Every method takes the keyword arguments of :func:`llmsse.testing.chunk_dicts`
    (``reasoning=``, ``tool_calls=``, ``usage=``, ``azure=`` ...)::

        def test_route(chunk_builder):
            stream = chunk_builder.stream("Hello\\nworld", usage=True, delay=0.01)

    Args:
        model: The model name of the chunks.
    """

    tool_call = staticmethod(tool_call)

    def __init__(self, model: str = "gpt-fake") -> None:
        self.model = model
        self._ids = itertools.count(1)

    def _options(self, options: dict[str, Any]) -> dict[str, Any]:
        options.setdefault("id", f"chatcmpl-fake{next(self._ids)}")
        options.setdefault("model", self.model)
        return options

    def dicts(self, content: Any = None, **options: Any) -> list[dict[str, Any]]:
        """The chunks as JSON objects (see :func:`llmsse.testing.chunk_dicts`)."""
        return chunk_dicts(content, **self._options(options))

    def chunks(self, content: Any = None, **options: Any) -> list[ChatCompletionChunk]:
        """The chunks as ``ChatCompletionChunk`` objects (see :func:`llmsse.testing.chunks`)."""
        return chunks(content, **self._options(options))

    def body(self, content: Any = None, **options: Any) -> bytes:
        """The bytes of the OpenAI streaming response for these chunks (``[DONE]`` last)."""
        return sse_body(self.dicts(content, **options))

    def stream(
        self,
        content: Any = None,
        *,
        delay: float = 0.0,
        first_delay: float | None = None,
        error: BaseException | None = None,
        error_after: int | None = None,
        **options: Any,
    ) -> FakeStream[ChatCompletionChunk]:
        """A :class:`llmsse.testing.FakeStream` of these chunks."""
        return FakeStream(
            self.chunks(content, **options),
            delay=delay,
            first_delay=first_delay,
            error=error,
            error_after=error_after,
        )

    def async_stream(
        self,
        content: Any = None,
        *,
        delay: float = 0.0,
        first_delay: float | None = None,
        error: BaseException | None = None,
        error_after: int | None = None,
        **options: Any,
    ) -> FakeAsyncStream[ChatCompletionChunk]:
        """A :class:`llmsse.testing.FakeAsyncStream` of these chunks."""
        return FakeAsyncStream(
            self.chunks(content, **options),
            delay=delay,
            first_delay=first_delay,
            error=error,
            error_after=error_after,
        )
