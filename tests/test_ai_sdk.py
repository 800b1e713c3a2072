"""The "ai-sdk" format: the Vercel AI SDK UI message stream, checked against the AI SDK itself.

The last section runs the npm package ``ai`` under Node (tests/js/read_ui_stream.mjs) over
llmsse's bytes: ``DefaultChatTransport`` parses and validates every chunk against
``uiMessageChunkSchema``, and ``readUIMessageStream`` builds the message ``useChat`` shows.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from openai.types.chat import ChatCompletionChunk

import llmsse
from _chunks import USAGE, answer, chunk, fragment, js_string, usage_chunk, weather_example
from _node import node_with, read_streams
from _responses import seeded_mixes
from llmsse import StreamResult, sse_headers
from llmsse._errors import GENERIC_MESSAGE
from llmsse._json import dumps
from llmsse.formats import FORMATS, AISDKFormat
from llmsse.testing import FakeStream, chunks, read_ai_sdk_stream, tool_call

DONE = b"data: [DONE]\n\n"

# PROTOCOLS.md §6.2, "Exact output of the example", byte for byte.
EXAMPLE_BYTES = (
    b'data: {"type":"start","messageId":"msg_1"}\n\n'
    b'data: {"type":"start-step"}\n\n'
    b'data: {"type":"reasoning-start","id":"reasoning-0"}\n\n'
    b'data: {"type":"reasoning-delta","id":"reasoning-0","delta":"Need weather."}\n\n'
    b'data: {"type":"reasoning-end","id":"reasoning-0"}\n\n'
    b'data: {"type":"text-start","id":"text-1"}\n\n'
    b'data: {"type":"text-delta","id":"text-1","delta":"Checking "}\n\n'
    b'data: {"type":"text-delta","id":"text-1","delta":"Paris\xe2\x80\xa6\\n"}\n\n'
    b'data: {"type":"text-end","id":"text-1"}\n\n'
    b'data: {"type":"tool-input-start","toolCallId":"call_1","toolName":"get_weather"}\n\n'
    b'data: {"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"{\\"city\\":"}\n\n'
    b'data: {"type":"tool-input-delta","toolCallId":"call_1","inputTextDelta":"\\"Paris\\"}"}\n\n'
    b'data: {"type":"tool-input-available","toolCallId":"call_1","toolName":"get_weather",'
    b'"input":{"city":"Paris"}}\n\n'
    b'data: {"type":"finish-step"}\n\n'
    b'data: {"type":"finish","finishReason":"tool-calls","messageMetadata":{"usage":'
    b'{"completion_tokens":12,"prompt_tokens":9,"total_tokens":21}}}\n\n'
    b"data: [DONE]\n\n"
)


WITH_ID = functools.partial(AISDKFormat, message_id="msg_1")


def body(source: Any, **options: Any) -> bytes:
    options.setdefault("format", "ai-sdk")
    options.setdefault("heartbeat", None)
    return b"".join(llmsse.iter_sse(source, **options))


async def abody(source: Any, **options: Any) -> bytes:
    options.setdefault("format", "ai-sdk")
    options.setdefault("heartbeat", None)
    return b"".join([part async for part in llmsse.aiter_sse(source, **options)])


def ui_chunks(data: bytes) -> list[dict[str, Any]]:
    """The JSON chunks of a stream, checking its framing: one compact ``data:`` line per
    event, LF only, ``[DONE]`` last."""
    assert b"\r" not in data
    assert data.endswith(DONE)
    out = []
    for block in data[: -len(DONE)].split(b"\n\n")[:-1]:
        if block.startswith(b":"):  # a heartbeat
            assert block == b": ping"
            continue
        lines = [line for line in block.split(b"\n") if not line.startswith((b"id: ", b"retry: "))]
        if not lines:
            continue
        assert len(lines) == 1 and lines[0].startswith(b"data: "), block
        payload = lines[0][len(b"data: ") :]
        obj = json.loads(payload)
        assert dumps(obj) == payload  # compact, raw UTF-8 (ASCII escapes for a lone surrogate)
        out.append(obj)
    return out


def keys(obj: Any) -> set[str]:
    """Every key of every object in ``obj`` (strings may say ``__proto__``; keys may not)."""
    if isinstance(obj, dict):
        return set(obj).union(*(keys(value) for value in obj.values()))
    if isinstance(obj, list):
        return set().union(*(keys(value) for value in obj))
    return set()


def check_lifecycle(items: list[dict[str, Any]]) -> None:
    """PROTOCOLS.md §4.4's producer rules: ``start`` first, deltas only inside their part,
    every part closed before ``finish-step``, tool input started before its deltas and
    its end, one of ``finish``/``error`` last."""
    assert items[0]["type"] in ("start", "error")
    open_parts: dict[str, str] = {}  # id -> kind
    tools: set[str] = set()
    ended_tools: set[str] = set()
    in_step = False
    for i, item in enumerate(items):
        kind = item["type"]
        assert "__proto__" not in keys(item)
        if kind in ("finish", "error"):
            assert i == len(items) - 1, f"{kind} is not last"
            if kind == "finish":
                assert not in_step and not open_parts
            continue
        if kind == "start-step":
            assert not in_step
            in_step = True
        elif kind == "finish-step":
            assert in_step and not open_parts, open_parts
            in_step = False
        elif kind.endswith("-start") and kind.split("-")[0] in ("text", "reasoning"):
            assert in_step and item["id"] not in open_parts
            assert len(open_parts) == 0, "one text or reasoning part open at a time"
            open_parts[item["id"]] = kind.split("-")[0]
        elif kind.endswith(("-delta", "-end")) and kind.split("-")[0] in ("text", "reasoning"):
            assert open_parts.get(item["id"]) == kind.split("-")[0], item
            if kind.endswith("-delta"):
                assert isinstance(item["delta"], str) and item["delta"]
            else:
                del open_parts[item["id"]]
        elif kind == "tool-input-start":
            # (an upstream may reuse an id after a finish reason: only one at a time)
            assert in_step and not open_parts and item["toolCallId"] not in tools - ended_tools
            tools.add(item["toolCallId"])
            ended_tools.discard(item["toolCallId"])
        elif kind == "tool-input-delta":
            assert item["toolCallId"] in tools - ended_tools and item["inputTextDelta"]
        elif kind in ("tool-input-available", "tool-input-error"):
            assert item["toolCallId"] in tools - ended_tools
            ended_tools.add(item["toolCallId"])
        else:
            assert kind == "start" and i == 0, item
    if items[-1]["type"] == "finish":  # an error chunk may cut a call short, as a part
        assert tools == ended_tools


def texts(items: list[dict[str, Any]], kind: str = "text") -> str:
    return "".join(i["delta"] for i in items if i["type"] == f"{kind}-delta")


# --- the wire -------------------------------------------------------------------------


def test_registered_with_its_header() -> None:
    assert FORMATS["ai-sdk"] is AISDKFormat
    assert sse_headers("ai-sdk")["x-vercel-ai-ui-message-stream"] == "v1"
    assert sse_headers(WITH_ID)["x-vercel-ai-ui-message-stream"] == "v1"
    assert sse_headers("ai-sdk")["Content-Type"] == "text/event-stream; charset=utf-8"
    assert "x-vercel-ai-ui-message-stream" not in sse_headers("text")


def test_protocols_example_byte_for_byte() -> None:
    assert body(weather_example(), format=WITH_ID) == EXAMPLE_BYTES


def test_protocols_example_byte_for_byte_async() -> None:
    assert asyncio.run(abody(weather_example(), format=WITH_ID)) == EXAMPLE_BYTES


def test_protocols_example_from_an_async_source() -> None:
    async def source() -> Any:
        for item in weather_example():
            yield item

    assert asyncio.run(abody(source(), format=WITH_ID)) == EXAMPLE_BYTES


def test_message_id_must_be_a_str() -> None:
    with pytest.raises(TypeError, match="message_id must be a str"):
        AISDKFormat(message_id=1)  # type: ignore[arg-type]


def test_text_only_stream_and_on_complete() -> None:
    results: list[StreamResult] = []
    items = ui_chunks(body(answer("Hello", ",\n", "world"), on_complete=results.append))
    check_lifecycle(items)
    assert items == [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "text-start", "id": "text-0"},
        {"type": "text-delta", "id": "text-0", "delta": "Hello"},
        {"type": "text-delta", "id": "text-0", "delta": ",\n"},
        {"type": "text-delta", "id": "text-0", "delta": "world"},
        {"type": "text-end", "id": "text-0"},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop", "messageMetadata": {"usage": USAGE}},
    ]
    assert results[0].text == "Hello,\nworld"
    assert results[0].outcome == "finished"


def test_empty_deltas_open_no_part() -> None:
    source = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": None}),
        chunk({"content": ""}),
        chunk({}, "stop"),
    ]
    assert ui_chunks(body(source)) == [
        {"type": "start"},
        {"type": "start-step"},
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "stop"},
    ]


def test_str_pieces() -> None:
    items = ui_chunks(body(["Hi", "", " there\r\n"]))
    check_lifecycle(items)
    assert texts(items) == "Hi there\r\n"
    assert [i["type"] for i in items].count("text-delta") == 2
    assert items[-1] == {"type": "finish", "finishReason": "stop"}


def test_reasoning_and_text_alternate_in_parts_of_their_own() -> None:
    source = [
        chunk({"reasoning_content": "Hmm"}),
        chunk({"reasoning_content": " ok"}),
        chunk({"content": "A"}),
        chunk({"reasoning_content": "again"}),
        # Reasoning and text in one chunk: the reasoning first.
        chunk({"content": "B", "reasoning_content": "both"}),
        chunk({}, "stop"),
    ]
    results: list[StreamResult] = []
    items = ui_chunks(body(source, on_complete=results.append))
    check_lifecycle(items)
    assert [(i["type"], i.get("id")) for i in items if i["type"].endswith("-start")] == [
        ("reasoning-start", "reasoning-0"),
        ("text-start", "text-1"),
        ("reasoning-start", "reasoning-2"),
        ("text-start", "text-3"),
    ]
    assert texts(items, "reasoning") == "Hmm okagainboth"
    assert texts(items) == "AB"
    assert results[0].reasoning == "Hmm okagainboth"
    assert results[0].text == "AB"


def test_a_refusal_is_answer_text_and_finishes_as_content_filter() -> None:
    source = [chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")]
    results: list[StreamResult] = []
    items = ui_chunks(body(source, on_complete=results.append))
    check_lifecycle(items)
    assert texts(items) == "I can't help."
    assert items[-1]["finishReason"] == "content-filter"
    assert results[0].refusal == "I can't help."


@pytest.mark.parametrize(
    ("upstream", "expected"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool-calls"),
        ("function_call", "tool-calls"),
        ("content_filter", "content-filter"),
        ("end_turn", "other"),  # outside OpenAI's Literal: the AI SDK's schema has no such value
    ],
)
def test_finish_reasons_in_the_ai_sdks_spelling(upstream: str, expected: str) -> None:
    items = ui_chunks(body(answer("x", finish=upstream, usage=False)))
    assert items[-1] == {"type": "finish", "finishReason": expected}


def test_no_finish_reason_upstream_sends_none() -> None:
    source = [chunk({"content": "cut"}), usage_chunk(1, 2)]
    items = ui_chunks(body(source))
    assert items[-1] == {
        "type": "finish",
        "messageMetadata": {
            "usage": {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
        },
    }


def test_finish_waits_for_the_usage_chunk() -> None:
    items = ui_chunks(body([*answer("a", usage=False), usage_chunk(3, 4)]))
    assert items[-1]["messageMetadata"]["usage"]["total_tokens"] == 7


def test_usage_never_carries_a_proto_key() -> None:
    usage = {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    extra = {"__proto__": {"x": 1}, "constructor": {"prototype": {}}, "details": {"a": 1}}
    data = body([chunk({}, "stop"), chunk(choices=[], usage={**usage, **extra})])
    assert b"__proto__" not in data and b"prototype" not in data
    assert ui_chunks(data)[-1]["messageMetadata"]["usage"]["details"] == {"a": 1}


# --- tool calls -----------------------------------------------------------------------


def test_two_parallel_tool_calls() -> None:
    source = chunks(
        "Let me check.",
        tool_calls=[
            tool_call("get_weather", {"city": "Paris"}, id="call_a"),
            tool_call("get_time", {"tz": "Europe/Paris"}, id="call_b"),
        ],
        finish_reason="tool_calls",
    )
    results: list[StreamResult] = []
    items = ui_chunks(body(source, on_complete=results.append))
    check_lifecycle(items)
    assert [i for i in items if i["type"] == "tool-input-available"] == [
        {
            "type": "tool-input-available",
            "toolCallId": "call_a",
            "toolName": "get_weather",
            "input": {"city": "Paris"},
        },
        {
            "type": "tool-input-available",
            "toolCallId": "call_b",
            "toolName": "get_time",
            "input": {"tz": "Europe/Paris"},
        },
    ]
    for call_id, args in (("call_a", '{"city":"Paris"}'), ("call_b", '{"tz":"Europe/Paris"}')):
        streamed = [
            i["inputTextDelta"]
            for i in items
            if i["type"] == "tool-input-delta" and i["toolCallId"] == call_id
        ]
        assert len(streamed) > 1 and "".join(streamed) == args
    assert [c.name for c in results[0].tool_calls] == ["get_weather", "get_time"]


def test_arguments_before_the_id_and_name_are_sent_at_the_start() -> None:
    source = [
        fragment(0, '{"a":'),
        fragment(0, "", id="call_x"),
        fragment(0, "1", name="f"),
        fragment(0, "}"),
        chunk({}, "tool_calls"),
    ]
    items = ui_chunks(body(source))
    check_lifecycle(items)
    tool_items = [i for i in items if i["type"].startswith("tool-")]
    assert tool_items == [
        {"type": "tool-input-start", "toolCallId": "call_x", "toolName": "f"},
        {"type": "tool-input-delta", "toolCallId": "call_x", "inputTextDelta": '{"a":1'},
        {"type": "tool-input-delta", "toolCallId": "call_x", "inputTextDelta": "}"},
        {
            "type": "tool-input-available",
            "toolCallId": "call_x",
            "toolName": "f",
            "input": {"a": 1},
        },
    ]


def test_a_call_that_never_got_an_id_or_name_still_starts_and_ends() -> None:
    items = ui_chunks(body([fragment(0, '{"q":2}'), chunk({}, "tool_calls")]))
    check_lifecycle(items)
    assert [i for i in items if i["type"].startswith("tool-")] == [
        {"type": "tool-input-start", "toolCallId": "call_0", "toolName": ""},
        {"type": "tool-input-available", "toolCallId": "call_0", "toolName": "", "input": {"q": 2}},
    ]


def test_text_after_a_tool_call_opens_a_new_text_part() -> None:
    source = [
        chunk({"content": "before"}),
        fragment(0, "", id="c1", name="f"),
        chunk({"content": "after"}),
        chunk({}, "tool_calls"),
    ]
    items = ui_chunks(body(source))
    check_lifecycle(items)
    assert [i["type"] for i in items[2:-2]] == [
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-start",
        "text-start",
        "text-delta",
        "text-end",
        "tool-input-available",
    ]
    assert items[-3]["input"] == {}  # no arguments at all: an empty object


@pytest.mark.parametrize(
    ("arguments", "reason"),
    [
        ('{"city": "Par', "not valid JSON"),
        ('{"x": NaN}', "not valid JSON"),  # Python reads NaN; JSON.parse does not
        ('{"__proto__": {"admin": true}}', "__proto__"),
        ('{"a": {"constructor": {"prototype": {}}}}', "__proto__ or constructor.prototype"),
    ],
)
def test_arguments_the_client_cannot_take_become_tool_input_error(
    arguments: str, reason: str
) -> None:
    source = [fragment(0, "", id="c1", name="f"), fragment(0, arguments), chunk({}, "tool_calls")]
    items = ui_chunks(body(source))
    check_lifecycle(items)
    error = next(i for i in items if i["type"] == "tool-input-error")
    assert error["input"] == arguments
    assert reason in error["errorText"]


# --- failure, heartbeats, closing ---------------------------------------------------------


def failing(after: int) -> FakeStream[ChatCompletionChunk]:
    from llmsse.testing.errors import api_error

    return FakeStream(answer("one", "two"), error=api_error("secret detail"), error_after=after)


@pytest.mark.parametrize("run", [body, lambda s, **o: asyncio.run(abody(s, **o))])
def test_an_upstream_error_ends_with_a_masked_error_chunk_then_done(
    run: Callable[..., bytes],
) -> None:
    source = failing(2)
    results: list[StreamResult] = []
    data = run(source, on_complete=results.append)
    assert b"secret" not in data
    items = ui_chunks(data)
    check_lifecycle(items)
    assert items[-1] == {"type": "error", "errorText": GENERIC_MESSAGE}
    assert texts(items) == "one"
    assert source.close_count == 1
    assert results[0].outcome == "failed"


def test_on_error_chooses_the_error_text() -> None:
    data = body(failing(1), on_error=lambda exc: "The model is busy, try again.")
    assert ui_chunks(data)[-1] == {"type": "error", "errorText": "The model is busy, try again."}


def test_heartbeats_are_comments_from_the_first_moment() -> None:
    source = FakeStream(answer("late"), first_delay=0.35)
    data = body(source, heartbeat=0.1)
    assert data.count(b": ping\n\n") >= 2
    assert data.index(b": ping") < data.index(b"text-start")
    assert texts(ui_chunks(data)) == "late"


# --- the AI SDK's own client ---------------------------------------------------------------

JS = Path(__file__).parent / "js"


# The npm packages (tests/js/package.json): ai 6 as "ai", and ai 5 and 7 under aliases.
# They accept the same streams (PROTOCOLS.md §4.2); useChat apps run all three.
CLIENTS = {"ai@6.0.326": "ai", "ai@5.0.277": "ai5", "ai@7.0.173": "ai7"}


@pytest.fixture(scope="session")
def node_modules() -> str:
    """The path of ``node``, once tests/js has its packages (``npm ci`` on first use)."""
    return node_with(
        JS, list(CLIENTS.values()), tests="the AI SDK client tests", needs="the ai package"
    )


@pytest.fixture(params=list(CLIENTS.values()), ids=list(CLIENTS))
def ai_sdk(
    request: pytest.FixtureRequest, node_modules: str
) -> Iterator[Callable[[list[bytes]], list[dict[str, Any]]]]:
    """``read(bodies)``: what the ``ai`` package's client makes of each response body."""
    node, client = node_modules, request.param

    def read(bodies: list[bytes], piece: int = 7) -> list[dict[str, Any]]:
        return read_streams(node, JS / "read_ui_stream.mjs", bodies, piece, client=client)

    yield read


def test_the_ai_sdk_reads_the_protocols_example(ai_sdk: Any) -> None:
    (read,) = ai_sdk([body(weather_example(), format=WITH_ID)])
    assert read["error"] is None
    assert read["chunks"] == ui_chunks(EXAMPLE_BYTES)  # every chunk passed the schema
    assert read["message"] == {
        "id": "msg_1",
        "role": "assistant",
        "metadata": {"usage": {"completion_tokens": 12, "prompt_tokens": 9, "total_tokens": 21}},
        "parts": [
            {"type": "step-start"},
            {"type": "reasoning", "id": "reasoning-0", "text": "Need weather.", "state": "done"},
            {"type": "text", "text": "Checking Paris…\n", "state": "done"},
            {
                "type": "tool-get_weather",
                "toolCallId": "call_1",
                "state": "input-available",
                "input": {"city": "Paris"},
            },
        ],
    }
    # useChat's own core (AbstractChat) after sendMessage: what a component sees.
    chat = read["chat"]
    assert (chat["status"], chat["error"]) == ("ready", None)
    assert chat["finish"] == {"isError": False, "isAbort": False, "finishReason": "tool-calls"}
    assert chat["toolCalls"] == [
        {"toolName": "get_weather", "toolCallId": "call_1", "input": {"city": "Paris"}}
    ]
    assert [m["role"] for m in chat["messages"]] == ["user", "assistant"]
    assert chat["messages"][-1] == read["message"]


def test_the_ai_sdk_reads_what_llmsse_sends(ai_sdk: Any) -> None:
    """Every kind of stream llmsse sends, read by the real client, fed 7 bytes at a time."""
    rng = random.Random(2026)
    alphabet = 'ab \n\r"\\é€😀\u2028\x00:{}'
    pieces = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(40)]
    reasoning_and_refusal = [
        chunk({"reasoning_content": "think"}),
        chunk({"content": "A"}),
        chunk({"refusal": "no"}),
        chunk({}, "stop"),
    ]
    bad_tool = [fragment(0, "", id="c1", name="f"), fragment(0, "{oops"), chunk({}, "tool_calls")]
    parallel = chunks(
        tool_calls=[tool_call("f", {"a": [1, 2]}, id="ca"), tool_call("g", "{}", id="cb")],
        finish_reason="tool_calls",
    )
    streams = {
        "pieces": body(answer(*pieces)),
        "str": body(["Hello", " ", "world"]),
        "empty": body([chunk({"content": ""}), chunk({}, "stop")]),
        "pings, retry and ids": body(
            FakeStream(answer("x", "y"), first_delay=0.25), heartbeat=0.1, retry=3000, ids=True
        ),
        "reasoning and refusal": body(reasoning_and_refusal),
        "bad tool input": body(bad_tool),
        "parallel tools": body(parallel),
        "surrogates": body(answer("\ud83d", "\ude00")),
        "error": body(failing(2)),
    }
    assert b": ping" in streams["pings, retry and ids"]
    reads = dict(zip(streams, ai_sdk(list(streams.values())), strict=True))
    for name, data in streams.items():
        assert reads[name]["chunks"] == ui_chunks(data), name
        assert read_ai_sdk_stream(data).chunks == reads[name]["chunks"], name  # the kit's reader
        if name != "error":
            assert reads[name]["error"] is None, (name, reads[name]["error"])

    def parts(name: str) -> list[dict[str, Any]]:
        message = reads[name]["message"]  # None when nothing was ever shown
        return [p for p in (message or {"parts": []})["parts"] if p["type"] != "step-start"]

    assert parts("pieces") == [{"type": "text", "text": "".join(pieces), "state": "done"}]
    assert parts("str") == [{"type": "text", "text": "Hello world", "state": "done"}]
    assert parts("empty") == []
    assert parts("pings, retry and ids") == [{"type": "text", "text": "xy", "state": "done"}]
    assert [(p["type"], p["text"]) for p in parts("reasoning and refusal")] == [
        ("reasoning", "think"),
        ("text", "Ano"),
    ]
    (bad,) = parts("bad tool input")
    assert (bad["type"], bad["toolCallId"], bad["state"]) == ("tool-f", "c1", "output-error")
    assert bad.get("rawInput", bad.get("input")) == "{oops"  # "input" in ai 7
    assert bad["errorText"].startswith("The tool call's arguments are not valid JSON")
    assert [(p["type"], p["state"], p["input"]) for p in parts("parallel tools")] == [
        ("tool-f", "input-available", {"a": [1, 2]}),
        ("tool-g", "input-available", {}),
    ]
    assert parts("surrogates") == [{"type": "text", "text": "😀", "state": "done"}]
    for name, data in streams.items():  # the kit's reader shows the same answer
        shown = "".join(p["text"] for p in parts(name) if p["type"] == "text")
        assert js_string(read_ai_sdk_stream(data).text) == shown, name
    assert reads["error"]["error"] == f"Error: {GENERIC_MESSAGE}"
    # What useChat reports (AbstractChat, the class the hook wraps).
    for name in streams:
        chat = reads[name]["chat"]
        if name == "error":
            assert (chat["status"], chat["error"]) == ("error", GENERIC_MESSAGE)
            assert chat["finish"]["isError"] is True
        else:
            assert (chat["status"], chat["error"]) == ("ready", None), name
            if reads[name]["message"] is not None:  # the same parts as readUIMessageStream's
                assert chat["messages"][-1]["parts"] == reads[name]["message"]["parts"], name
    finish_reasons = {name: reads[name]["chat"]["finish"]["finishReason"] for name in streams}
    assert finish_reasons == {
        "pieces": "stop",
        "str": "stop",
        "empty": "stop",
        "pings, retry and ids": "stop",
        "reasoning and refusal": "content-filter",
        "bad tool input": "tool-calls",
        "parallel tools": "tool-calls",
        "surrogates": "stop",
        "error": None,
    }
    assert [(c["toolName"], c["input"]) for c in reads["parallel tools"]["chat"]["toolCalls"]] == [
        ("f", {"a": [1, 2]}),
        ("g", {}),
    ]
    assert reads["error"]["message"]["parts"][-1]["text"] == "one"


def test_the_ai_sdk_reads_a_responses_source(ai_sdk: Any) -> None:
    """Responses API events (PROTOCOLS.md §6.4) in every shape, and seeded mixes of
    interleaved deltas: the real client accepts each stream and shows the same answer."""
    from llmsse.testing import response_events, to_response_event

    calls = [tool_call("f", {"a": [1]}, id="c1"), tool_call("g", "{bad", id="c2")]
    streams = {
        "everything": body(
            response_events("Hello world", reasoning=[["Think"], ["More"]], tool_calls=calls)
        ),
        "refusal": body(response_events("A", refusal="No.")),
        "incomplete": body(response_events("cut", end="incomplete")),
        "failed": body(response_events("Hi", end="failed", error_message="sk-secret")),
        "nested error": body(response_events("Hi", end="nested-error")),
        "pings and ids": body(
            FakeStream(response_events("x y"), first_delay=0.25), heartbeat=0.1, ids=True
        ),
    }
    for n, dicts in enumerate(seeded_mixes(6)):
        streams[f"mix {n}"] = body([to_response_event(d) for d in dicts])
    reads = dict(zip(streams, ai_sdk(list(streams.values())), strict=True))
    for name, data in streams.items():
        items = ui_chunks(data)
        check_lifecycle(items)
        assert reads[name]["chunks"] == items == read_ai_sdk_stream(data).chunks, name
        chat = reads[name]["chat"]
        if name in ("failed", "nested error"):
            assert (chat["status"], chat["error"]) == ("error", GENERIC_MESSAGE)
            continue
        assert reads[name]["error"] is None, (name, reads[name]["error"])
        assert chat["status"] == "ready", name
        shown = "".join(
            p.get("text", "")
            for p in (reads[name]["message"] or {"parts": []})["parts"]
            if p["type"] == "text"
        )
        assert shown == texts(items), name

    parts = [p for p in reads["everything"]["message"]["parts"] if p["type"] != "step-start"]
    assert [(p["type"], p.get("text"), p.get("state")) for p in parts] == [
        ("reasoning", "Think\n\nMore", "done"),
        ("text", "Hello world", "done"),
        ("tool-f", None, "input-available"),
        ("tool-g", None, "output-error"),
    ]
    assert reads["everything"]["chat"]["finish"]["finishReason"] == "tool-calls"
    assert reads["refusal"]["chat"]["finish"]["finishReason"] == "content-filter"
    assert reads["incomplete"]["chat"]["finish"]["finishReason"] == "length"
    assert b"sk-secret" not in streams["failed"]


def test_the_ai_sdk_rejects_what_llmsse_must_never_send(ai_sdk: Any) -> None:
    """The reader is strict enough to notice a broken stream (so its passing means something)."""
    bad = [
        b'data: {"type":"start"}\n\ndata: {"type":"text-delta","id":"x","delta":"a"}\n\n',
        b'data: {"type":"finish","finishReason":"tool_calls"}\n\n',
        b'data: {"type":"tool-input-available","toolCallId":"c","toolName":"f",'
        b'"input":{"__proto__":{}}}\n\n',
    ]
    reads = ai_sdk(bad)
    assert reads[0]["error"] is not None  # ai 5 fails with a TypeError, later ones explain
    assert "TypeValidationError" in reads[1]["error"]
    assert reads[2]["error"] is not None
    # The kit's reader fails on each as well, for the same reason.
    reasons = ["text-delta for text part", "finishReason", "__proto__"]
    for data, reason in zip(bad, reasons, strict=True):
        with pytest.raises(AssertionError, match=reason):
            read_ai_sdk_stream(data)


# --- docs/ai-sdk.md -------------------------------------------------------------------------


def docs_backend(monkeypatch: pytest.MonkeyPatch, client: Any) -> dict[str, Any]:
    """The FastAPI example of docs/ai-sdk.md, run as written, with ``client`` as its model."""
    page = (Path(__file__).parents[1] / "docs" / "ai-sdk.md").read_text(encoding="utf-8")
    code = page.split("```python\n", 1)[1].split("```\n", 1)[0]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs")  # AsyncOpenAI() at import
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/ai-sdk.md", "exec"), namespace)
    namespace["client"] = client
    return namespace


def test_the_docs_backend_round_trip(
    monkeypatch: pytest.MonkeyPatch, fake_openai: Any, ai_sdk: Any
) -> None:
    from fastapi.testclient import TestClient

    from llmsse.testing import Reply

    fake_openai.reply(
        Reply(
            "Checking.",
            reasoning="Need weather.",
            tool_calls=[tool_call("get_weather", {"city": "Paris"}, id="call_1")],
        ),
        Reply("Sunny in Paris.\nEnjoy!"),
    )
    docs = docs_backend(monkeypatch, fake_openai.async_client())
    http = TestClient(docs["app"])
    user = {"id": "u1", "role": "user", "parts": [{"type": "text", "text": "Weather in Paris?"}]}
    request = {"id": "chat-1", "messages": [user], "trigger": "submit-message"}

    first = http.post("/api/chat", json=request)
    assert first.headers["x-vercel-ai-ui-message-stream"] == "v1"
    assert first.headers["content-type"] == "text/event-stream; charset=utf-8"
    (read,) = ai_sdk([first.content])
    assert read["error"] is None
    assistant = read["message"]
    assert [p["type"] for p in assistant["parts"]] == [
        "step-start",
        "reasoning",
        "text",
        "tool-get_weather",
    ]
    assert assistant["metadata"]["usage"]["total_tokens"] > 0

    # What the page sends back once onToolCall gave the output (addToolOutput).
    assistant["id"] = "a1"
    call = assistant["parts"][-1]
    call.update(state="output-available", output={"sky": "sunny"})
    second = http.post("/api/chat", json={**request, "messages": [user, assistant]})
    assert fake_openai.last_request.messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {
            "role": "assistant",
            "content": "Checking.",
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'},
    ]
    (read,) = ai_sdk([second.content])
    assert [p["text"] for p in read["message"]["parts"] if p["type"] == "text"] == [
        "Sunny in Paris.\nEnjoy!"
    ]

    # A call whose arguments were not JSON goes back as the model wrote them.
    for key in ("rawInput", "input"):  # ai 5 and 6, ai 7
        assert docs["arguments_of"]({"state": "output-error", key: "{oops"}) == "{oops"
