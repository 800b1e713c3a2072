"""A Responses API source (``client.responses.create(stream=True)``) in every format.

The events are the openai SDK's own objects (``llmsse.testing.response_events``) or come
from the real SDK reading a fake API; what each format sends, what ``on_complete``
gets, how failures end, and that every format rebuilds the same answer.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import anyio
import openai
import pytest
from hypothesis import given, settings

import llmsse
from _responses import mixed_events, ops
from llmsse import StreamResult, ToolCall, UpstreamError
from llmsse._errors import GENERIC_MESSAGE
from llmsse.testing import (
    FakeAsyncStream,
    FakeOpenAI,
    FakeStream,
    Reply,
    response_event_dicts,
    response_events,
    responses_sse_body,
    to_response_event,
    tool_call,
)

FORMATS = ["text", "openai", "ai-sdk", "ag-ui"]
SECRET = "sk-upstream-secret in the upstream message"

USAGE = {
    "prompt_tokens": 10,
    "prompt_tokens_details": {"cached_tokens": 0},
    "completion_tokens": 16,
    "completion_tokens_details": {"reasoning_tokens": 0},
    "total_tokens": 26,
}


def run(source: Any, **options: Any) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []
    options.setdefault("heartbeat", None)
    body = b"".join(llmsse.iter_sse(source, on_complete=results.append, **options))
    (result,) = results
    return body, result


def arun(source: Any, **options: Any) -> tuple[bytes, StreamResult]:
    results: list[StreamResult] = []
    options.setdefault("heartbeat", None)

    async def main() -> bytes:
        stream = llmsse.aiter_sse(source, on_complete=results.append, **options)
        return b"".join([part async for part in stream])

    body = anyio.run(main)
    (result,) = results
    return body, result


def json_events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(e.data or "") for e in llmsse.parse(body) if e.data not in (None, "[DONE]")]


def example() -> list[Any]:
    return response_events(
        ["Checking ", "Paris…\n"],
        reasoning=[["Need ", "weather."], ["Then answer."]],
        tool_calls=[
            tool_call(
                "get_weather", {"city": "Paris"}, id="call_1", pieces=['{"city":', '"Paris"}']
            )
        ],
    )


# --- what each format sends --------------------------------------------------------------


def test_text_format() -> None:
    body, result = run(example())
    events = [(e.event, e.data) for e in llmsse.parse(body)]
    assert events == [
        ("reasoning", "Need "),
        ("reasoning", "weather."),
        ("reasoning", "\n\n"),  # a new summary part
        ("reasoning", "Then answer."),
        ("message", "Checking "),
        ("message", "Paris…\n"),
        (
            "tool_call",
            '{"index":0,"id":"call_1","name":"get_weather","arguments":"{\\"city\\":\\"Paris\\"}"}',
        ),
        (
            "done",
            json.dumps({"finish_reason": "tool_calls", "usage": USAGE}, separators=(",", ":")),
        ),
    ]
    assert result.reasoning == "Need weather.\n\nThen answer."


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("runner", [run, arun], ids=["sync", "async"])
def test_on_complete_gets_the_whole_message(fmt: str, runner: Callable[..., Any]) -> None:
    source = response_events(
        "Hello world",
        reasoning="Think first",
        refusal="No.",
        tool_calls=[tool_call("f", {"a": 1}), tool_call("g", "{}", id="call_g")],
    )
    _, result = runner(source, format=fmt)
    assert result.text == "Hello world"
    assert result.reasoning == "Think first"
    assert result.refusal == "No."
    assert result.tool_calls == [
        ToolCall(index=0, id="call_0", name="f", arguments='{"a":1}'),
        ToolCall(index=1, id="call_g", name="g", arguments="{}"),
    ]
    assert (result.finish_reason, result.usage) == ("tool_calls", USAGE)
    assert (result.outcome, result.error) == ("finished", None)


def test_ai_sdk_format() -> None:
    body, _ = run(example(), format="ai-sdk")
    assert json_events(body) == [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "reasoning-0"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "Need "},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "weather."},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "\n\n"},
        {"type": "reasoning-delta", "id": "reasoning-0", "delta": "Then answer."},
        {"type": "reasoning-end", "id": "reasoning-0"},
        {"type": "text-start", "id": "text-1"},
        {"type": "text-delta", "id": "text-1", "delta": "Checking "},
        {"type": "text-delta", "id": "text-1", "delta": "Paris…\n"},
        {"type": "text-end", "id": "text-1"},
        {"type": "tool-input-start", "toolCallId": "call_1", "toolName": "get_weather"},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '{"city":'},
        {"type": "tool-input-delta", "toolCallId": "call_1", "inputTextDelta": '"Paris"}'},
        {
            "type": "tool-input-available",
            "toolCallId": "call_1",
            "toolName": "get_weather",
            "input": {"city": "Paris"},
        },
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "tool-calls", "messageMetadata": {"usage": USAGE}},
    ]
    assert body.endswith(b"data: [DONE]\n\n")


def test_ag_ui_format() -> None:
    from functools import partial

    from llmsse.formats import AGUIFormat

    fmt = partial(AGUIFormat, thread_id="t", run_id="r", message_id="m", reasoning_id="rs")
    body, _ = run(response_events("Hi", tool_calls=[tool_call("f", "{}", id="c")]), format=fmt)
    assert [(e["type"], e.get("delta")) for e in json_events(body)] == [
        ("RUN_STARTED", None),
        ("TEXT_MESSAGE_START", None),
        ("TEXT_MESSAGE_CONTENT", "Hi"),
        ("TEXT_MESSAGE_END", None),
        ("TOOL_CALL_START", None),
        ("TOOL_CALL_ARGS", "{}"),
        ("TOOL_CALL_END", None),
        ("RUN_FINISHED", None),
    ]
    start = json_events(body)[4]
    assert start == {
        "type": "TOOL_CALL_START",
        "toolCallId": "c",
        "toolCallName": "f",
        "parentMessageId": "m",
    }


def test_openai_format_passes_the_responses_wire_format_through() -> None:
    dicts = response_event_dicts("Hi there", reasoning="r", tool_calls=[("f", {"x": 1})])
    body, result = run([to_response_event(d) for d in dicts], format="openai")
    events = llmsse.parse(body)
    assert [e.event for e in events] == [d["type"] for d in dicts]
    assert [json.loads(e.data or "") for e in events] == dicts
    assert b"[DONE]" not in body
    assert (result.text, result.reasoning, result.finish_reason) == ("Hi there", "r", "tool_calls")


def test_openai_format_with_retry_and_ids() -> None:
    dicts = response_event_dicts("a b")
    body, _ = run([to_response_event(d) for d in dicts], format="openai", retry=1500, ids=True)
    events = llmsse.parse(body)
    assert [(e.event, e.id) for e in events] == [
        (d["type"], str(n + 1)) for n, d in enumerate(dicts)
    ]
    assert events[0].retry == 1500
    assert [json.loads(e.data or "") for e in events] == dicts


def test_openai_format_writes_each_event_as_its_serializer_does() -> None:
    # Runs of one event class take a cached serializer; a lone surrogate in the middle of
    # such a run still gets the escaped fallback, and the classes after it their own.
    from llmsse.formats.openai import _event_json

    dicts = response_event_dicts("Hi there you", reasoning="r", tool_calls=[("f", {"x": 1})])
    at = next(n for n, d in enumerate(dicts) if d["type"] == "response.output_text.delta")
    dicts.insert(at + 1, {**dicts[at], "delta": "\ud83d", "sequence_number": 999})
    events = [to_response_event(d) for d in dicts]
    body, _ = run(events, format="openai")
    expected = b"".join(
        b"event: %s\ndata: %s\n\n" % (e.type.encode(), _event_json(e, 0)) for e in events
    )
    assert body == expected
    assert b'"\\ud83d"' in body


def test_fields_are_read_from_models_mappings_and_plain_objects() -> None:
    from types import MappingProxyType, SimpleNamespace

    from llmsse._responses import _get

    class Fields(dict[str, Any]):
        pass

    event = to_response_event(response_event_dicts("a")[0])
    for obj in (
        {"type": "x"},
        Fields(type="x"),
        MappingProxyType({"type": "x"}),
        SimpleNamespace(type="x"),
    ):
        assert (_get(obj, "type"), _get(obj, "missing")) == ("x", None)
    assert _get(event, "type") == "response.created"
    assert _get(event, "nothing") is None


@pytest.mark.parametrize(
    ("reason", "finish_reason", "ai_sdk"),
    [
        ("max_output_tokens", "length", "length"),
        ("content_filter", "content_filter", "content-filter"),
        ("max_messages", "max_messages", "other"),
    ],
)
def test_an_incomplete_response_finishes_with_its_reason(
    reason: str, finish_reason: str, ai_sdk: str
) -> None:
    source = response_events("cut", end="incomplete", incomplete_reason=reason)
    body, result = run(source)
    assert (result.text, result.finish_reason, result.outcome) == ("cut", finish_reason, "finished")
    assert json.loads(llmsse.parse(body)[-1].data or "")["finish_reason"] == finish_reason
    body, _ = run(source, format="ai-sdk")
    assert json_events(body)[-1]["finishReason"] == ai_sdk


def test_a_stream_without_a_terminal_event_just_ends() -> None:
    body, result = run(response_events("part", end=None))
    assert (result.text, result.finish_reason, result.usage) == ("part", None, None)
    assert llmsse.parse(body)[-1].event == "done"


def test_usage_keeps_fields_it_does_not_rename() -> None:
    usage = {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3, "cost": 0.5}
    _, result = run(response_events("x", usage=usage))
    assert result.usage == {
        "prompt_tokens": 1,
        "completion_tokens": 2,
        "total_tokens": 3,
        "cost": 0.5,
    }


# --- failures ----------------------------------------------------------------------------

TERMINAL_ERRORS: dict[str, Callable[[bytes], Any]] = {
    "text": lambda body: (
        llmsse.parse(body)[-1].event,
        json.loads(llmsse.parse(body)[-1].data or ""),
    ),
    "openai": lambda body: (llmsse.parse(body)[-1].event, json_events(body)[-1]),
    "ai-sdk": lambda body: json_events(body)[-1],
    "ag-ui": lambda body: json_events(body)[-1],
}


def expected_error(fmt: str, sequence_number: int) -> Any:
    error = {"type": "upstream_error", "message": GENERIC_MESSAGE}
    if fmt == "text":
        return ("error", {"error": error})
    if fmt == "openai":
        body = {
            "type": "error",
            "sequence_number": sequence_number,
            "code": "upstream_error",
            "message": GENERIC_MESSAGE,
            "param": None,
            "error": {**error, "code": None},
        }
        return ("error", body)
    if fmt == "ai-sdk":
        return {"type": "error", "errorText": GENERIC_MESSAGE}
    return {"type": "RUN_ERROR", "message": GENERIC_MESSAGE}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("end", ["failed", "error", "nested-error"])
@pytest.mark.parametrize("runner", [run, arun], ids=["sync", "async"])
def test_a_failure_event_ends_with_the_formats_masked_error(
    fmt: str, end: str, runner: Callable[..., Any]
) -> None:
    dicts = response_event_dicts("Hello", end=end, error_message=SECRET)  # type: ignore[arg-type]
    source = FakeStream([to_response_event(d) for d in dicts])
    body, result = runner(source, format=fmt)
    assert SECRET.encode() not in body
    assert TERMINAL_ERRORS[fmt](body) == expected_error(fmt, len(dicts) - 1)  # in its place
    assert (result.text, result.outcome) == ("Hello", "failed")
    assert isinstance(result.error, UpstreamError)
    assert (result.error.message, result.error.code) == (SECRET, "server_error")
    assert result.error.event.type == dicts[-1]["type"]
    assert source.close_count == 1
    if end == "failed":
        assert result.usage == USAGE  # the failed response still reports its usage
    if fmt == "openai":  # the failure event itself is not passed on
        assert [e.event for e in llmsse.parse(body)] == [d["type"] for d in dicts[:-1]] + ["error"]


def test_an_error_event_without_a_message_gets_a_generic_one() -> None:
    source = [to_response_event({"type": "error", "sequence_number": 0, "error": {"code": 1}})]
    _, result = run(source)
    assert isinstance(result.error, UpstreamError)
    assert (result.error.message, result.error.code) == ("The upstream response failed.", 1)


def test_on_error_can_tell_the_client_the_upstream_message() -> None:
    def on_error(exc: BaseException) -> str | None:
        return exc.message if isinstance(exc, UpstreamError) else None

    source = response_events("x", end="failed", error_message="quota exceeded")
    body, _ = run(source, on_error=on_error)
    assert json.loads(llmsse.parse(body)[-1].data or "")["error"]["message"] == "quota exceeded"


@pytest.mark.parametrize("fmt", FORMATS)
def test_heartbeats_before_the_first_event(fmt: str) -> None:
    source = FakeStream(response_events("late"), first_delay=0.3)
    body, result = run(source, format=fmt, heartbeat=0.1)
    assert body.count(b": ping\n") >= 1
    assert body.index(b": ping\n") < body.index(b"late")
    assert result.text == "late"
    assert source.close_count == 1


@pytest.mark.parametrize("fmt", FORMATS)
def test_closing_the_stream_closes_the_source_once(fmt: str) -> None:
    source = FakeStream(response_events("a b c d e f"))
    results: list[StreamResult] = []
    gen = llmsse.iter_sse(source, format=fmt, heartbeat=None, on_complete=results.append)
    for piece in gen:
        if b"c" in piece:
            break
    gen.close()  # type: ignore[attr-defined]
    assert source.close_count == 1
    assert [r.outcome for r in results] == ["disconnected"]


@pytest.mark.parametrize("fmt", FORMATS)
def test_closing_the_async_stream_closes_the_source_once(fmt: str) -> None:
    source = FakeAsyncStream(response_events("a b c d e f"), delay=0.01)
    results: list[StreamResult] = []

    async def main() -> None:
        stream = llmsse.aiter_sse(source, format=fmt, heartbeat=0.05, on_complete=results.append)
        async for piece in stream:
            if b"b" in piece:
                break
        await stream.aclose()  # type: ignore[attr-defined]

    anyio.run(main)
    assert source.close_count == 1
    assert [r.outcome for r in results] == ["disconnected"]


# --- what is and is not a source -------------------------------------------------------


def test_an_unknown_event_type_is_skipped() -> None:
    future = to_response_event({"type": "response.future_thing.delta", "sequence_number": 0})
    body, result = run([future, *response_events("ok")])
    assert result.text == "ok"
    body, _ = run([future], format="openai")  # passed through as it came
    assert llmsse.parse(body)[0].event == "response.future_thing.delta"


def test_items_that_are_no_event_are_a_type_error() -> None:
    # Found while streaming: the stream ends with the error event, the TypeError in on_complete.
    _, result = run([object()])
    assert isinstance(result.error, TypeError)
    assert "Responses API events" in str(result.error)
    _, result = run([type("ChunkEvent", (), {"type": "chunk"})()])
    assert "pass the stream manager itself" in str(result.error)
    with pytest.raises(TypeError, match=r"responses\.stream\(\) manager"):
        llmsse.iter_sse(42)


def test_duck_typed_events_of_another_library() -> None:
    from types import SimpleNamespace as NS

    source = [
        NS(type="response.output_text.delta", delta="duck"),
        NS(type="response.completed", response=NS(usage=None)),
    ]
    _, result = run(source)
    assert (result.text, result.finish_reason) == ("duck", "stop")


# --- the real SDK on both sides ----------------------------------------------------------


def test_the_sdk_reads_back_equal_events() -> None:
    """Upstream: the SDK reading the fake API. Downstream: the SDK reading llmsse's body."""
    fake = FakeOpenAI(Reply("Hello there", reasoning="hmm", tool_calls=[tool_call("f", {"a": 1})]))
    upstream = list(fake.client().responses.create(model="m", input="hi", stream=True))
    body, _ = run(iter(upstream), format="openai")
    relay = FakeOpenAI()
    relay_events = list(
        _client_reading(relay, body).responses.create(model="m", input="x", stream=True)
    )
    # warnings=False: openai 1.66.0 builds the reasoning item into the wrong member of
    # its output-item union (both sides alike) and pydantic warns when dumping it.
    assert [e.to_dict(warnings=False) for e in relay_events] == [
        e.to_dict(warnings=False) for e in upstream
    ]
    assert [type(e) for e in relay_events] == [type(e) for e in upstream]


def _client_reading(fake: FakeOpenAI, body: bytes) -> openai.OpenAI:
    from llmsse.testing.errors import sdk_httpx

    httpx = sdk_httpx()

    def handler(request: Any) -> Any:
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    return openai.OpenAI(
        api_key="sk-test",
        base_url="http://relay.test/v1",
        max_retries=0,
        http_client=httpx.Client(transport=httpx.MockTransport(handler)),
    )


def test_the_sdks_stream_helper_reads_the_relay() -> None:
    fake = FakeOpenAI(Reply("Hello there", tool_calls=[tool_call("f", {"a": 1})]))
    body, _ = run(
        fake.client().responses.create(model="m", input="hi", stream=True), format="openai"
    )
    with _client_reading(FakeOpenAI(), body).responses.stream(model="m", input="x") as stream:
        final = stream.get_final_response()
    assert final.output_text == "Hello there"
    assert [item.type for item in final.output] == ["message", "function_call"]


def test_the_sdk_raises_on_the_relayed_failure() -> None:
    fake = FakeOpenAI(Reply("Hello", error=SECRET))
    body, result = run(
        fake.client().responses.create(model="m", input="hi", stream=True), format="openai"
    )
    assert isinstance(result.error, openai.APIError)  # the SDK raised the nested error upstream
    seen = []
    with pytest.raises(openai.APIError) as caught:
        for event in _client_reading(FakeOpenAI(), body).responses.create(
            model="m", input="x", stream=True
        ):
            seen.append(event.type)
    assert caught.value.message == GENERIC_MESSAGE
    assert "response.output_text.delta" in seen
    assert SECRET not in body.decode()


def test_the_sdk_raises_on_a_relayed_response_failed() -> None:
    body, _ = run(response_events("Hello", end="failed", error_message=SECRET), format="openai")
    with pytest.raises(openai.APIError, match=GENERIC_MESSAGE):
        list(
            _client_reading(FakeOpenAI(), body).responses.create(model="m", input="x", stream=True)
        )


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_async_client_stream_in_every_format(fmt: str) -> None:
    fake = FakeOpenAI(Reply("Hi there", reasoning="r"))

    async def main() -> tuple[bytes, list[StreamResult]]:
        results: list[StreamResult] = []
        stream = await fake.async_client().responses.create(model="m", input="x", stream=True)
        body = b"".join(
            [p async for p in llmsse.aiter_sse(stream, format=fmt, on_complete=results.append)]
        )
        return body, results

    body, (result,) = anyio.run(main)
    assert (result.text, result.reasoning, result.finish_reason) == ("Hi there", "r", "stop")
    assert b"there" in body
    assert fake.last_request.closed


def test_the_fake_api_streams_responses_events() -> None:
    fake = FakeOpenAI(Reply(["a", "b"], finish_reason="length"))
    events = list(fake.client().responses.create(model="m", input="x", stream=True))
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[-1].type == "response.incomplete"
    assert responses_sse_body(response_event_dicts("a")).startswith(
        b"event: response.created\ndata: {"
    )


# --- any mix rebuilds the same answer in every format ------------------------------------


def rebuild(fmt: str, body: bytes) -> tuple[str, str, list[tuple[str, str]]]:
    """(answer text incl. refusal, reasoning, [(call id, arguments)]) as a client sees it."""
    if fmt == "text":
        events = llmsse.parse(body)
        text = "".join(e.data or "" for e in events if e.event in ("message", "refusal"))
        reasoning = "".join(e.data or "" for e in events if e.event == "reasoning")
        calls = [json.loads(e.data or "") for e in events if e.event == "tool_call"]
        return text, reasoning, [(c["id"], c["arguments"]) for c in calls]
    items = json_events(body)
    if fmt == "openai":
        kinds = {"response.output_text.delta", "response.refusal.delta"}
        text = "".join(i["delta"] for i in items if i["type"] in kinds)
        reasoning = "".join(
            i["delta"] for i in items if i["type"] == "response.reasoning_summary_text.delta"
        )
        return text, reasoning, []
    if fmt == "ai-sdk":
        text = "".join(i["delta"] for i in items if i["type"] == "text-delta")
        reasoning = "".join(i["delta"] for i in items if i["type"] == "reasoning-delta")
        args: dict[str, str] = {}
        for i in items:
            if i["type"] == "tool-input-delta":
                args[i["toolCallId"]] = args.get(i["toolCallId"], "") + i["inputTextDelta"]
        ends = ("tool-input-available", "tool-input-error")
        done = [i["toolCallId"] for i in items if i["type"] in ends]
        return text, reasoning, [(d, args.get(d, "")) for d in done]
    text = "".join(i["delta"] for i in items if i["type"] == "TEXT_MESSAGE_CONTENT")
    reasoning = "".join(i["delta"] for i in items if i["type"] == "REASONING_MESSAGE_CONTENT")
    args = {}
    for i in items:
        if i["type"] == "TOOL_CALL_ARGS":
            args[i["toolCallId"]] = args.get(i["toolCallId"], "") + i["delta"]
    done = [i["toolCallId"] for i in items if i["type"] == "TOOL_CALL_END"]
    return text, reasoning, [(d, args.get(d, "")) for d in done]


def lf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


@settings(max_examples=150, deadline=None)
@given(ops)
def test_any_mix_rebuilds_the_same_answer_in_every_format(steps: list[tuple[Any, ...]]) -> None:
    dicts, expected = mixed_events(steps)
    for fmt in FORMATS:
        body, result = run([to_response_event(d) for d in dicts], format=fmt)
        assert result.text == expected["text"]
        assert result.refusal == expected["refusal"]
        assert result.reasoning == expected["reasoning"]
        assert [(c.id, c.arguments) for c in result.tool_calls] == expected["calls"]
        assert result.finish_reason == expected["finish_reason"]
        text, reasoning, calls = rebuild(fmt, body)
        answer = expected["text"] + expected["refusal"]
        if fmt == "text":  # SSE has one line break: CR and CRLF arrive as LF
            reasoning, text = lf(reasoning), lf(text)
            answer = lf(answer)
        if fmt == "openai":  # the upstream's own deltas, no separator between summary parts
            assert reasoning == expected["summary_deltas"]
        else:
            assert reasoning == (
                lf(expected["reasoning"]) if fmt == "text" else expected["reasoning"]
            )
        if fmt == "text":
            assert calls == expected["calls"]
        if fmt in ("ai-sdk", "ag-ui"):
            assert sorted(calls) == sorted(expected["calls"]), fmt
        if fmt == "openai":
            assert [json.loads(e.data or "") for e in llmsse.parse(body)] == dicts
        # Answer text and refusal interleave as they came (the refusal is answer text
        # in the JSON-event formats, an event of its own in "text").
        assert sorted(text) == sorted(answer), fmt


def test_the_kits_assertions_know_the_responses_wire_format() -> None:
    from llmsse.testing import assert_valid_sse, sse_problems

    for source, options in [
        (response_events("Hi", tool_calls=[("f", "{}")]), {}),
        (response_events("Hi", end="failed"), {"ids": True, "retry": 100}),
        (response_events("cut", end="incomplete"), {}),
    ]:
        body, _ = run(source, format="openai", **options)
        assert_valid_sse(body, format="openai")
    good = responses_sse_body(response_event_dicts("Hi"))
    assert sse_problems(good, format="openai") == []
    cut = responses_sse_body(response_event_dicts("Hi", end=None))
    assert sse_problems(cut, format="openai") == [
        "no terminal response.completed, response.incomplete, response.failed or error event"
    ]
    problems = sse_problems(good + b"data: [DONE]\n\n", format="openai")
    assert any("comes after the terminal 'response.completed'" in p for p in problems)
    renamed = good.replace(b"event: response.in_progress", b"event: response.other", 1)
    assert sse_problems(renamed, format="openai") == [
        "event 2 (response.other): the event name is not the data's type 'response.in_progress'"
    ]
    replayed = good + good
    assert any(
        "sequence_number 0 does not follow" in p for p in sse_problems(replayed, format="openai")
    )


def test_read_responses_stream() -> None:
    from llmsse.testing import read_responses_stream

    source = response_events("Hi there", reasoning="r", tool_calls=[tool_call("f", {"a": 1})])
    body, _ = run(source, format="openai")
    reply = read_responses_stream(body)
    assert (reply.text, reply.reasoning, reply.refusal) == ("Hi there", "r", "")
    assert [(c.id, c.name, c.arguments) for c in reply.tool_calls] == [("call_0", "f", '{"a":1}')]
    assert (reply.finish_reason, reply.terminal, reply.error) == (
        "tool_calls",
        "response.completed",
        None,
    )
    assert reply.usage == response_event_dicts("x")[-1]["response"]["usage"]
    assert [e.type for e in reply.response_events] == [e.type for e in source]

    body, _ = run(response_events("Hi", end="failed", error_message=SECRET), format="openai")
    reply = read_responses_stream(body)
    assert reply.text == "Hi"
    assert (reply.terminal, reply.error) == (
        "error",
        {"message": GENERIC_MESSAGE, "type": "upstream_error", "code": None},
    )
    upstream = read_responses_stream(responses_sse_body(response_event_dicts("x", end="failed")))
    assert upstream.error is not None and upstream.error["code"] == "server_error"
    flat = read_responses_stream(responses_sse_body(response_event_dicts("x", end="error")))
    assert flat.error is not None and flat.error["code"] == "server_error"
    assert (
        read_responses_stream(responses_sse_body(response_event_dicts("x", end=None))).terminal
        is None
    )


def test_a_format_without_render_fails_with_a_clear_error() -> None:
    class OnlyChunks(llmsse.Format):
        def chunk(self, chunk: Any) -> bytes:
            return b""

        def finish(self) -> bytes:
            return b"event: done\ndata: \n\n"

        def error(self, error: Any) -> bytes:
            return b"event: error\ndata: \n\n"

    _, result = run(response_events("x"), format=OnlyChunks)
    assert isinstance(result.error, NotImplementedError)
    assert "OnlyChunks does not implement render()" in str(result.error)


@pytest.mark.parametrize("name", ["text", "openai", "ai-sdk", "ag-ui"])
@pytest.mark.parametrize("keep", [True, False])
def test_the_answer_is_kept_only_for_on_complete(name: str, keep: bool) -> None:
    # Without on_complete (accumulate=False) nothing reads the answer: a long stream must
    # not hold it in memory, whichever format writes it (ai-sdk and the others read every
    # text delta through ResponsesReader).
    from llmsse.formats import resolve_format

    fmt = resolve_format(name)()
    fmt.accumulate = keep
    fmt.start()
    for event in response_events(["a", "b\nc", "d"]):
        fmt.response_event(event)
    assert "".join(fmt.state._text) == ("ab\ncd" if keep else "")
