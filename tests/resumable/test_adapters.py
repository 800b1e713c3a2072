"""resume_response on real servers over 127.0.0.1: Starlette under uvicorn, Flask under
gunicorn (gthread), Django under uvicorn (ASGI) and werkzeug (WSGI), sync and async views.

Each test starts a stream with the framework's one-liner, drops connections the way a
phone switching networks does, and reconnects with ``Last-Event-ID``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import llmsse
from integration._wsgi_servers import SSEReader, check_headers, serve_gunicorn
from integration.servers import serve_asgi, serve_wsgi

from ._apps import pieces

pytestmark = pytest.mark.integration

#: Server name -> the route prefixes it serves (Django: sync and async views).
SERVERS = {
    "starlette-uvicorn": ["/chat"],
    "flask-gunicorn": ["/chat"],
    "django-uvicorn": ["/chat", "/achat"],
    "django-werkzeug": ["/chat", "/achat"],
}
CASES = [(server, prefix) for server, prefixes in SERVERS.items() for prefix in prefixes]


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, str]]:
    """Every server, started once for the module: name -> base URL."""
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from . import _django_app
    from ._apps import starlette_app

    with (
        override_settings(**_django_app.SETTINGS),
        serve_asgi(starlette_app) as starlette_url,
        serve_gunicorn("resumable._apps:flask_app", "gthread", {}, workers=1) as flask_url,
        serve_asgi(ASGIHandler()) as django_asgi_url,
        serve_wsgi(WSGIHandler()) as django_wsgi_url,
    ):
        yield {
            "starlette-uvicorn": starlette_url,
            "flask-gunicorn": flask_url,
            "django-uvicorn": django_asgi_url,
            "django-werkzeug": django_wsgi_url,
        }


@pytest.fixture
def client() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=10) as client:
        yield client


def start(client: httpx.Client, url: str, n: int, delay: float) -> tuple[str, str]:
    """Start a stream; its id and the tag of its source's record."""
    tag = uuid.uuid4().hex
    response = client.post(url, params={"n": n, "delay": delay, "tag": tag})
    assert response.status_code == 200, response.text
    stream_id = response.json()["id"]
    assert isinstance(stream_id, str)
    return stream_id, tag


def record(client: httpx.Client, base_url: str, tag: str) -> dict[str, Any]:
    result: dict[str, Any] = client.get(f"{base_url}/record/{tag}").json()
    return result


def read_some(
    client: httpx.Client, url: str, count: int | None, headers: dict[str, str] | None = None
) -> list[llmsse.ServerSentEvent]:
    """GET ``url`` and read ``count`` events (all with ``None``), then drop the connection."""
    with client.stream("GET", url, headers=headers) as response:
        assert response.status_code == 200, response.read()
        check_headers(response)
        reader = SSEReader(response)
        if count is None:
            return reader.rest()
        while len(reader.events) < count:
            assert reader.next_event() is not None
        return reader.events[:count]


def answer(events: list[llmsse.ServerSentEvent]) -> str:
    return "".join(event.data or "" for event in events if event.event == "message")


def wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


@pytest.mark.parametrize(("server", "prefix"), CASES)
def test_drop_and_resume_with_last_event_id(
    servers: dict[str, str], client: httpx.Client, server: str, prefix: str
) -> None:
    base_url = servers[server]
    stream_id, tag = start(client, base_url + prefix, n=40, delay=0.02)
    stream_url = f"{base_url}{prefix}/{stream_id}/stream"

    first = read_some(client, stream_url, 5)
    produced = record(client, base_url, tag)["produced"]
    time.sleep(0.2)  # nobody reads: the generation goes on all the same
    assert record(client, base_url, tag)["produced"] > produced

    rest = read_some(client, stream_url, None, headers={"Last-Event-ID": first[-1].id or ""})
    events = first + rest
    assert [event.id for event in events] == [str(n) for n in range(1, len(events) + 1)]
    assert answer(events) == "".join(pieces(40))
    assert events[-1].event == "done"
    assert record(client, base_url, tag) == {"produced": 40, "closed": True}

    # A fetch reader's ?last_event_id=, and a whole replay.
    tail = read_some(client, stream_url + "?last_event_id=10", None)
    assert tail == events[10:]
    assert read_some(client, stream_url, None) == events

    # Nothing after the last event: 204, so EventSource stops reconnecting.
    response = client.get(stream_url, headers={"Last-Event-ID": str(len(events))})
    assert (response.status_code, response.content) == (204, b"")


@pytest.mark.parametrize(("server", "prefix"), CASES)
def test_refusals(servers: dict[str, str], client: httpx.Client, server: str, prefix: str) -> None:
    base_url = servers[server] + prefix
    assert client.get(f"{base_url}/no-such-stream/stream").status_code == 404
    stream_id, _ = start(client, base_url, n=2, delay=0.01)
    url = f"{base_url}/{stream_id}/stream"
    for headers, params in [
        ({"Last-Event-ID": "abc"}, {}),
        ({"Last-Event-ID": "-1"}, {}),
        ({}, {"last_event_id": "1.5"}),
    ]:
        response = client.get(url, headers=headers, params=params)
        assert response.status_code == 400, (headers, params)
        assert "non-negative integer" in response.text


@pytest.mark.parametrize(("server", "prefix"), CASES)
def test_cancel_closes_the_upstream_and_ends_the_readers(
    servers: dict[str, str], client: httpx.Client, server: str, prefix: str
) -> None:
    base_url = servers[server]
    stream_id, tag = start(client, base_url + prefix, n=1000, delay=0.05)
    stream_url = f"{base_url}{prefix}/{stream_id}/stream"
    with client.stream("GET", stream_url) as response:
        reader = SSEReader(response)
        assert reader.next_event() is not None
        cancelled_at = time.monotonic()
        assert client.post(f"{base_url}{prefix}/{stream_id}/cancel").json() == {"cancelled": True}
        events = reader.rest()  # the response ends: no terminal event after a cancel
        assert time.monotonic() - cancelled_at < 5
    assert all(event.event == "message" for event in events)
    wait_for(lambda: record(client, base_url, tag)["closed"])
    assert record(client, base_url, tag)["produced"] < 200
    assert client.post(f"{base_url}{prefix}/{stream_id}/cancel").json() == {"cancelled": False}
    response = client.get(stream_url, headers={"Last-Event-ID": events[-1].id or ""})
    assert response.status_code == 204
