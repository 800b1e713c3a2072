"""What every framework's demo app shares: the model, the request checks, the stream options.

The framework modules (``starlette_app``, ``flask_app``, ``django_app``) only route requests
here and hand the source to their framework's ``sse_response``.
"""

from __future__ import annotations

import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from llmsse.result import StreamResult

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI
    from openai.types.chat import ChatCompletionChunk

    from llmsse.testing import FakeChatServer

__all__ = ["Asset", "BadRequest", "DemoConfig", "DemoService", "load_asset"]

SYSTEM_PROMPT = (
    "You are the assistant of the llmsse demo page. Answer briefly; use Markdown code fences "
    "for code. Call get_weather when asked about the weather."
)

WEATHER_TOOL: dict[str, Any] = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}

MAX_MESSAGES = 50
MAX_CHARS = 20_000


class BadRequest(ValueError):
    """The page sent something the demo cannot use (answered with HTTP 400)."""


@dataclass(frozen=True, slots=True)
class DemoConfig:
    """How the demo reaches a model.

    Attributes:
        model: The model name sent to the API.
        api_key: ``None`` for the offline fake model.
        base_url: An OpenAI-compatible API's base URL (``None``: the SDK's default).
        delay: Seconds between two pieces of the offline fake model.
        heartbeat: Seconds of silence before a ``: ping`` comment.
    """

    model: str = "llmsse-fake"
    api_key: str | None = None
    base_url: str | None = None
    delay: float = 0.03
    heartbeat: float = 5.0

    @property
    def offline(self) -> bool:
        """True when the demo streams from the offline fake model."""
        return self.api_key is None


@dataclass(frozen=True, slots=True)
class Asset:
    """A static file of the page: its bytes and its content type."""

    body: bytes
    content_type: str


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}

#: URL path -> file name in ``llmsse/demo/static``.
PAGES = {"/": "index.html", "/eventsource": "eventsource.html"}
STATIC = ("app.js", "app.css")


def load_asset(name: str) -> Asset:
    """Read a file of the page from the package data (``llmsse/demo/static``)."""
    if name not in PAGES.values() and name not in STATIC:
        raise KeyError(name)
    body = resources.files("llmsse.demo").joinpath("static").joinpath(name).read_bytes()
    suffix = name[name.rindex(".") :]
    return Asset(body, _CONTENT_TYPES[suffix])


class _LazyStream:
    """A sync source that calls ``create()`` when first read and can be closed from any thread.

    Calling ``create()`` inside the stream (not in the view) turns an API error such as a
    bad key into the ``error`` event the page shows, instead of an HTTP 500.
    """

    def __init__(self, create: Callable[[], Any]) -> None:
        self._create = create
        self._stream: Any = None
        self._it: Iterator[ChatCompletionChunk] | None = None
        self._closed = False
        self._lock = threading.Lock()

    def __iter__(self) -> _LazyStream:
        return self

    def __next__(self) -> ChatCompletionChunk:
        if self._it is None:
            stream = self._create()
            with self._lock:
                self._stream = stream
                closed = self._closed
            if closed:
                stream.close()
                raise StopIteration
            self._it = iter(stream)
        return next(self._it)

    def close(self) -> None:
        """Close the upstream stream (the HTTP response from the API), once."""
        with self._lock:
            self._closed = True
            stream, self._stream = self._stream, None
        if stream is not None:
            stream.close()


class _LazyAsyncStream:
    """The async twin of ``_LazyStream``: awaits ``create()`` at the first read."""

    def __init__(self, create: Callable[[], Awaitable[Any]]) -> None:
        self._create = create
        self._stream: Any = None
        self._it: AsyncIterator[ChatCompletionChunk] | None = None
        self._closed = False

    def __aiter__(self) -> _LazyAsyncStream:
        return self

    async def __anext__(self) -> ChatCompletionChunk:
        if self._it is None:
            if self._closed:
                raise StopAsyncIteration
            self._stream = await self._create()
            self._it = self._stream.__aiter__()
        return await self._it.__anext__()

    async def close(self) -> None:
        """Close the upstream stream, once."""
        self._closed = True
        stream, self._stream = self._stream, None
        if stream is not None:
            await stream.close()


def describe_error(exc: BaseException) -> str | None:
    """The ``on_error`` hook: a message the page can show, without the exception's text."""
    import openai

    if isinstance(exc, openai.AuthenticationError):
        return "The model API rejected the key (HTTP 401): check OPENAI_API_KEY."
    if isinstance(exc, openai.NotFoundError):
        return "The model API answered HTTP 404: check --model and OPENAI_BASE_URL."
    if isinstance(exc, openai.RateLimitError):
        return "The model API is rate limiting this key (HTTP 429): try again later."
    if isinstance(exc, openai.APIStatusError):
        return f"The model API answered HTTP {exc.status_code}."
    if isinstance(exc, openai.APIConnectionError):
        return "Could not reach the model API."
    if isinstance(exc, openai.APIError):
        return "The model failed in the middle of its answer."
    return None


class DemoService:
    """The demo's model access and bookkeeping, shared by the framework apps.

    Args:
        config: Which model to reach and how.
        fake: The running offline fake API when ``config.offline``
            (:func:`llmsse.demo.fake_model.start_fake_model`).
    """

    def __init__(self, config: DemoConfig, fake: FakeChatServer | None = None) -> None:
        if config.offline and fake is None:
            raise ValueError("the offline demo needs a running fake API")
        self.config = config
        self.fake = fake
        self._sync: OpenAI | None = None
        self._async: AsyncOpenAI | None = None
        self._lock = threading.Lock()
        self._outcomes = {"finished": 0, "failed": 0, "disconnected": 0}
        self.requests = 0

    # -- clients -----------------------------------------------------------------------

    def _client_options(self) -> dict[str, Any]:
        if self.fake is not None and self.config.offline:
            return {"api_key": "offline-demo", "base_url": self.fake.base_url, "max_retries": 0}
        return {"api_key": self.config.api_key, "base_url": self.config.base_url}

    def sync_client(self) -> OpenAI:
        """The shared ``OpenAI`` client (created at first use)."""
        with self._lock:
            if self._sync is None:
                from openai import OpenAI

                self._sync = OpenAI(**self._client_options())
            return self._sync

    def async_client(self) -> AsyncOpenAI:
        """The ``AsyncOpenAI`` client, created at first use inside the server's event loop."""
        if self._async is None:
            from openai import AsyncOpenAI

            self._async = AsyncOpenAI(**self._client_options())
        return self._async

    def warm_up(self, *, asynchronous: bool) -> None:
        """Import the SDK and build the client now, so that the first question is not slow."""
        client = self.async_client() if asynchronous else self.sync_client()
        client.chat.completions  # noqa: B018 - the SDK imports a resource at first access

    def _create_args(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "model": self.config.model,
            "messages": [{"role": "system", "content": SYSTEM_PROMPT}, *messages],
            "tools": [WEATHER_TOOL],
            "stream": True,
            "stream_options": {"include_usage": True},
        }

    # -- sources -----------------------------------------------------------------------

    def sync_source(self, messages: list[dict[str, Any]]) -> _LazyStream:
        """A sync stream of chunks for ``messages`` (for WSGI servers)."""
        self._count_request()
        args = self._create_args(messages)
        return _LazyStream(lambda: self.sync_client().chat.completions.create(**args))

    def async_source(self, messages: list[dict[str, Any]]) -> _LazyAsyncStream:
        """An async stream of chunks for ``messages`` (for ASGI servers)."""
        self._count_request()
        args = self._create_args(messages)
        return _LazyAsyncStream(lambda: self.async_client().chat.completions.create(**args))

    def options(self, *, eventsource: bool = False) -> dict[str, Any]:
        """The pipeline options for ``sse_response``.

        ``EventSource`` gets a short ``retry`` so that a page which forgets to ``close()`` on
        ``done`` shows its reconnect at once instead of after a few seconds.
        """
        options: dict[str, Any] = {
            "format": "text",
            "heartbeat": self.config.heartbeat,
            "on_complete": self._on_complete,
            "on_error": describe_error,
        }
        if eventsource:
            options["retry"] = 500
        return options

    # -- requests ----------------------------------------------------------------------

    @staticmethod
    def parse_chat(body: bytes) -> list[dict[str, Any]]:
        """The ``messages`` of a ``POST /api/chat`` body; ``BadRequest`` if it is not usable."""
        try:
            data = json.loads(body)
        except ValueError:
            raise BadRequest("the body must be JSON") from None
        messages = data.get("messages") if isinstance(data, dict) else None
        if not isinstance(messages, list) or not messages:
            raise BadRequest('expected {"messages": [{"role": ..., "content": ...}, ...]}')
        if len(messages) > MAX_MESSAGES:
            raise BadRequest(f"at most {MAX_MESSAGES} messages")
        checked = []
        for message in messages:
            if not isinstance(message, dict):
                raise BadRequest("each message must be an object")
            role, content = message.get("role"), message.get("content")
            if role not in ("user", "assistant") or not isinstance(content, str):
                raise BadRequest("each message needs a role (user/assistant) and a content string")
            if len(content) > MAX_CHARS:
                raise BadRequest(f"a message has at most {MAX_CHARS} characters")
            checked.append({"role": role, "content": content})
        return checked

    @staticmethod
    def check_same_site(origin: str | None, host: str | None, fetch_site: str | None) -> None:
        """``BadRequest`` for a request another web site made the browser send.

        The demo spends the key of whoever runs it: a page on another site must not be able
        to start answers here (a form POST or an ``EventSource`` needs no CORS permission to
        be *sent*). Browsers say where a request comes from in ``Sec-Fetch-Site`` and
        ``Origin``; tools like curl send neither and are let through.
        """
        if fetch_site == "cross-site":
            raise BadRequest("cross-site requests are refused")
        if origin and origin != "null" and host:
            origin_host = origin.split("://", 1)[-1]
            if origin_host != host:
                raise BadRequest("cross-origin requests are refused")

    @staticmethod
    def parse_question(question: str | None) -> list[dict[str, Any]]:
        """The ``messages`` for ``GET /api/chat?q=...`` (what ``EventSource`` can send)."""
        if not question:
            raise BadRequest("expected ?q=<question>")
        if len(question) > MAX_CHARS:
            raise BadRequest(f"a question has at most {MAX_CHARS} characters")
        return [{"role": "user", "content": question}]

    # -- bookkeeping -------------------------------------------------------------------

    def _count_request(self) -> None:
        with self._lock:
            self.requests += 1

    def _on_complete(self, result: StreamResult) -> None:
        with self._lock:
            self._outcomes[result.outcome] = self._outcomes.get(result.outcome, 0) + 1

    def stats(self) -> dict[str, Any]:
        """How many streams were asked for and how they ended (``GET /api/stats``).

        ``upstream`` is the offline fake API's view: ``closed_early`` counts the streams whose
        HTTP connection the demo server closed before the model finished (Stop pressed).
        """
        with self._lock:
            stats: dict[str, Any] = {
                "mode": "offline" if self.config.offline else "api",
                "model": self.config.model,
                "requests": self.requests,
                "outcomes": dict(self._outcomes),
            }
        if self.fake is not None:
            from llmsse.demo.fake_model import upstream_stats

            stats["upstream"] = upstream_stats(self.fake)
        return stats

    def stats_json(self) -> bytes:
        """``stats()`` as JSON bytes."""
        return json.dumps(self.stats()).encode()
