"""The server examples of docs/resumable.md, run as written on real servers over 127.0.0.1.

Each Python block that starts with ``# <name>.py`` is loaded as a module, with the openai
clients it makes at import time pointed at an offline fake API (``FakeChatServer``) that
echoes the prompt slowly; then a client starts a stream, drops the connection, resumes it
with ``Last-Event-ID`` and cancels another.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import llmsse
from integration._wsgi_servers import SSEReader
from integration.servers import serve_asgi, serve_wsgi
from llmsse.testing import FakeChatServer, FakeOpenAI, echo

pytestmark = pytest.mark.integration

DOC = Path(__file__).resolve().parents[2] / "docs" / "resumable.md"
BLOCK = re.compile(r"```python\n# (\w+)\.py\n(.*?)```", re.S)
PROMPT = "resume me " * 20
ANSWER = f"You said: {PROMPT}"


def blocks() -> dict[str, str]:
    return dict(BLOCK.findall(DOC.read_text(encoding="utf-8")))


def test_the_doc_has_an_example_per_framework() -> None:
    assert set(blocks()) == {"fastapi_app", "flask_app", "django_views", "ai_sdk_app"}


@pytest.fixture(scope="module")
def modules(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, types.ModuleType]]:
    """The doc's modules, their clients talking to the fake API."""
    fake = FakeOpenAI(default=echo, delay=0.02)
    directory = tmp_path_factory.mktemp("resumable_docs")
    with FakeChatServer(fake) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", server.base_url)
        patch.setenv("OPENAI_API_KEY", "sk-fake")
        loaded = {}
        for name, code in blocks().items():
            path = directory / f"{name}.py"
            path.write_text(code, encoding="utf-8")
            spec = importlib.util.spec_from_file_location(f"resumable_doc_{name}", path)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            sys.modules[spec.name] = module
            spec.loader.exec_module(module)
            loaded[name] = module
        yield loaded
        for module in loaded.values():
            sys.modules.pop(module.__name__, None)


@pytest.fixture(scope="module", params=["fastapi", "flask", "django-wsgi", "django-asgi"])
def served(request: pytest.FixtureRequest, modules: dict[str, types.ModuleType]) -> Iterator[str]:
    """The doc's app for one framework, served; its base URL."""
    kind = request.param
    if kind == "fastapi":
        with serve_asgi(modules["fastapi_app"].app) as base_url:
            yield base_url
    elif kind == "flask":
        with serve_wsgi(modules["flask_app"].app) as base_url:
            yield base_url
    else:
        yield from _django(modules["django_views"], asgi=kind == "django-asgi")


def _django(views: types.ModuleType, *, asgi: bool) -> Iterator[str]:
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings
    from django.urls import path

    from . import _django_app  # configures Django when nothing else did

    # The urls.py the doc describes in its last comment.
    urls = types.ModuleType("resumable_doc_urls")
    urls.urlpatterns = [  # type: ignore[attr-defined]
        path("chat", views.start),
        path("chat/<str:stream_id>/stream", views.stream),
        path("chat/<str:stream_id>/cancel", views.cancel),
    ]
    sys.modules[urls.__name__] = urls
    settings = {**_django_app.SETTINGS, "ROOT_URLCONF": urls.__name__}
    try:
        with override_settings(**settings):
            if asgi:
                with serve_asgi(ASGIHandler()) as base_url:
                    yield base_url
            else:
                with serve_wsgi(WSGIHandler()) as base_url:
                    yield base_url
    finally:
        sys.modules.pop(urls.__name__, None)


def start(client: httpx.Client, base_url: str, prompt: str = PROMPT) -> str:
    response = client.post(f"{base_url}/chat", json={"prompt": prompt})
    assert response.status_code == 200, response.text
    stream_id: str = response.json()["id"]
    return stream_id


def answer(events: list[llmsse.ServerSentEvent]) -> str:
    return "".join(event.data or "" for event in events if event.event == "message")


def test_drop_and_resume(served: str) -> None:
    with httpx.Client(timeout=10) as client:
        stream_id = start(client, served)
        url = f"{served}/chat/{stream_id}/stream"
        with client.stream("GET", url) as response:
            assert response.status_code == 200
            reader = SSEReader(response)
            first = [reader.next_event() for _ in range(3)]
        last_id = first[-1].id if first[-1] is not None else None
        assert last_id == "3"
        response = client.get(url, headers={"Last-Event-ID": last_id})
        rest = llmsse.parse(response.content)
        events = [event for event in first if event is not None] + rest
        assert answer(events) == ANSWER
        assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
        assert events[-1].event == "done"
        done = {"Last-Event-ID": events[-1].id or ""}
        assert client.get(url, headers=done).status_code == 204
        assert client.get(f"{served}/chat/unknown/stream").status_code == 404
        assert client.post(f"{served}/chat/{stream_id}/cancel").json() == {"cancelled": False}


def test_cancel(served: str) -> None:
    with httpx.Client(timeout=10) as client:
        stream_id = start(client, served, prompt="long " * 2000)
        assert client.post(f"{served}/chat/{stream_id}/cancel").json() == {"cancelled": True}
        started = time.monotonic()
        response = client.get(f"{served}/chat/{stream_id}/stream")
        assert time.monotonic() - started < 5
        if response.status_code == 200:  # what was produced before the cancel, and no more
            assert all(event.event == "message" for event in llmsse.parse(response.content))
        else:
            assert response.status_code == 204


def test_ai_sdk_route_resumes_and_then_has_nothing_to_resume(
    modules: dict[str, types.ModuleType],
) -> None:
    body: dict[str, Any] = {
        "id": "chat-1",
        "messages": [{"role": "user", "parts": [{"type": "text", "text": PROMPT}]}],
    }
    with serve_asgi(modules["ai_sdk_app"].app) as base_url, httpx.Client(timeout=10) as client:
        assert client.get(f"{base_url}/api/chat/chat-1/stream").status_code == 204
        with client.stream("POST", f"{base_url}/api/chat", json=body) as response:
            assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
            reader = SSEReader(response)
            assert reader.next_event() is not None  # then the tab reloads
        # useChat({resume: true}) on mount: no Last-Event-ID, the whole message again.
        response = client.get(f"{base_url}/api/chat/chat-1/stream")
        assert response.status_code == 200
        chunks = [json.loads(e.data or "") for e in llmsse.parse(response.content)[:-1]]
        assert llmsse.parse(response.content)[-1].data == "[DONE]"
        assert chunks[0]["type"] == "start" and chunks[-1]["type"] == "finish"
        text = "".join(chunk.get("delta", "") for chunk in chunks if chunk["type"] == "text-delta")
        assert text == ANSWER
        assert client.get(f"{base_url}/api/chat/chat-1/stream").status_code == 204
