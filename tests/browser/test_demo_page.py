"""The demo's chat page in headless Chromium, for every framework the demo runs on.

The page POSTs with ``fetch`` and renders the "text" format as it arrives; these tests check
what a user sees: the answer growing word by word, the exact text at the end, reasoning and
tool calls, the Stop button (and the server then closing the model's stream), the error
message. ``window.llmsseDemo`` exposes what the page received and a MutationObserver count.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from _demo import CONFIGS, Demo, running_demo, wait_for

from llmsse.demo import brain

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module", params=list(CONFIGS))
def demo(request: pytest.FixtureRequest) -> Iterator[Demo]:
    # 20 ms a word: a code answer takes about two seconds, plenty of DOM updates to see.
    with running_demo(*CONFIGS[request.param], "--delay", "0.02") as running:
        yield running


def ask(page: Any, demo: Demo, question: str) -> None:
    page.goto(demo.url)
    page.fill("#prompt", question)
    page.click("#send")


def turn(page: Any) -> dict[str, Any]:
    state: dict[str, Any] = page.evaluate("window.llmsseDemo.turns.at(-1)")
    return state


def wait_finished(page: Any) -> dict[str, Any]:
    page.wait_for_function("window.llmsseDemo.turns.at(-1)?.finished === true")
    return turn(page)


def test_answer_appears_word_by_word_and_ends_exact(page: Any, demo: Demo) -> None:
    ask(page, demo, "Show me some code")
    # Part of the answer is on screen while the rest is still coming.
    page.wait_for_function(
        "(() => { const t = window.llmsseDemo.turns.at(-1);"
        " return t && t.text.length > 0 && !t.finished && !t.done; })()"
    )
    partial = page.inner_text(".msg.assistant .answer")
    mutations_mid_answer = page.evaluate("window.llmsseDemo.mutations")
    result = wait_finished(page)

    assert result["text"] == brain.CODE
    assert result["done"]["finish_reason"] == "stop"
    assert result["error"] is None and not result["stopped"]
    assert 0 < len(partial) < len(brain.CODE)
    # Many separate DOM updates, not one at the end: one per word, roughly.
    assert result["events"] > 50
    assert page.evaluate("window.llmsseDemo.mutations") > mutations_mid_answer + 20

    # Rendered as Markdown: the fenced code block keeps its lines exactly.
    code = brain.CODE.split("```python\n")[1].split("```")[0].rstrip("\n")
    assert page.inner_text(".msg.assistant .answer pre code") == code
    paragraphs = page.locator(".msg.assistant .answer p").all_inner_texts()
    assert paragraphs[0] == "Here is a complete FastAPI endpoint that streams an answer:"
    assert paragraphs[-1] == (
        "The page reads it with fetch; each text delta is an unnamed event,\n"
        "and the stream ends with a done event."
    )
    assert "finish_reason: stop" in page.inner_text(".msg.assistant .meta")
    assert page.is_enabled("#send") and page.is_disabled("#stop")


def test_multi_line_greeting_is_exact(page: Any, demo: Demo) -> None:
    ask(page, demo, "hello")
    result = wait_finished(page)
    assert result["text"] == brain.HELLO
    assert "\n" in result["text"]
    paragraphs = page.locator(".msg.assistant .answer p").all_inner_texts()
    assert paragraphs == brain.HELLO.replace("`", "").split("\n\n")


def test_reasoning_and_tool_call_are_shown(page: Any, demo: Demo) -> None:
    ask(page, demo, "What is the weather in Paris?")
    result = wait_finished(page)
    assert result["reasoning"] == brain.WEATHER_REASONING
    assert page.inner_text(".msg.assistant details.reasoning div") == brain.WEATHER_REASONING
    assert [(c["name"], c["arguments"]) for c in result["toolCalls"]] == [
        ("get_weather", '{"city": "Paris"}')
    ]
    card = page.inner_text(".msg.assistant .tool-call")
    assert "Tool call: get_weather" in card and '"city": "Paris"' in card
    assert result["done"]["finish_reason"] == "tool_calls"


def test_stop_aborts_and_the_server_closes_the_upstream(page: Any, demo: Demo) -> None:
    before = demo.stats()
    ask(page, demo, "Tell me a long story")
    page.wait_for_function("window.llmsseDemo.turns.at(-1)?.text.length > 100")
    page.click("#stop")
    result = wait_finished(page)

    assert result["stopped"] is True
    assert result["done"] is None and result["error"] is None
    assert 100 < len(result["text"]) < len(brain.STORY)
    assert brain.STORY.startswith(result["text"])
    assert "Stopped" in page.inner_text(".msg.assistant")

    def upstream_closed() -> bool:
        stats: Any = demo.stats()
        return bool(
            stats["upstream"]["closed_early"] > before["upstream"]["closed_early"]  # type: ignore[index]
            and stats["outcomes"]["disconnected"] > before["outcomes"]["disconnected"]  # type: ignore[index]
        )

    # The server noticed the abort and closed the model's HTTP stream long before its end
    # (the whole story takes several seconds at this pace).
    wait_for(upstream_closed, timeout=5)
    assert demo.stats()["upstream"]["open"] == 0  # type: ignore[index]


def test_error_event_shows_a_clear_message(page: Any, demo: Demo) -> None:
    ask(page, demo, "Make the model fail")
    result = wait_finished(page)
    assert result["error"] == {
        "type": "upstream_error",
        "message": "The model failed in the middle of its answer.",
    }
    assert result["text"] == brain.FAIL
    assert result["done"] is None
    assert page.inner_text(".msg.assistant .error") == (
        "⚠ The model failed in the middle of its answer."
    )
    assert page.is_enabled("#send")


def test_conversation_goes_on_after_an_answer(page: Any, demo: Demo) -> None:
    ask(page, demo, "hello")
    wait_finished(page)
    page.fill("#prompt", "and now some code")
    page.press("#prompt", "Enter")
    page.wait_for_function("window.llmsseDemo.turns.length === 2")
    result = wait_finished(page)
    assert result["text"] == brain.CODE
    assert page.locator(".msg.user").count() == 2
