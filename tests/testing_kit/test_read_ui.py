"""llmsse.testing's readers of the "ai-sdk" and "ag-ui" formats: every stream llmsse sends
reads back, and broken streams fail with a message that says what is wrong."""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import re
from collections.abc import Callable
from typing import Any

import pytest

import llmsse
from _chunks import weather_example
from llmsse.formats import AGUIFormat, AISDKFormat
from llmsse.testing import (
    AGUIStreamReply,
    AISDKStreamReply,
    FakeStream,
    StreamToolCall,
    api_error,
    chunks,
    read_ag_ui_stream,
    read_ai_sdk_stream,
    response_events,
    tool_call,
)

GENERIC = "The response could not be completed."


def body(source: Any, fmt: Any, **options: Any) -> bytes:
    options.setdefault("heartbeat", None)
    return b"".join(llmsse.iter_sse(source, format=fmt, **options))


async def abody(source: Any, fmt: Any, **options: Any) -> bytes:
    options.setdefault("heartbeat", None)
    return b"".join([part async for part in llmsse.aiter_sse(source, format=fmt, **options)])


def failing(after: int = 2) -> FakeStream[Any]:
    return FakeStream(chunks(["one", "two"]), error=api_error("secret"), error_after=after)


def bad_tool_call() -> list[Any]:
    """A tool call whose arguments are not JSON, and one that never got an id."""
    return chunks(
        tool_calls=[tool_call("f", "{oops", id="c1"), tool_call("g", '{"q":2}')],
        finish_reason="tool_calls",
    )


def replies_are_frozen(reply: Any) -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        reply.text = "changed"


# --- "ai-sdk": good streams ------------------------------------------------------------------


def test_ai_sdk_reply_of_the_protocols_example() -> None:
    fmt = functools.partial(AISDKFormat, message_id="msg_1")
    reply = read_ai_sdk_stream(body(weather_example(azure=False), fmt))
    assert isinstance(reply, AISDKStreamReply)
    replies_are_frozen(reply)
    assert (reply.text, reply.reasoning) == ("Checking Paris…\n", "Need weather.")
    assert reply.tool_calls == [
        StreamToolCall(
            id="call_1",
            name="get_weather",
            arguments='{"city":"Paris"}',
            input={"city": "Paris"},
            complete=True,
        )
    ]
    assert reply.finish_reason == "tool-calls"  # as the AI SDK spells it
    assert reply.usage == {"prompt_tokens": 9, "completion_tokens": 12, "total_tokens": 21}
    assert reply.message_metadata == {"usage": reply.usage}
    assert reply.message_id == "msg_1"
    assert (reply.terminal, reply.done, reply.error, reply.error_message) == (
        "finish",
        True,
        None,
        None,
    )
    assert reply.steps == 1
    assert [c["type"] for c in reply.chunks][:2] == ["start", "start-step"]
    assert len(reply.events) == len(reply.chunks) + 1  # and [DONE]
    assert reply.body.endswith(b"data: [DONE]\n\n")


@pytest.mark.parametrize("run", ["sync", "async"])
def test_ai_sdk_reply_of_a_failed_stream(run: str) -> None:
    source = failing()
    data = body(source, "ai-sdk") if run == "sync" else asyncio.run(abody(source, "ai-sdk"))
    reply = read_ai_sdk_stream(data)
    assert reply.text == "one"
    assert reply.error == {"type": "error", "errorText": GENERIC}
    assert reply.error_message == GENERIC
    assert (reply.terminal, reply.finish_reason, reply.done) == ("error", None, True)


def test_ai_sdk_reply_of_tool_calls_that_are_not_json_or_have_no_id() -> None:
    reply = read_ai_sdk_stream(body(bad_tool_call(), "ai-sdk"))
    bad, no_id = reply.tool_calls
    assert (bad.id, bad.name, bad.arguments, bad.input) == ("c1", "f", "{oops", "{oops")
    assert bad.error is not None and "not valid JSON" in bad.error
    assert no_id.name == "g" and no_id.input == {"q": 2} and no_id.error is None
    assert reply.finish_reason == "tool-calls"


def test_ai_sdk_reply_of_a_refusal_reasoning_and_str_pieces() -> None:
    from llmsse.testing import to_chunk

    def delta(**fields: Any) -> Any:
        choice = {"index": 0, "delta": fields, "finish_reason": None}
        return to_chunk(
            {
                "id": "c",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "m",
                "choices": [choice],
            }
        )

    source = [delta(reasoning_content="think"), delta(content="A"), delta(refusal="no")]
    reply = read_ai_sdk_stream(body([*source, *chunks(finish_reason="stop")], "ai-sdk"))
    assert (reply.text, reply.reasoning, reply.finish_reason) == ("Ano", "think", "content-filter")
    pieces = read_ai_sdk_stream(body(["Hello", "", " world\r\n"], "ai-sdk"))
    assert (pieces.text, pieces.finish_reason, pieces.usage) == ("Hello world\r\n", "stop", None)


def test_ai_sdk_reply_with_heartbeats_retry_and_ids() -> None:
    source = FakeStream(chunks("x y"), first_delay=0.25)
    reply = read_ai_sdk_stream(body(source, "ai-sdk", heartbeat=0.1, retry=3000, ids=True))
    assert reply.text == "x y" and reply.heartbeats >= 1
    assert all(e.id for e in reply.events)


@pytest.mark.parametrize("end", ["completed", "incomplete", "failed", "error", "nested-error"])
def test_ai_sdk_reply_of_a_responses_source(end: str) -> None:
    calls = [tool_call("f", {"a": [1]}, id="c1")]
    source = response_events("Hi", reasoning=[["Think"], ["More"]], tool_calls=calls, end=end)
    reply = read_ai_sdk_stream(body(source, "ai-sdk"))
    assert (reply.text, reply.reasoning) == ("Hi", "Think\n\nMore")
    assert [(c.id, c.input) for c in reply.tool_calls] == [("c1", {"a": [1]})]
    if end in ("completed", "incomplete"):
        assert reply.finish_reason == ("tool-calls" if end == "completed" else "length")
        assert reply.terminal == "finish" and reply.error is None
    else:
        assert reply.terminal == "error" and reply.error_message == GENERIC


def test_ai_sdk_reply_of_the_ai_sdks_own_stream() -> None:
    """PROTOCOLS.md §4.3: what streamText() sends, two steps and a tool output, and an
    error the AI SDK follows with the end of the message."""
    data = (
        b'data: {"type":"start","messageId":"msg_1"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"text-start","id":"t1"}\n\n'
        b'data: {"type":"text-delta","id":"t1","delta":"H\xc3\xa9"}\n\n'
        b'data: {"type":"text-end","id":"t1"}\n\n'
        b'data: {"type":"tool-input-start","toolCallId":"call_1","toolName":"get_weather"}\n\n'
        b'data: {"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"{}"}\n\n'
        b'data: {"type":"tool-input-available","toolCallId":"call_1","toolName":"get_weather",'
        b'"input":{}}\n\n'
        b'data: {"type":"tool-output-available","toolCallId":"call_1","output":{"sky":"sun"}}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"start-step"}\n\n'
        b'data: {"type":"data-weather","data":{"x":1}}\n\n'
        b'data: {"type":"error","errorText":"An error occurred."}\n\n'
        b'data: {"type":"finish-step"}\n\n'
        b'data: {"type":"finish","finishReason":"stop"}\n\n'
        b"data: [DONE]\n\n"
    )
    reply = read_ai_sdk_stream(data)
    assert (reply.text, reply.steps, reply.finish_reason) == ("Hé", 2, "stop")
    assert reply.error_message == "An error occurred." and reply.terminal == "finish"
    assert reply.tool_calls[0].arguments == "{}"


def test_ai_sdk_reader_takes_a_test_client_response() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from llmsse.starlette import sse_response

    async def chat(request: Any) -> Any:
        return sse_response(chunks("Hello there"), format="ai-sdk")

    app = Starlette(routes=[Route("/chat", chat, methods=["POST"])])
    response = TestClient(app).post("/chat")
    assert response.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert read_ai_sdk_stream(response).text == "Hello there"


# --- "ai-sdk": broken streams ------------------------------------------------------------------

START = b'data: {"type":"start"}\n\ndata: {"type":"start-step"}\n\n'
END = b'data: {"type":"finish-step"}\n\ndata: {"type":"finish"}\n\ndata: [DONE]\n\n'


def ui(*chunks_json: str, start: bytes = START, end: bytes = END) -> bytes:
    return start + b"".join(b"data: %s\n\n" % c.encode() for c in chunks_json) + end


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ui('{"type":"text-delta","id":"x","delta":"a"}'), "not open"),
        (ui('{"type":"text-start","id":"x"}', '{"type":"text-end","id":"y"}'), "'y', which is"),
        (
            ui(
                '{"type":"reasoning-start","id":"r"}',
                '{"type":"reasoning-end","id":"r"}',
                '{"type":"reasoning-delta","id":"r","delta":"a"}',
            ),
            "reasoning-delta for reasoning part 'r'",
        ),
        (ui('{"type":"text-start","id":"x"}', '{"type":"text-start","id":"x"}'), "already open"),
        (ui('{"type":"text","text":"a"}'), "unknown chunk type 'text'"),
        (ui('{"type":"text-start"}'), "needs a string 'id'"),
        (ui('{"type":"text-start","id":null}'), "needs a string 'id'"),
        (ui('{"type":"text-start","id":"x"}', '{"type":"text-delta","id":"x"}'), "'delta'"),
        (
            ui(end=b'data: {"type":"finish","finishReason":"tool_calls"}\n\n'),
            "finishReason 'tool_calls' is not one of",
        ),
        (ui(end=b'data: {"type":"finish","finishReason":null}\n\n'), "finishReason None"),
        (ui('{"type":"data-x","data":{"__proto__":{}}}'), "__proto__"),
        (ui('{"type":"start","messageId":"m"}'), "'start' must be the first chunk"),
        (ui(start=b'data: {"type":"start","messageId":null}\n\n'), "'messageId' must be a str"),
        (ui(start=b'data: {"type":"start-step"}\n\n'), "the first chunk must be 'start'"),
        (ui(start=b"data: Hello\n\n"), "not JSON"),
        (ui(start=b"data: [1]\n\n"), "not a JSON object"),
        (
            ui('{"type":"tool-input-delta","toolCallId":"c","inputTextDelta":"{"}'),
            "tool-input-delta for a call without an open tool-input-start",
        ),
        (
            ui('{"type":"tool-output-available","toolCallId":"nope","output":1}'),
            "no tool call 'nope'",
        ),
        (
            ui('{"type":"tool-input-start","toolCallId":"c","toolName":"f"}'),
            "tool calls still open: ['c']",
        ),
        (ui('{"type":"text-start","id":"x"}'), "'finish-step' while parts are open: ['x']"),
        (ui('{"type":"start-step"}'), "'start-step' inside a step"),
        (ui(end=b'data: {"type":"finish"}\n\ndata: [DONE]\n\n'), "with a step or a part"),
        (ui(end=b'data: {"type":"finish-step"}\n\ndata: [DONE]\n\n'), "the last chunk"),
        (
            ui(end=b'data: {"type":"finish-step"}\n\ndata: {"type":"finish"}\n\n'),
            "no 'data: [DONE]'",
        ),
        (END.replace(b"[DONE]", b'{"type":"finish"}'), "the first chunk must be 'start'"),
        (ui() + b'data: {"type":"start"}\n\n', "after data: [DONE]"),
        (ui(end=END.replace(b"data: [DONE]", b'data: {"type":"abort"}')), "a chunk after 'finish'"),
    ],
)
def test_ai_sdk_reader_fails_on_a_broken_stream(data: bytes, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        read_ai_sdk_stream(data)


def test_ai_sdk_reader_names_the_event() -> None:
    with pytest.raises(AssertionError, match=r"^ai-sdk stream, event 2: text-delta"):
        read_ai_sdk_stream(ui('{"type":"text-delta","id":"x","delta":"a"}'))


def test_ai_sdk_reader_takes_a_stream_cut_short_when_asked() -> None:
    data = b"".join(llmsse.iter_sse(chunks("Hello there"), format="ai-sdk", heartbeat=None))
    cut = data[: data.index(b'{"type":"text-end"')]
    with pytest.raises(AssertionError, match="cut short"):
        read_ai_sdk_stream(cut)
    reply = read_ai_sdk_stream(cut, terminal=False)
    assert (reply.text, reply.terminal, reply.done) == ("Hello there", None, False)


# --- "ag-ui": good streams ------------------------------------------------------------------

PINNED = functools.partial(
    AGUIFormat, thread_id="thread_1", run_id="run_1", message_id="msg_1", reasoning_id="rs_1"
)


def test_ag_ui_reply_of_the_protocols_example() -> None:
    reply = read_ag_ui_stream(body(weather_example(azure=False), PINNED))
    assert isinstance(reply, AGUIStreamReply)
    replies_are_frozen(reply)
    assert (reply.text, reply.reasoning) == ("Checking Paris…\n", "Need weather.")
    assert reply.tool_calls == [
        StreamToolCall(
            id="call_1",
            name="get_weather",
            arguments='{"city":"Paris"}',
            input={"city": "Paris"},
            parent_message_id="msg_1",
            complete=True,
        )
    ]
    assert (reply.thread_id, reply.run_id, reply.message_ids) == ("thread_1", "run_1", ["msg_1"])
    assert (reply.terminal, reply.error, reply.error_message, reply.error_code) == (
        "RUN_FINISHED",
        None,
        None,
        None,
    )
    assert (reply.outcome, reply.result, reply.usage) == (None, None, None)
    assert reply.ag_ui_events[0] == {
        "type": "RUN_STARTED",
        "threadId": "thread_1",
        "runId": "run_1",
    }
    assert len(reply.events) == len(reply.ag_ui_events)


@pytest.mark.parametrize("run", ["sync", "async"])
def test_ag_ui_reply_of_a_failed_stream(run: str) -> None:
    source = failing()
    data = body(source, "ag-ui") if run == "sync" else asyncio.run(abody(source, "ag-ui"))
    reply = read_ag_ui_stream(data)
    assert reply.text == "one"
    assert reply.error == {"type": "RUN_ERROR", "message": GENERIC}
    assert (reply.terminal, reply.error_message) == ("RUN_ERROR", GENERIC)


def test_ag_ui_reply_of_an_error_with_a_tool_call_open() -> None:
    source = FakeStream(
        chunks(tool_calls=[tool_call("f", '{"a":1}', id="c1")], finish=False),
        error=api_error("secret"),
        error_after=3,
    )
    reply = read_ag_ui_stream(body(source, "ag-ui"))
    assert reply.terminal == "RUN_ERROR"
    (call,) = reply.tool_calls
    assert call.id == "c1" and call.complete


def test_ag_ui_reply_of_tool_calls_that_are_not_json_or_have_no_id() -> None:
    reply = read_ag_ui_stream(body(bad_tool_call(), PINNED))
    bad, no_id = reply.tool_calls
    assert (bad.id, bad.arguments, bad.input, bad.parent_message_id) == (
        "c1",
        "{oops",
        None,
        "msg_1",
    )
    assert (no_id.name, no_id.arguments, no_id.input) == ("g", '{"q":2}', {"q": 2})
    assert no_id.id.startswith("call_")


def test_ag_ui_reply_with_heartbeats_retry_and_ids() -> None:
    source = FakeStream(chunks("x y"), first_delay=0.25)
    reply = read_ag_ui_stream(body(source, "ag-ui", heartbeat=0.1, retry=3000, ids=True))
    assert reply.text == "x y" and reply.heartbeats >= 1


@pytest.mark.parametrize("end", ["completed", "incomplete", "failed", "error", "nested-error"])
def test_ag_ui_reply_of_a_responses_source(end: str) -> None:
    calls = [tool_call("f", {"a": [1]}, id="c1")]
    source = response_events("Hi", reasoning=[["Think"], ["More"]], tool_calls=calls, end=end)
    reply = read_ag_ui_stream(body(source, "ag-ui"))
    assert (reply.text, reply.reasoning) == ("Hi", "Think\n\nMore")
    assert [(c.id, c.input) for c in reply.tool_calls] == [("c1", {"a": [1]})]
    failed = end not in ("completed", "incomplete")
    assert reply.terminal == ("RUN_ERROR" if failed else "RUN_FINISHED")


def test_ag_ui_reply_of_what_the_ag_ui_package_encodes() -> None:
    """Events of the ag-ui-protocol package, two runs, steps, and the *_CHUNK events."""
    core = pytest.importorskip("ag_ui.core")
    from ag_ui.encoder import EventEncoder

    encoder = EventEncoder()
    events = [
        core.RunStartedEvent(thread_id="t", run_id="r1"),
        core.StepStartedEvent(step_name="plan"),
        core.TextMessageStartEvent(message_id="m1", role="assistant"),
        core.TextMessageContentEvent(message_id="m1", delta="Hi"),
        core.TextMessageEndEvent(message_id="m1"),
        core.ToolCallStartEvent(tool_call_id="c1", tool_call_name="f", parent_message_id="m1"),
        core.ToolCallArgsEvent(tool_call_id="c1", delta="{}"),
        core.ToolCallEndEvent(tool_call_id="c1"),
        core.ToolCallResultEvent(message_id="tm", tool_call_id="c1", content="ok", role="tool"),
        core.StepFinishedEvent(step_name="plan"),
        core.RunFinishedEvent(thread_id="t", run_id="r1", result={"n": 1}),
        core.RunStartedEvent(thread_id="t", run_id="r2"),
        core.TextMessageChunkEvent(message_id="m2", delta=" there"),
        core.StateSnapshotEvent(snapshot={"a": 1}),
        core.CustomEvent(name="x", value=1),
        core.RunErrorEvent(message="boom", code="E1"),
    ]
    reply = read_ag_ui_stream("".join(encoder.encode(e) for e in events).encode())
    assert (reply.text, reply.run_id, reply.result) == ("Hi there", "r1", {"n": 1})
    assert (reply.error_message, reply.error_code, reply.terminal) == ("boom", "E1", "RUN_ERROR")
    assert [c.arguments for c in reply.tool_calls] == ["{}"]


def test_ag_ui_reader_takes_a_test_client_response() -> None:
    from starlette.applications import Starlette
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from llmsse.starlette import sse_response

    async def agent(request: Any) -> Any:
        return sse_response(chunks("Hello there"), format=PINNED)

    app = Starlette(routes=[Route("/agent", agent, methods=["POST"])])
    reply = read_ag_ui_stream(TestClient(app).post("/agent"))
    assert (reply.text, reply.thread_id) == ("Hello there", "thread_1")


# --- "ag-ui": broken streams ------------------------------------------------------------------

RUN = b'data: {"type":"RUN_STARTED","threadId":"t","runId":"r"}\n\n'
FINISHED = b'data: {"type":"RUN_FINISHED","threadId":"t","runId":"r"}\n\n'


def ag(*events_json: str, start: bytes = RUN, end: bytes = FINISHED) -> bytes:
    return start + b"".join(b"data: %s\n\n" % e.encode() for e in events_json) + end


TEXT_START = '{"type":"TEXT_MESSAGE_START","messageId":"m","role":"assistant"}'


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (ag(TEXT_START, start=b""), "the first event must be RUN_STARTED"),
        (
            ag('{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"a"}'),
            "no active text message 'm'",
        ),
        (ag(TEXT_START, TEXT_START), "already open"),
        (ag(TEXT_START), "RUN_FINISHED while text messages are still active: ['m']"),
        (
            ag('{"type":"TOOL_CALL_START","toolCallId":"c","toolCallName":"f"}'),
            "tool calls are still active",
        ),
        (ag('{"type":"REASONING_START","messageId":"r"}'), "reasoning spans are still active"),
        (
            ag('{"type":"REASONING_MESSAGE_START","messageId":"r","role":"reasoning"}'),
            "reasoning messages are still",
        ),
        (
            ag('{"type":"REASONING_MESSAGE_CONTENT","messageId":"r","delta":"a"}'),
            "no active reasoning 'r'",
        ),
        (ag('{"type":"STEP_STARTED","stepName":"s"}'), "steps are still active"),
        (ag('{"type":"STEP_FINISHED","stepName":"s"}'), "a step not started"),
        (ag('{"type":"TOOL_CALL_ARGS","toolCallId":"c","delta":"{"}'), "no active tool call 'c'"),
        (ag(end=FINISHED + FINISHED), "RUN_FINISHED after RUN_FINISHED"),
        (ag(end=FINISHED + b"data: " + TEXT_START.encode() + b"\n\n"), "after RUN_FINISHED"),
        (ag(end=b'data: {"type":"RUN_ERROR","message":"x"}\n\n' + FINISHED), "after RUN_ERROR"),
        (ag(end=FINISHED.replace(b'"r"', b'"other"')), "another thread or run"),
        (ag(start=RUN + RUN), "RUN_STARTED while a run is still active"),
        (ag(TEXT_START).replace(b"\n", b"\r\n"), "CR in the body"),
        (ag('{"type":"TEXT_MESSAGE_START","messageId":"m","role":null}'), "null for ['role']"),
        (ag('{"type":"TEXT_MESSAGE_START","message_id":"m"}'), "needs a string 'messageId'"),
        (ag('{"type":"TEXT_MESSAGE_START","messageId":"m","role":"tool"}'), "role must be one of"),
        (ag('{"type":"THINKING_START"}'), "unknown event type 'THINKING_START'"),
        (ag(end=b"data: [DONE]\n\n"), "[DONE] is not an AG-UI event"),
        (ag(end=b""), "the last event must be RUN_FINISHED or RUN_ERROR"),
    ],
)
def test_ag_ui_reader_fails_on_a_broken_stream(data: bytes, message: str) -> None:
    with pytest.raises(AssertionError, match=re.escape(message)):
        read_ag_ui_stream(data)


def test_ag_ui_reader_takes_a_stream_cut_short_when_asked() -> None:
    cut = ag(TEXT_START, '{"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"Hi"}', end=b"")
    reply = read_ag_ui_stream(cut, terminal=False)
    assert (reply.text, reply.terminal) == ("Hi", None)
    # A run that failed before it started is a valid stream too, as the client has it.
    error = read_ag_ui_stream(b'data: {"type":"RUN_ERROR","message":"x"}\n\n')
    assert (error.error_message, error.thread_id) == ("x", None)


READERS: dict[str, Callable[[Any], Any]] = {
    "ai-sdk": read_ai_sdk_stream,
    "ag-ui": read_ag_ui_stream,
}


@pytest.mark.parametrize("fmt", list(READERS))
def test_a_lone_surrogate_reads_back(fmt: str) -> None:
    reply = READERS[fmt](body(chunks(["\ud83d", "\ude00!"]), fmt))
    assert reply.text == "\ud83d\ude00!"


@pytest.mark.parametrize("fmt", list(READERS))
def test_readers_take_an_async_body_outside_an_event_loop(fmt: str) -> None:
    source = llmsse.aiter_sse(chunks("Hello there"), format=fmt, heartbeat=None)
    assert READERS[fmt](source).text == "Hello there"
