"""The EventSource page published in docs/starlette.md, run in headless Chromium."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from starlette.responses import Response

from llmsse.starlette import SSEResponse, sse_response

from .servers import serve_asgi

pytestmark = [
    pytest.mark.integration,
    pytest.mark.browser,
    # Skipped without a browser, except on CI (CI set), where it must run (tests/browser too).
    pytest.mark.skipif(
        shutil.which("chromium") is None and not os.environ.get("CI"),
        reason="needs Debian's chromium: apt-get install chromium",
    ),
]

DOCS = Path(__file__).resolve().parents[2] / "docs" / "starlette.md"


def eventsource_app(fail: bool, hits: list[float]) -> FastAPI:
    match = re.search(r"```html\n(.*?)```", DOCS.read_text(), re.S)
    assert match, "the EventSource page is not in docs/starlette.md"
    page = "<!doctype html><html><body>" + match.group(1) + "</body></html>"
    app = FastAPI()
    app.add_route("/", lambda request: Response(page, media_type="text/html"))

    @app.get("/ask")
    async def ask(q: str) -> SSEResponse:
        hits.append(time.monotonic())

        async def answer() -> AsyncIterator[str]:
            yield "Why did"
            yield "\nthe chicken"
            if fail:
                raise RuntimeError("secret")

        # retry=100: a reconnect, if the page did not stop it, would come within 0.1 s.
        return sse_response(answer(), retry=100)

    return app


@pytest.mark.parametrize(
    ("fail", "shown"),
    [
        (False, "Why did\nthe chicken"),
        (True, "Why did\nthe chicken\n[The response could not be completed.]"),
    ],
    ids=["done", "error"],
)
def test_the_documented_page_shows_the_answer_and_does_not_reconnect(
    fail: bool, shown: str
) -> None:
    hits: list[float] = []
    with serve_asgi(eventsource_app(fail, hits), "uvicorn") as url:
        dom = subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu",
             "--virtual-time-budget=2000", "--dump-dom", url + "/"],
            capture_output=True, text=True, timeout=60, check=True,
        ).stdout  # fmt: skip
    answer = re.search(r'<pre id="answer">(.*?)</pre>', dom, re.S)
    assert answer is not None, dom
    assert answer.group(1) == shown
    assert len(hits) == 1, "EventSource reconnected: the page must close it on done and error"
