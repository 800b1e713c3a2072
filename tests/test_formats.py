"""The "text" and "openai" formats, item by item (no I/O: iter_sse without heartbeats)."""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from openai.types.chat import ChatCompletionChunk

import llmsse
from _chunks import answer, chunk, usage_chunk
from llmsse import ServerSentEvent, StreamResult
from llmsse.testing import FakeStream, api_error


def run(source: Any, **options: Any) -> tuple[list[ServerSentEvent], StreamResult]:
    results: list[StreamResult] = []
    body = b"".join(llmsse.iter_sse(source, heartbeat=None, on_complete=results.append, **options))
    assert b"\r" not in body
    assert len(results) == 1
    return llmsse.parse(body), results[0]


def kinds(events: list[ServerSentEvent]) -> list[tuple[str | None, str | None]]:
    return [(e.event, e.data) for e in events]


# --- "text" ---------------------------------------------------------------------------


def test_text_deltas_become_unnamed_events_and_done_carries_usage() -> None:
    events, result = run(answer("Hello", ", ", "world"))
    assert kinds(events)[:-1] == [("message", "Hello"), ("message", ", "), ("message", "world")]
    assert events[-1].event == "done"
    assert json.loads(events[-1].data or "") == {
        "finish_reason": "stop",
        "usage": {"prompt_tokens": 5, "completion_tokens": 7, "total_tokens": 12},
    }
    assert result.text == "Hello, world"
    assert result.outcome == "finished"


def test_multi_line_text_survives_with_line_breaks_as_lf() -> None:
    events, result = run(answer("def f():\n", "    return 1\r\n\nend\r"))
    # The CR that ends the last delta could have been half of a CRLF: it waits for the
    # next delta, and goes out on its own before "done" when none comes.
    assert [e.data for e in events if e.event == "message"] == [
        "def f():\n",
        "    return 1\n\nend",
        "\n",
    ]
    assert result.text == "def f():\n    return 1\r\n\nend\r"


def messages(events: list[ServerSentEvent], kind: str = "message") -> str:
    return "".join(e.data or "" for e in events if e.event == kind)


@pytest.mark.parametrize("as_str", [False, True])
@pytest.mark.parametrize(
    ("pieces", "read"),
    [
        (["a\r", "\nb"], "a\nb"),  # one CRLF split between two deltas: one line break
        (["a\r", "b"], "a\nb"),
        (["x", "a\r", "\nb"], "xa\nb"),  # not the first delta (another path for str)
        (["a\r", "\r\n", "b"], "a\n\nb"),
        (["\r", "\r", "\n"], "\n\n"),
        (["a\r", "", "\nb"], "a\nb"),  # an empty delta between the halves
        (["a\r"], "a\n"),  # held to the end, then sent before "done"
        (["\r"], "\n"),
    ],
)
def test_a_crlf_split_between_deltas_is_one_line_break(
    pieces: list[str], read: str, as_str: bool
) -> None:
    events, result = run(list(pieces) if as_str else answer(*pieces))
    assert messages(events) == read
    assert events[-1].event == "done"
    assert result.text == "".join(pieces)


def test_a_held_cr_waits_for_its_own_kind_of_text() -> None:
    source = [
        chunk({"reasoning_content": "think\r"}),
        chunk({"content": "x\r"}),
        chunk({"reasoning_content": "\nmore"}),
        chunk({"content": "\ny", "refusal": "no\r"}),
        chunk({}, "stop"),
    ]
    events, result = run(source)
    assert messages(events) == "x\ny"
    assert messages(events, "reasoning") == "think\nmore"
    assert messages(events, "refusal") == "no\n"
    assert [e.event for e in events][-2:] == ["refusal", "done"]
    assert result.reasoning == "think\r\nmore"


def test_a_held_cr_goes_out_before_the_error_event() -> None:
    events, _ = run(FakeStream(answer("a\r", usage=False), error=api_error("x")))
    assert kinds(events)[-2] == ("message", "\n")
    assert events[-1].event == "error"
    assert messages(events) == "a\n"


def test_a_held_cr_keeps_ids_consecutive() -> None:
    events, _ = run(answer("a\r", "\nb", "c\r"), ids=True)
    assert kinds(events)[:-1] == [
        ("message", "a"),
        ("message", "\nb"),
        ("message", "c"),
        ("message", "\n"),
    ]
    assert [e.id for e in events] == ["1", "2", "3", "4", "5"]


def test_a_crlf_split_between_deltas_async() -> None:
    results: list[StreamResult] = []

    async def source() -> Any:
        for item in answer("a\r", "\nb\r"):
            yield item

    async def main() -> bytes:
        stream = llmsse.aiter_sse(source(), heartbeat=None, on_complete=results.append)
        return b"".join([part async for part in stream])

    assert messages(llmsse.parse(anyio.run(main))) == "a\nb\n"
    assert results[0].text == "a\r\nb\r"


def test_empty_and_missing_content_is_skipped() -> None:
    source = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": None}),
        chunk({}, "stop"),
    ]
    events, _ = run(source)
    assert [e.event for e in events] == ["done"]


def test_the_terminal_event_waits_for_the_usage_chunk() -> None:
    events, _ = run([*answer("a", usage=False), usage_chunk(1, 2)])
    assert json.loads(events[-1].data or "")["usage"]["total_tokens"] == 3


@pytest.mark.parametrize(
    ("extra", "expected"),
    [
        ({"reasoning_content": "think"}, "think"),
        ({"reasoning": "think"}, "think"),
        # vLLM's shim fills both with the same text: do not send it twice.
        ({"reasoning_content": "think", "reasoning": "think"}, "think"),
    ],
)
def test_reasoning_deltas(extra: dict[str, str], expected: str) -> None:
    events, result = run([chunk(extra), chunk({"content": "answer"}), chunk({}, "stop")])
    assert kinds(events)[:2] == [("reasoning", expected), ("message", "answer")]
    assert result.reasoning == expected


def test_reasoning_and_text_in_one_chunk_come_in_order() -> None:
    events, _ = run([chunk({"reasoning_content": "r", "content": "t"}), chunk({}, "stop")])
    assert kinds(events)[:2] == [("reasoning", "r"), ("message", "t")]


def test_refusal_deltas() -> None:
    source = [
        chunk({"role": "assistant", "refusal": "I can't"}),
        chunk({"refusal": " help."}),
        chunk({}, "stop"),
    ]
    events, result = run(source)
    assert kinds(events)[:2] == [("refusal", "I can't"), ("refusal", " help.")]
    assert result.refusal == "I can't help."


def test_non_string_refusal_is_ignored() -> None:
    events, _ = run([chunk({"refusal": False, "content": "ok"}), chunk({}, "stop")])
    assert kinds(events)[0] == ("message", "ok")


def _call(
    index: int | None, id: str | None = None, name: str | None = None, args: str = ""
) -> dict[str, Any]:
    fn: dict[str, Any] = {"arguments": args}
    if name is not None:
        fn["name"] = name
    out: dict[str, Any] = {"index": index, "function": fn}
    if id is not None:
        out.update(id=id, type="function")
    return out


def test_parallel_tool_calls_are_assembled_and_sent_once_complete() -> None:
    source = [
        chunk(
            {"role": "assistant", "content": None, "tool_calls": [_call(0, "call_a", "weather")]}
        ),
        chunk({"tool_calls": [_call(0, args='{"city":')]}),
        chunk({"tool_calls": [_call(0, args='"Paris"}')]}),
        chunk({"tool_calls": [_call(1, "call_b", "time")]}),
        chunk({"tool_calls": [_call(1, args="{}")]}),
        chunk({}, "tool_calls"),
        usage_chunk(),
    ]
    events, result = run(source)
    calls = [json.loads(e.data or "") for e in events if e.event == "tool_call"]
    assert calls == [
        {"index": 0, "id": "call_a", "name": "weather", "arguments": '{"city":"Paris"}'},
        {"index": 1, "id": "call_b", "name": "time", "arguments": "{}"},
    ]
    assert [e.event for e in events] == ["tool_call", "tool_call", "done"]
    assert json.loads(events[-1].data or "")["finish_reason"] == "tool_calls"
    assert [c.name for c in result.tool_calls] == ["weather", "time"]


def test_tool_calls_without_index_are_told_apart_by_id() -> None:
    # Gemini's OpenAI-compatible API sends whole calls with no index.
    source = [
        chunk({"tool_calls": [_call(None, "c1", "a", "{}")]}),
        chunk({"tool_calls": [_call(None, "c2", "b", '{"x":1}')]}),
        chunk({}, "tool_calls"),
    ]
    _, result = run(source)
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [
        ("c1", "a", "{}"),
        ("c2", "b", '{"x":1}'),
    ]


def test_tool_call_without_finish_reason_is_sent_at_the_end() -> None:
    events, _ = run([chunk({"tool_calls": [_call(0, "c1", "a", "{}")]})])
    assert [e.event for e in events] == ["tool_call", "done"]


def test_n_greater_than_one_sends_choice_zero_only() -> None:
    source = [
        chunk({"content": "zero"}, index=0),
        chunk({"content": "one"}, index=1),
        chunk({}, "stop", index=1),
        chunk({"content": "!"}, index=0),
        chunk({}, "length", index=0),
    ]
    events, result = run(source)
    assert kinds(events)[:2] == [("message", "zero"), ("message", "!")]
    assert result.text == "zero!"
    assert result.finish_reason == "length"


def test_azure_first_chunk_and_unvalidated_nones() -> None:
    azure = ChatCompletionChunk.construct(
        id="",
        object="",
        created=0,
        model="",
        choices=[],
        prompt_filter_results=[{"prompt_index": 0}],
    )
    source = [
        azure,
        chunk(choices=None),  # type: ignore[arg-type]
        chunk(choices=[{"index": 0, "delta": None, "finish_reason": None}]),
        chunk(choices=[{"index": None, "delta": {"content": "hi"}, "finish_reason": None}]),
        chunk({}, "eos"),
    ]
    events, result = run(source)
    assert kinds(events)[0] == ("message", "hi")
    assert result.finish_reason == "eos"


def test_content_as_a_list_of_parts() -> None:
    parts = [
        {"type": "thinking", "thinking": [{"type": "text", "text": "hmm"}]},
        {"type": "text", "text": "yes"},
    ]
    events, result = run([chunk({"content": parts}), chunk({}, "stop")])
    assert kinds(events)[:2] == [("reasoning", "hmm"), ("message", "yes")]
    assert result.text == "yes"


def test_str_and_event_sources() -> None:
    events, result = run(["a\nb", "", "c"])
    assert kinds(events) == [
        ("message", "a\nb"),
        ("message", "c"),
        ("done", '{"finish_reason":null,"usage":null}'),
    ]
    assert result.text == "a\nbc"
    mine = [ServerSentEvent("x", event="custom", id="7"), ServerSentEvent(comment="note")]
    assert b"".join(llmsse.iter_sse(mine, heartbeat=None)).startswith(
        b"event: custom\nid: 7\ndata: x\n\n: note\n\n"
    )


def test_retry_first_and_ids_on_every_event() -> None:
    body = b"".join(llmsse.iter_sse(answer("a", "b"), heartbeat=None, retry=2500, ids=True))
    assert body.startswith(b"retry: 2500\n\n")
    events = llmsse.parse(body)
    assert [e.id for e in events] == ["1", "2", "3"]
    assert events[-1].event == "done"


def test_lone_surrogate_is_escaped_not_fatal() -> None:
    events, _ = run(
        [chunk({"tool_calls": [_call(0, "c", "f", '{"s":"\ud83d')]}), chunk({}, "stop")]
    )
    assert "\\ud83d" in (events[0].data or "")


# --- "openai" -------------------------------------------------------------------------


def test_openai_passes_chunks_through_with_extras_and_ends_with_done() -> None:
    source = [
        chunk({"role": "assistant", "content": ""}, obfuscation="abc"),
        chunk({"content": "hi", "reasoning_content": "r"}),
        chunk(
            choices=[
                {
                    "index": 0,
                    "delta": {},
                    "finish_reason": "stop",
                    "content_filter_results": {"hate": {"filtered": False}},
                }
            ]
        ),
        usage_chunk(),
    ]
    body = b"".join(llmsse.iter_sse(source, format="openai", heartbeat=None))
    events = llmsse.parse(body)
    assert events[-1].data == "[DONE]"
    sent = [json.loads(e.data or "") for e in events[:-1]]
    assert sent[0]["obfuscation"] == "abc"
    assert sent[1]["choices"][0]["delta"] == {"content": "hi", "reasoning_content": "r"}
    assert sent[2]["choices"][0]["content_filter_results"] == {"hate": {"filtered": False}}
    assert sent[3]["choices"] == [] and sent[3]["usage"]["total_tokens"] == 12
    # Only the fields the upstream sent: no "usage": null invented on content chunks.
    assert "usage" not in sent[1]


def test_openai_wraps_str_pieces_in_chunks() -> None:
    events = llmsse.parse(b"".join(llmsse.iter_sse(["a", "b"], format="openai", heartbeat=None)))
    sent = [json.loads(e.data or "") for e in events[:-1]]
    assert [c["choices"][0]["delta"] for c in sent] == [{"content": "a"}, {"content": "b"}, {}]
    assert sent[-1]["choices"][0]["finish_reason"] == "stop"
    assert {c["object"] for c in sent} == {"chat.completion.chunk"}
    assert len({c["id"] for c in sent}) == 1


def test_sse_headers() -> None:
    headers = llmsse.sse_headers()
    assert headers["Content-Type"] == "text/event-stream; charset=utf-8"
    assert headers["Cache-Control"] == "no-cache"
    assert headers["X-Accel-Buffering"] == "no"
    assert "Connection" not in headers
    with pytest.raises(ValueError, match="unknown format"):
        llmsse.sse_headers("nope")


def test_a_user_defined_format() -> None:
    class Shout(llmsse.Format):
        name = "shout"

        def chunk(self, chunk: Any) -> bytes:
            text = self.state.absorb(chunk)
            return llmsse.ServerSentEvent(text.upper()).encode() if text else b""

        def finish(self) -> bytes:
            return b"event: bye\ndata: \n\n"

        def error(self, error: Any) -> bytes:
            return b"event: oops\ndata: \n\n"

    events, result = run(answer("hi"), format=Shout)
    assert kinds(events) == [("message", "HI"), ("bye", "")]
    assert result.text == "hi"


def test_chunk_objects_of_another_sdk() -> None:
    """Plain objects with only some of the attributes (as other SDKs build them)."""
    from types import SimpleNamespace as NS

    def ns_chunk(**delta: Any) -> NS:
        return NS(choices=[NS(index=0, delta=NS(**delta), finish_reason=None)])

    fn = NS(name="lookup", arguments={"q": "x"})  # arguments as an object, not a string
    source = [
        ns_chunk(content="Hi ", reasoning="why"),
        ns_chunk(content="there", refusal=None),
        ns_chunk(tool_calls=[NS(index=0, id="t1", function=fn)]),
        NS(
            choices=[NS(index=0, delta=None, finish_reason="tool_calls")], usage={"total_tokens": 3}
        ),
    ]
    events, result = run(source)
    assert kinds(events)[:3] == [("reasoning", "why"), ("message", "Hi "), ("message", "there")]
    assert json.loads(events[3].data or "")["arguments"] == '{"q":"x"}'
    assert json.loads(events[-1].data or "") == {
        "finish_reason": "tool_calls",
        "usage": {"total_tokens": 3},
    }
    assert (result.text, result.reasoning) == ("Hi there", "why")


def test_openai_format_accumulates_for_on_complete() -> None:
    source = [
        chunk({"reasoning_content": "r"}),
        chunk({"content": "Hello"}),
        chunk({"tool_calls": [_call(0, "c1", "f", "{}")]}),
        chunk({}, "tool_calls"),
        usage_chunk(),
    ]
    events, result = run(source, format="openai")
    assert events[-1].data == "[DONE]"
    assert (result.text, result.reasoning, result.finish_reason) == ("Hello", "r", "tool_calls")
    assert [(c.id, c.name) for c in result.tool_calls] == [("c1", "f")]
    assert result.usage is not None and result.usage["total_tokens"] == 12
