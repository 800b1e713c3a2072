"""Fixtures for the resumable-stream tests: every store kind behind one ``store`` fixture.

The contract suite (``store_contract.py``, collected by ``test_store_contract.py``) runs
once per entry of ``STORE_KINDS``. A new kind adds its name here and a branch to
:func:`new_store`, which may ask ``request`` for the fixtures it needs (a server).

Async tests run on anyio's pytest plugin (``pytest.mark.anyio``), under asyncio unless a
test asks for ``anyio_backend`` itself.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from llmsse.resumable import MemoryStore, Store

#: The stores the contract suite runs against.
STORE_KINDS = ["memory", "redis"]

#: ``await make_store(maxlen=...)``: a fresh store of the kind under test.
StoreFactory = Callable[..., Awaitable[Store]]


async def new_store(
    kind: str, request: pytest.FixtureRequest, *, maxlen: int | None = None
) -> Store:
    """A new, empty store of ``kind``; ``maxlen`` caps the events kept per stream."""
    if kind == "memory":
        return MemoryStore(maxlen=maxlen)
    if kind == "redis":
        from llmsse.resumable import RedisStore

        from ._redis_server import shared_redis_url

        prefix = f"test-{uuid.uuid4().hex}"
        return RedisStore(url=shared_redis_url(request), prefix=prefix, maxlen=maxlen)
    raise ValueError(f"unknown store kind {kind!r}")


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(params=STORE_KINDS)
def store_kind(request: pytest.FixtureRequest) -> str:
    """The name of the store kind under test."""
    kind: str = request.param
    return kind


@pytest.fixture
async def make_store(
    store_kind: str, request: pytest.FixtureRequest
) -> AsyncIterator[StoreFactory]:
    """A factory of fresh stores of the kind under test, all closed after the test."""
    made: list[Store] = []

    async def make(*, maxlen: int | None = None) -> Store:
        store = await new_store(store_kind, request, maxlen=maxlen)
        made.append(store)
        return store

    yield make
    for store in made:
        await store.aclose()


@pytest.fixture
async def store(make_store: StoreFactory) -> Store:
    """A fresh store of the kind under test."""
    return await make_store()
