"""``python -m llmsse demo``: its command line, and its server streaming for each framework."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator

import httpx
import pytest

from browser._demo import CONFIGS, Demo, demo_env, running_demo, wait_for
from llmsse.demo import brain
from llmsse.demo.service import BadRequest, DemoService
from llmsse.testing import FakeChatServer, FakeOpenAI, Reply, http_error, read_text_stream


def run_cli(*args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "llmsse", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=demo_env(),
    )


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0]


# -- the command line --------------------------------------------------------------------


def test_help() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_no_command_prints_help() -> None:
    result = run_cli()
    assert result.returncode == 0
    assert "demo" in result.stdout


def test_demo_help_lists_the_options() -> None:
    result = run_cli("demo", "--help")
    assert result.returncode == 0
    for option in ("--framework", "--host", "--port", "--model", "--server", "OPENAI_API_KEY"):
        assert option in result.stdout


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["demo", "--bogus"], "unrecognized arguments: --bogus"),
        (["demo", "--framework", "bottle"], "invalid choice: 'bottle'"),
        (["demo", "--port", "99999"], "between 0 and 65535"),
        (["demo", "--port", "http"], "not a port number"),
        (["demo", "--framework", "flask", "--server", "uvicorn"], "runs under werkzeug"),
        (["serve"], "invalid choice: 'serve'"),
    ],
)
def test_bad_option_is_one_line(args: list[str], needle: str) -> None:
    assert_one_line_error(run_cli(*args), needle)


def test_taken_port_is_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_cli("demo", "--port", str(port))
    assert result.returncode == 1
    assert_one_line_error(result, f"cannot listen on 127.0.0.1:{port}", "in use")


def test_unknown_host_is_one_line() -> None:
    result = run_cli("demo", "--host", "no-such-host.invalid")
    assert_one_line_error(result, "cannot listen on no-such-host.invalid")


def test_import_llmsse_does_not_import_the_demo() -> None:
    code = "import sys, llmsse; print(sorted(m for m in sys.modules if m.startswith('llmsse.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "llmsse.demo" not in out.stdout
    assert "llmsse.testing" not in out.stdout


# -- the pieces, in process --------------------------------------------------------------


def test_brain_picks_a_reply_from_the_last_user_message() -> None:
    assert brain.reply([{"role": "user", "content": "Show me some code"}]).text == brain.CODE
    weather = brain.reply([{"role": "user", "content": "What is the weather in New York?"}])
    assert weather.tool_call is not None
    assert json.loads(weather.tool_call.arguments) == {"city": "New York"}
    assert weather.finish_reason == "tool_calls"
    assert brain.reply([{"role": "user", "content": "please fail"}]).fail
    assert brain.reply([{"role": "user", "content": "why?"}]).reasoning
    assert brain.reply([]).text == brain.HELLO


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"messages": []}',
        b'{"messages": [{"role": "system", "content": "x"}]}',
        b'{"messages": [{"role": "user", "content": 3}]}',
        b'{"messages": ["hi"]}',
    ],
)
def test_parse_chat_rejects_what_it_cannot_use(body: bytes) -> None:
    with pytest.raises(BadRequest):
        DemoService.parse_chat(body)


def test_parse_chat_keeps_role_and_content_only() -> None:
    body = b'{"messages": [{"role": "user", "content": "hi", "name": "x"}]}'
    assert DemoService.parse_chat(body) == [{"role": "user", "content": "hi"}]


# -- the server, in a subprocess ---------------------------------------------------------


@pytest.fixture(scope="module", params=list(CONFIGS))
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    with running_demo(*CONFIGS[request.param], "--delay", "0.005") as running:
        yield running


@pytest.mark.integration
def test_banner_names_the_framework_and_the_model(demo: Demo) -> None:
    assert demo.url.startswith("http://127.0.0.1:")
    assert "offline fake model" in demo.banner
    assert "Ctrl+C" in demo.banner


@pytest.mark.integration
def test_page_and_files_are_served(demo: Demo) -> None:
    page = httpx.get(demo.url, timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert "/static/app.js" in page.text
    script = httpx.get(demo.url + "static/app.js", timeout=5)
    assert script.status_code == 200
    assert "javascript" in script.headers["content-type"]
    assert httpx.get(demo.url + "static/nope.js", timeout=5).status_code == 404
    assert httpx.get(demo.url + "eventsource", timeout=5).status_code == 200


@pytest.mark.integration
def test_post_streams_the_exact_multi_line_answer(demo: Demo) -> None:
    body = {"messages": [{"role": "user", "content": "Show me some code"}]}
    response = httpx.post(demo.url + "api/chat", json=body, timeout=30)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    reply = read_text_stream(response.content)
    assert reply.text == brain.CODE
    assert reply.done is not None
    assert reply.done["finish_reason"] == "stop"
    assert reply.done["usage"]["completion_tokens"] > 0
    assert reply.error is None


@pytest.mark.integration
def test_reasoning_and_tool_call(demo: Demo) -> None:
    body = {"messages": [{"role": "user", "content": "What is the weather in Paris?"}]}
    reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body, timeout=30).content)
    assert reply.reasoning == brain.WEATHER_REASONING
    assert [(c.name, json.loads(c.arguments)) for c in reply.tool_calls] == [
        ("get_weather", {"city": "Paris"})
    ]
    assert reply.done is not None
    assert reply.done["finish_reason"] == "tool_calls"


@pytest.mark.integration
def test_upstream_failure_is_an_error_event(demo: Demo) -> None:
    body = {"messages": [{"role": "user", "content": "Make the model fail"}]}
    reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body, timeout=30).content)
    assert reply.text == brain.FAIL
    assert reply.done is None
    assert reply.error == {
        "error": {
            "type": "upstream_error",
            "message": "The model failed in the middle of its answer.",
        }
    }
    # The fake's own words never reach the client.
    assert b"on purpose" not in reply.body


@pytest.mark.integration
def test_get_for_eventsource_sends_retry_first(demo: Demo) -> None:
    response = httpx.get(demo.url + "api/chat", params={"q": "hello"}, timeout=30)
    assert response.content.startswith(b"retry: 500\n")
    assert read_text_stream(response.content).text == brain.HELLO


@pytest.mark.integration
def test_bad_request_is_400(demo: Demo) -> None:
    response = httpx.post(demo.url + "api/chat", content=b"{}", timeout=5)
    assert response.status_code == 400
    assert httpx.get(demo.url + "api/chat", timeout=5).status_code == 400


@pytest.mark.integration
def test_client_leaving_closes_the_upstream(demo: Demo) -> None:
    before = demo.stats()
    body = {"messages": [{"role": "user", "content": "Tell me a long story"}]}
    with httpx.stream("POST", demo.url + "api/chat", json=body, timeout=30) as response:
        received = b""
        for data in response.iter_bytes():
            received += data
            if received.count(b"\n\n") >= 5:
                break
    assert b"Chapter" in received

    def closed() -> bool:
        stats = demo.stats()
        upstream, outcomes = stats["upstream"], stats["outcomes"]
        assert isinstance(upstream, dict) and isinstance(outcomes, dict)
        return (
            upstream["closed_early"] > before["upstream"]["closed_early"]  # type: ignore[index]
            and outcomes["disconnected"] > before["outcomes"]["disconnected"]  # type: ignore[index]
        )

    wait_for(closed, timeout=10)


# -- with an API key: any OpenAI-compatible API ------------------------------------------


@pytest.mark.integration
@pytest.mark.parametrize("config", ["starlette", "flask"])
def test_with_a_key_it_streams_from_the_api_at_base_url(config: str) -> None:
    with FakeChatServer(FakeOpenAI(api_key="sk-test")) as api:
        api.reply(Reply("Hello from\nthe API", reasoning="Thinking"), http_error(500))
        env = {"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": api.base_url}
        with running_demo(*CONFIGS[config], "--model", "my-model", env=env) as demo:
            assert "model my-model at http://127.0.0.1:" in demo.banner
            body = {"messages": [{"role": "user", "content": "hi"}]}
            reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body).content)
            assert reply.text == "Hello from\nthe API"
            assert reply.reasoning == "Thinking"
            assert reply.done is not None and reply.done["finish_reason"] == "stop"

            request = api.fake.last_request
            assert request.model == "my-model"
            assert request.include_usage
            assert request.messages[0]["role"] == "system"
            assert request.messages[1:] == [{"role": "user", "content": "hi"}]
            assert request.json["tools"][0]["function"]["name"] == "get_weather"

            # An HTTP error from the API becomes the error event, with a message that helps.
            reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body).content)
            assert reply.error == {
                "error": {"type": "upstream_error", "message": "The model API answered HTTP 500."}
            }
            assert demo.stats()["mode"] == "api"


@pytest.mark.integration
def test_a_rejected_key_is_a_clear_error_event() -> None:
    with FakeChatServer(FakeOpenAI(api_key="sk-right")) as api:
        env = {"OPENAI_API_KEY": "sk-wrong", "OPENAI_BASE_URL": api.base_url}
        with running_demo(env=env) as demo:
            body = {"messages": [{"role": "user", "content": "hi"}]}
            reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body).content)
    assert reply.error is not None
    assert reply.error["error"]["message"] == (
        "The model API rejected the key (HTTP 401): check OPENAI_API_KEY."
    )
    assert b"sk-wrong" not in reply.body


@pytest.mark.integration
def test_offline_flag_ignores_the_key() -> None:
    env = {"OPENAI_API_KEY": "sk-unused", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}
    with running_demo("--offline", "--delay", "0", env=env) as demo:
        assert "offline fake model" in demo.banner
        body = {"messages": [{"role": "user", "content": "hello"}]}
        reply = read_text_stream(httpx.post(demo.url + "api/chat", json=body).content)
    assert reply.text == brain.HELLO


@pytest.mark.parametrize(
    ("origin", "host", "fetch_site"),
    [
        (None, "127.0.0.1:8000", "cross-site"),
        ("https://evil.example", "127.0.0.1:8000", None),
        ("http://127.0.0.1:9999", "127.0.0.1:8000", "same-site"),
    ],
)
def test_requests_from_other_sites_are_refused(
    origin: str | None, host: str, fetch_site: str | None
) -> None:
    with pytest.raises(BadRequest):
        DemoService.check_same_site(origin, host, fetch_site)


@pytest.mark.parametrize(
    ("origin", "host", "fetch_site"),
    [
        (None, "127.0.0.1:8000", None),  # curl
        ("http://127.0.0.1:8000", "127.0.0.1:8000", "same-origin"),  # the page's fetch
        (None, "localhost:8000", "same-origin"),  # EventSource, GET
    ],
)
def test_the_page_and_tools_are_let_through(
    origin: str | None, host: str, fetch_site: str | None
) -> None:
    DemoService.check_same_site(origin, host, fetch_site)


@pytest.mark.integration
def test_cross_site_request_is_refused_by_the_server(demo: Demo) -> None:
    body = {"messages": [{"role": "user", "content": "hello"}]}
    headers = {"Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}
    response = httpx.post(demo.url + "api/chat", json=body, headers=headers, timeout=5)
    assert response.status_code == 400
