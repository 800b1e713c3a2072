"""A plain ``new EventSource(url)`` page reading the "text" format (the demo's /eventsource).

The page closes the EventSource on ``done`` (and on llmsse's ``error`` event): the tests
check that the browser then never reconnects, although the server asks for a 500 ms
reconnection delay (``retry: 500``) that would show a reconnect within the wait.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from _demo import CONFIGS, Demo, running_demo

from llmsse.demo import brain

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=list(CONFIGS))
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    with running_demo(*CONFIGS[request.param], "--delay", "0.01") as running:
        yield running


def read_with_eventsource(page: Any, demo: Demo, question: str) -> dict[str, Any]:
    page.goto(demo.url + "eventsource")
    page.fill("#prompt", question)
    page.click("#send")
    page.wait_for_function("window.esState.closed === true")
    state: dict[str, Any] = page.evaluate("window.esState")
    return state


def requests_made(demo: Demo) -> int:
    return int(demo.stats()["requests"])  # type: ignore[call-overload]


def test_eventsource_reads_the_answer_and_closes_on_done(page: Any, demo: Demo) -> None:
    before = requests_made(demo)
    state = read_with_eventsource(page, demo, "Show me some code")
    assert state["text"] == brain.CODE
    assert state["done"]["finish_reason"] == "stop"
    assert page.inner_text("#answer") == brain.CODE

    time.sleep(1.5)  # three times the retry delay the server sent
    state = page.evaluate("window.esState")
    assert state["opens"] == 1
    assert state["connectionErrors"] == 0
    assert requests_made(demo) == before + 1


def test_eventsource_sees_the_error_event_and_closes(page: Any, demo: Demo) -> None:
    before = requests_made(demo)
    state = read_with_eventsource(page, demo, "Make the model fail")
    assert state["error"]["message"] == "The model failed in the middle of its answer."
    assert state["text"] == brain.FAIL
    assert state["done"] is None
    time.sleep(1.5)
    assert page.evaluate("window.esState.opens") == 1
    assert requests_made(demo) == before + 1
