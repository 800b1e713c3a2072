"""openai clients pointed at the fake chat-completions API named by ``$LLMSSE_FAKE_OPENAI``."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from typing import Any

import openai

_sync: dict[str, openai.OpenAI] = {}
_async: dict[tuple[str, int], openai.AsyncOpenAI] = {}


def _base_url() -> str:
    return os.environ["LLMSSE_FAKE_OPENAI"]


def sync_client() -> openai.OpenAI:
    """One ``OpenAI()`` per process, as an app would make at import time."""
    url = _base_url()
    if url not in _sync:
        _sync[url] = openai.OpenAI(base_url=url, api_key="sk-test", max_retries=0)
    return _sync[url]


def async_client() -> openai.AsyncOpenAI:
    """One ``AsyncOpenAI()`` per process and event loop (its pool belongs to one loop).

    An app has one loop (uvicorn's, or llmsse's background loop under WSGI); the tests run
    several servers in one process, hence the key.
    """
    key = (_base_url(), id(asyncio.get_running_loop()))
    if key not in _async:
        _async[key] = openai.AsyncOpenAI(base_url=key[0], api_key="sk-test", max_retries=0)
    return _async[key]


def messages() -> list[Any]:
    return [{"role": "user", "content": "Hi"}]


async def answer(model: str) -> AsyncIterator[Any]:
    """The documented WSGI pattern: an async generator that opens the stream when iterated."""
    stream = await async_client().chat.completions.create(
        model=model, messages=messages(), stream=True
    )
    async with stream:
        async for chunk in stream:
            yield chunk
