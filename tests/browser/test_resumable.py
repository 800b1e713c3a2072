"""docs/resumable.md in a real browser: its FastAPI app and its EventSource page code.

The server cuts the first connection of every stream after a few events, as a network
switch would; Chromium's EventSource reconnects by itself with ``Last-Event-ID`` and the
page ends with the whole answer, each piece once. A reload in the middle of an answer
replays it from the start.
"""

from __future__ import annotations

import contextlib
import importlib.util
import re
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmsse.testing import FakeChatServer, FakeOpenAI, echo

pytestmark = pytest.mark.browser

DOC = Path(__file__).resolve().parents[2] / "docs" / "resumable.md"
PROMPT = "please survive the network " * 6
ANSWER = f"You said: {PROMPT}"
#: Body messages the first connection of a stream gets before the server cuts it.
CUT_AFTER = 4

PAGE = """<!doctype html>
<meta charset="utf-8">
<div id="answer"></div><div id="problem"></div><button id="stopButton">Stop</button>
<script>
function showError(message) { document.getElementById("problem").textContent = message; }
%s
</script>
"""


def doc_code(language: str, marker: str) -> str:
    """The doc's code block in ``language`` that contains ``marker``."""
    text = DOC.read_text(encoding="utf-8")
    for code in re.findall(rf"```{language}\n(.*?)```", text, re.S):
        if marker in code:
            return str(code)
    raise AssertionError(f"no {language} block with {marker!r} in {DOC.name}")


class CuttingApp:
    """Serves the page, and the doc's app with the first connection of each stream cut."""

    def __init__(self, app: Any) -> None:
        self.app = app
        #: The Last-Event-ID of every GET of a stream (None: a first connection).
        self.last_ids: list[str | None] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if scope["path"] == "/":
            body = (PAGE % doc_code("js", "function follow(id)")).encode()
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if not scope["path"].endswith("/stream"):
            await self.app(scope, receive, send)
            return
        last = dict(scope["headers"]).get(b"last-event-id")
        self.last_ids.append(last.decode() if last is not None else None)
        if last is not None:
            await self.app(scope, receive, send)
            return
        sent = 0

        async def cut(message: Any) -> None:
            nonlocal sent
            if sent >= CUT_AFTER:
                raise OSError("connection cut")  # what a dead client's send does
            if message["type"] == "http.response.body":
                sent += 1
                if sent >= CUT_AFTER:
                    message = {**message, "more_body": False}
            await send(message)

        await self.app(scope, receive, cut)


@contextlib.contextmanager
def serve_asgi(app: Any) -> Iterator[str]:
    """uvicorn on 127.0.0.1 and a free port, in a thread; its base URL."""
    import uvicorn

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=5)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, CuttingApp]]:
    fake = FakeOpenAI(default=echo, delay=0.05)
    path = tmp_path_factory.mktemp("resumable_browser") / "fastapi_app.py"
    path.write_text(doc_code("python", "# fastapi_app.py"), encoding="utf-8")
    with FakeChatServer(fake) as server, pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_BASE_URL", server.base_url)
        patch.setenv("OPENAI_API_KEY", "sk-fake")
        spec = importlib.util.spec_from_file_location("resumable_browser_app", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[spec.name] = module
        try:
            spec.loader.exec_module(module)
            app = CuttingApp(module.app)
            with serve_asgi(app) as base_url:
                yield base_url, app
        finally:
            sys.modules.pop(spec.name, None)


def wait_for_the_answer(page: Any) -> None:
    page.wait_for_function(
        "([answer]) => document.getElementById('answer').textContent === answer"
        " && sessionStorage.getItem('stream') === null",
        arg=[ANSWER],
        timeout=20_000,
    )


def test_eventsource_resumes_after_the_connection_is_cut(
    page: Any, served: tuple[str, CuttingApp]
) -> None:
    base_url, app = served
    app.last_ids.clear()
    page.goto(base_url + "/")
    page.evaluate("(prompt) => ask(prompt)", PROMPT)
    wait_for_the_answer(page)
    assert page.inner_text("#problem") == ""
    # Cut once, resumed once, from the last event the browser had.
    assert len(app.last_ids) == 2 and app.last_ids[0] is None
    assert app.last_ids[1] is not None and int(app.last_ids[1]) >= 1


def test_a_reload_replays_the_answer_from_the_start(
    page: Any, served: tuple[str, CuttingApp]
) -> None:
    base_url, _ = served
    page.goto(base_url + "/")
    page.evaluate("(prompt) => ask(prompt)", PROMPT)
    page.wait_for_function("document.getElementById('answer').textContent.length > 0")
    page.reload()
    wait_for_the_answer(page)
