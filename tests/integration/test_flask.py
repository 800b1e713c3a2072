"""llmsse.flask on real WSGI servers over 127.0.0.1: werkzeug's threaded server and gunicorn
(sync and gthread workers), with scripted sources and the real openai SDK against a fake API."""

from __future__ import annotations

import time
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
from integration.servers import FakeOpenAI, serve_wsgi

pytestmark = pytest.mark.integration

HEARTBEAT = 0.5
# A client that left is noticed at the next heartbeat; the upstream must be closed by then.
WSGI_LIMIT = HEARTBEAT + 1.0


@pytest.fixture(scope="module")
def record_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("flask-records")


@pytest.fixture(scope="module", params=["werkzeug", "gunicorn-sync", "gunicorn-gthread"])
def server(
    request: pytest.FixtureRequest, fake_openai: FakeOpenAI, record_dir: Path
) -> Iterator[str]:
    env = {"LLMSSE_RECORD_DIR": str(record_dir), "LLMSSE_FAKE_OPENAI": fake_openai.base_url}
    if request.param == "werkzeug":
        with pytest.MonkeyPatch.context() as patch:
            for name, value in env.items():
                patch.setenv(name, value)
            from integration.apps.flask_app import app

            with serve_wsgi(app) as base_url:
                yield base_url
    else:
        worker = request.param.removeprefix("gunicorn-")
        with serve_gunicorn("integration.apps.flask_app:app", worker, env) as base_url:
            yield base_url


def _tag(request: pytest.FixtureRequest) -> str:
    return request.node.name.replace("[", "-").replace("]", "").replace("/", "-")


def test_stream_bytes_and_headers(
    server: str, record_dir: Path, request: pytest.FixtureRequest
) -> None:
    tag = _tag(request)
    response, body = read_stream(server, f"/sync/short?tag={tag}&hb=5")
    check_headers(response)
    events = llmsse.parse(body)
    assert texts(events) == ["Hel", "lo\nworld", " ✓"]
    assert events[-1].event == "done"
    assert (wait_record(record_dir, tag, "outcome") or "").startswith("finished ")


def test_first_event_arrives_while_the_source_produces(server: str) -> None:
    check_first_event_early(server, "/sync/slow?tag=early&hb=5", pause=1.0)


@pytest.mark.parametrize("kind", ["sync", "async"])
def test_disconnect_closes_the_upstream_at_the_next_heartbeat(
    server: str, record_dir: Path, kind: str, request: pytest.FixtureRequest
) -> None:
    tag = _tag(request)
    event, left_at, _ = first_event_then_hang_up(server, f"/{kind}/idle?tag={tag}&hb={HEARTBEAT}")
    assert event.data == "first"
    closed = wait_record(record_dir, tag, "closed", timeout=WSGI_LIMIT + 3)
    assert closed is not None, "the upstream was never closed"
    assert float(closed) - left_at < WSGI_LIMIT
    outcome = wait_record(record_dir, tag, "outcome", timeout=2) or ""
    assert outcome.startswith("disconnected ")


def test_another_request_is_served_while_a_sync_stream_runs(server: str) -> None:
    check_served_while_streaming(server, f"/sync/idle?tag=busy&hb={HEARTBEAT}")


@pytest.mark.parametrize("route", ["openai", "aopenai"])
def test_openai_sdk_end_to_end(server: str, route: str) -> None:
    response, body = read_stream(server, f"/{route}/hello")
    assert response.status_code == 200
    check_headers(response)
    events = llmsse.parse(body)
    assert "".join(texts(events)) == "Hello world"
    assert events[-1].event == "done"
    assert '"finish_reason":"stop"' in events[-1].data.replace(" ", "")


@pytest.mark.parametrize("route", ["openai", "aopenai"])
def test_openai_sdk_disconnect_closes_the_model_request(
    server: str, fake_openai: FakeOpenAI, route: str
) -> None:
    before = len(fake_openai.calls_for("thinking"))
    event, _, left_at = first_event_then_hang_up(server, f"/{route}/thinking?hb={HEARTBEAT}")
    assert event.data == "Hmm"
    call = fake_openai.calls_for("thinking")[before]
    deadline = left_at + WSGI_LIMIT + 0.5
    while call.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert call.closed_at is not None, "the request to the model was never closed"
    assert call.closed_at - left_at < WSGI_LIMIT
    assert not call.completed


def test_async_stream_opened_in_an_async_view_is_refused(server: str) -> None:
    with httpx.Client(timeout=10) as client:
        response = client.get(server + "/aopenai-eager/hello")
    assert response.status_code == 500
    assert b"async generator" in response.content


def test_no_thread_is_left_behind_after_disconnects(
    fake_openai: FakeOpenAI, record_dir: Path
) -> None:
    import threading

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LLMSSE_RECORD_DIR", str(record_dir))
        from integration.apps.flask_app import app

        with serve_wsgi(app) as base_url:
            for kind in ("sync", "async"):
                for n in range(3):
                    first_event_then_hang_up(base_url, f"/{kind}/idle?tag=leak-{kind}-{n}&hb=0.3")
            deadline = time.monotonic() + 3
            while time.monotonic() < deadline:
                names = [t.name for t in threading.enumerate()]
                if not any(name.startswith("llmsse-reader") for name in names):
                    break
                time.sleep(0.05)
    assert not [name for name in names if name.startswith("llmsse-reader")]
    # The async sources ran on the one shared background loop, not a loop per request.
    assert names.count("llmsse-async-bridge") <= 1
