"""Shared fixtures for the real-server tests (helpers themselves live in ``servers.py``)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .servers import FakeOpenAI, Pause, chunk

#: The module-scoped fixtures that start one server per parameter.
SERVER_FIXTURES = ("server", "served")


@pytest.hookimpl(wrapper=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> Iterator[None]:
    # Everything in this folder starts real servers: runnable alone with -m integration.
    for item in items:
        if "/integration/" in str(item.path).replace("\\", "/"):
            item.add_marker(pytest.mark.integration)
    yield
    # A test that parametrises the server fixture itself, to run on the servers that apply
    # only, gives its other parameters the module scope too (one parametrize() call, one
    # scope), and pytest's grouping then interleaves the servers. Run each module's tests in
    # one run per server again, so that each server starts once.
    items[:] = sorted(items, key=_server_rank(items))


def _server_rank(items: list[pytest.Item]) -> Callable[[pytest.Item], tuple[int, int]]:
    """Sort key: the module's first appearance, then the server's first one in that module."""
    modules: dict[Path, int] = {}
    servers: dict[tuple[Path, object], int] = {}
    for item in items:
        modules.setdefault(item.path, len(modules))
        servers.setdefault((item.path, _server_param(item)), len(servers))
    return lambda item: (modules[item.path], servers[item.path, _server_param(item)])


def _server_param(item: pytest.Item) -> object:
    params = getattr(getattr(item, "callspec", None), "params", {})
    return next((params[name] for name in SERVER_FIXTURES if name in params), None)


#: The scripts every ``fake_openai`` serves, by model name (use ``"name#tag"`` per request).
OPENAI_SCRIPTS = {
    # Three text deltas, the last well after the first: shows events are not batched.
    "slow": [
        chunk(role="assistant", content=""),
        chunk("Hello"),
        Pause(0.15),
        chunk(" big"),
        Pause(0.15),
        chunk(" world"),
        chunk(finish="stop"),
    ],
    # One delta, then a model "thinking" for longer than any test lasts.
    "idle": [chunk(role="assistant", content=""), chunk("Hello"), Pause(30)],
    # A delta every 20 ms for a long time: an active stream.
    "busy": [chunk(role="assistant", content="")] + [chunk("x"), Pause(0.02)] * 1500,
    # A whole short answer; and a model that answers, then thinks for longer than any test.
    "hello": [chunk("", role="assistant"), chunk("Hello"), chunk(" world"), chunk(finish="stop")],
    "thinking": [chunk("Hmm", role="assistant"), Pause(30.0), chunk("late")],
    # A delta, then an error payload in the middle of the stream.
    "fail": [
        chunk("Hello"),
        {"error": {"message": "secret upstream detail", "type": "server_error", "code": None}},
    ],
}


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    """An offline chat-completions API on 127.0.0.1 serving ``OPENAI_SCRIPTS``."""
    with FakeOpenAI() as fake:
        for model, steps in OPENAI_SCRIPTS.items():
            fake.script(model, steps)
        yield fake
