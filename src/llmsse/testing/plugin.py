"""The llmsse pytest plugin (entry point ``pytest11: llmsse``): fixtures for the test kit.

It imports nothing but pytest when pytest starts: the kit (and openai) are imported by the
fixtures when a test uses them, so the plugin costs nothing to projects that do not.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from llmsse.testing import ChunkBuilder, FakeChatServer, FakeOpenAI

__all__ = ["chunk_builder", "fake_chat_server", "fake_openai"]


@pytest.fixture
def fake_openai() -> FakeOpenAI:
    """A fresh :class:`llmsse.testing.FakeOpenAI`: script it with ``fake_openai.reply(...)``,
    get real clients with ``fake_openai.client()`` / ``fake_openai.async_client()``."""
    from llmsse.testing import FakeOpenAI

    return FakeOpenAI()


@pytest.fixture
def fake_chat_server(fake_openai: FakeOpenAI) -> Iterator[FakeChatServer]:
    """A started :class:`llmsse.testing.FakeChatServer` on 127.0.0.1 serving ``fake_openai``;
    stopped after the test. Point clients at ``fake_chat_server.base_url``."""
    from llmsse.testing import FakeChatServer

    with FakeChatServer(fake_openai) as server:
        yield server


@pytest.fixture
def chunk_builder() -> ChunkBuilder:
    """A :class:`llmsse.testing.ChunkBuilder`: ``chunk_builder.chunks("Hi")``,
    ``chunk_builder.stream(...)``, ``chunk_builder.async_stream(...)``, ``.body(...)``."""
    from llmsse.testing import ChunkBuilder

    return ChunkBuilder()
