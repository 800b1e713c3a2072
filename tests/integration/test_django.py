"""llmsse.django on real servers over 127.0.0.1: uvicorn (ASGI), werkzeug's threaded server and
gunicorn's gthread workers (WSGI), with GZipMiddleware on, scripted sources and the real openai
SDK against a fake API."""

from __future__ import annotations

import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

import llmsse
from integration._wsgi_servers import (
    check_first_event_early,
    check_headers,
    check_served_while_streaming,
    first_event_then_hang_up,
    read_stream,
    serve_gunicorn,
    texts,
)
from integration.apps._record import wait_record
from integration.servers import FakeOpenAI, serve_asgi, serve_wsgi

pytestmark = pytest.mark.integration

HEARTBEAT = 0.5
# How soon the upstream must be closed after the client left: at once under ASGI (Django
# listens for http.disconnect), at the next heartbeat under WSGI.
LIMIT = {"uvicorn": 1.0, "werkzeug": HEARTBEAT + 1.0, "gunicorn-gthread": HEARTBEAT + 1.0}
WSGI_SERVERS = ["werkzeug", "gunicorn-gthread"]
#: Tests that run on only some servers parametrise ``server`` themselves: still module-scoped.
ON_SERVER = {"indirect": ["server"], "scope": "module"}


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("django-records")


@pytest.fixture(scope="module", params=list(LIMIT))
def server(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, record_dir: Path
) -> Iterator[tuple[str, str]]:
    """(server name, base URL)."""
    env = {"LLMSSE_RECORD_DIR": str(record_dir), "LLMSSE_FAKE_OPENAI": fake_openai.base_url}
    name = request.param
    if name == "gunicorn-gthread":
        app = "integration.apps.django_app:wsgi_application"
        with serve_gunicorn(app, "gthread", env, workers=1) as base_url:
            yield name, base_url
        return
    from django.core.handlers.asgi import ASGIHandler
    from django.core.handlers.wsgi import WSGIHandler
    from django.test.utils import override_settings

    from integration.apps import django_app

    with pytest.MonkeyPatch.context() as patch, override_settings(**django_app.SETTINGS):
        for key, value in env.items():
            patch.setenv(key, value)
        if name == "uvicorn":
            with serve_asgi(ASGIHandler(), "uvicorn") as base_url:
                yield name, base_url
        else:
            with serve_wsgi(WSGIHandler()) as base_url:
                yield name, base_url


def _tag(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").replace("]", "").replace("/", "-")


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_stream_bytes_and_headers_through_gzip_middleware(
    server: tuple[str, str], record_dir: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    tag = _tag(request)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        response, body = read_stream(
            server[1], f"/{kind}/short?tag={tag}&hb=5", headers={"accept-encoding": "gzip"}
        )
    assert response.status_code == 200
    check_headers(response)  # GZipMiddleware left it alone: no gzip, nothing buffered
    events = llmsse.parse(body)
    assert texts(events) == ["Hel", "lo\nworld", " ✓"]
    assert events[-1].event == "done"
    assert (wait_record(record_dir, tag, "outcome") or "").startswith("finished ")
    # Django warns when it has to collect an iterator of the wrong kind (in-process servers).
    assert not [w for w in caught if "StreamingHttpResponse must consume" in str(w.message)]


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_first_event_arrives_while_the_source_produces(server: tuple[str, str], kind: str) -> None:
    check_first_event_early(server[1], f"/{kind}/slow?tag=early-{kind}&hb=5", pause=1.0)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_disconnect_closes_the_upstream(
    server: tuple[str, str], record_dir: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    name, base_url = server
    tag = _tag(request)
    event, left_at, _ = first_event_then_hang_up(base_url, f"/{kind}/idle?tag={tag}&hb={HEARTBEAT}")
    assert event.data == "first"
    closed = wait_record(record_dir, tag, "closed", timeout=LIMIT[name] + 3)
    assert closed is not None, "the upstream was never closed"
    assert float(closed) - left_at < LIMIT[name]
    outcome = wait_record(record_dir, tag, "outcome", timeout=2) or ""
    assert outcome.startswith("disconnected ")


def test_another_request_is_served_while_a_sync_stream_runs(server: tuple[str, str]) -> None:
    check_served_while_streaming(server[1], f"/sync/idle?tag=busy&hb={HEARTBEAT}")


OPENAI_ROUTES = ["openai", "aopenai", "aopenai-lazy"]


def _openai_routes(server: str) -> list[str]:
    # An AsyncStream opened in an async view works only where that view's loop serves it.
    return ["openai", "aopenai-lazy"] + (["aopenai"] if server == "uvicorn" else [])


#: The (server, route) pairs that stream: the others are refused (see the last test).
STREAMING_OPENAI_ROUTES = [
    pytest.param(name, route, id=f"{name}-{route}")
    for name in LIMIT
    for route in OPENAI_ROUTES
    if route in _openai_routes(name)
]


@pytest.mark.parametrize("route", OPENAI_ROUTES)
def test_openai_sdk_end_to_end(server: tuple[str, str], route: str) -> None:
    name, base_url = server
    response, body = read_stream(base_url, f"/{route}/hello")
    if route not in _openai_routes(name):
        assert response.status_code == 500  # refused: see test_async_stream_refused_under_wsgi
        return
    assert response.status_code == 200
    check_headers(response)
    events = llmsse.parse(body)
    assert "".join(texts(events)) == "Hello world"
    assert events[-1].event == "done"


@pytest.mark.parametrize(("server", "route"), STREAMING_OPENAI_ROUTES, **ON_SERVER)
def test_openai_sdk_disconnect_closes_the_model_request(
    server: tuple[str, str], fake_openai: FakeOpenAI, route: str
) -> None:
    name, base_url = server
    before = len(fake_openai.calls_for("thinking"))
    event, _, left_at = first_event_then_hang_up(base_url, f"/{route}/thinking?hb={HEARTBEAT}")
    assert event.data == "Hmm"
    call = fake_openai.calls_for("thinking")[before]
    deadline = left_at + LIMIT[name] + 0.5
    while call.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert call.closed_at is not None, "the request to the model was never closed"
    assert call.closed_at - left_at < LIMIT[name]
    assert not call.completed


# Under ASGI (uvicorn) the same route streams: test_openai_sdk_end_to_end[uvicorn-aopenai].
@pytest.mark.parametrize("server", WSGI_SERVERS, **ON_SERVER)
def test_async_stream_opened_in_an_async_view_is_refused_under_wsgi(
    server: tuple[str, str],
) -> None:
    base_url = server[1]
    # DEBUG is off: the RuntimeError (tests/test_django.py shows its text) becomes a 500.
    assert httpx.get(base_url + "/aopenai/hello", timeout=10).status_code == 500
