"""The "ag-ui" format: AG-UI events, checked against the ``ag-ui-protocol`` package's models.

Every event is parsed into its class from ``ag_ui.core`` and must serialise back to the
same bytes (what ``ag_ui.encoder.EventEncoder`` writes); the lifecycle rules are those the
JS client (``@ag-ui/client``'s ``verifyEvents``) enforces, PROTOCOLS.md §5.3.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ag_ui import core
from ag_ui.encoder import EventEncoder
from openai.types.chat import ChatCompletionChunk

import llmsse
from _chunks import answer, chunk, fragment, js_string, usage_chunk, weather_example
from _node import node_with, read_streams
from _responses import seeded_mixes
from llmsse import StreamResult, sse_headers
from llmsse._errors import GENERIC_MESSAGE
from llmsse.formats import FORMATS, AGUIFormat
from llmsse.testing import FakeStream, chunks, read_ag_ui_stream, tool_call

# PROTOCOLS.md §6.3, "Example output", byte for byte.
EXAMPLE_BYTES = (
    b'data: {"type":"RUN_STARTED","threadId":"thread_1","runId":"run_1"}\n\n'
    b'data: {"type":"REASONING_START","messageId":"rs_1"}\n\n'
    b'data: {"type":"REASONING_MESSAGE_START","messageId":"rs_1","role":"reasoning"}\n\n'
    b'data: {"type":"REASONING_MESSAGE_CONTENT","messageId":"rs_1","delta":"Need weather."}\n\n'
    b'data: {"type":"REASONING_MESSAGE_END","messageId":"rs_1"}\n\n'
    b'data: {"type":"REASONING_END","messageId":"rs_1"}\n\n'
    b'data: {"type":"TEXT_MESSAGE_START","messageId":"msg_1","role":"assistant"}\n\n'
    b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"msg_1","delta":"Checking "}\n\n'
    b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"msg_1","delta":"Paris\xe2\x80\xa6\\n"}\n\n'
    b'data: {"type":"TEXT_MESSAGE_END","messageId":"msg_1"}\n\n'
    b'data: {"type":"TOOL_CALL_START","toolCallId":"call_1","toolCallName":"get_weather",'
    b'"parentMessageId":"msg_1"}\n\n'
    b'data: {"type":"TOOL_CALL_ARGS","toolCallId":"call_1","delta":"{\\"city\\":"}\n\n'
    b'data: {"type":"TOOL_CALL_ARGS","toolCallId":"call_1","delta":"\\"Paris\\"}"}\n\n'
    b'data: {"type":"TOOL_CALL_END","toolCallId":"call_1"}\n\n'
    b'data: {"type":"RUN_FINISHED","threadId":"thread_1","runId":"run_1"}\n\n'
)

PINNED = functools.partial(
    AGUIFormat, thread_id="thread_1", run_id="run_1", message_id="msg_1", reasoning_id="rs_1"
)


def body(source: Any, **options: Any) -> bytes:
    options.setdefault("format", "ag-ui")
    options.setdefault("heartbeat", None)
    return b"".join(llmsse.iter_sse(source, **options))


async def abody(source: Any, **options: Any) -> bytes:
    options.setdefault("format", "ag-ui")
    options.setdefault("heartbeat", None)
    return b"".join([part async for part in llmsse.aiter_sse(source, **options)])


def arun(source: Any, **options: Any) -> bytes:
    return asyncio.run(abody(source, **options))


PIPELINES = pytest.mark.parametrize("run", [body, arun], ids=["sync", "async"])


def model_of(kind: str) -> type[core.BaseEvent]:
    """The ``ag_ui.core`` class of a wire ``type``: TEXT_MESSAGE_START → TextMessageStartEvent."""
    name = "".join(word.capitalize() for word in kind.split("_")) + "Event"
    cls: type[core.BaseEvent] = getattr(core, name)
    return cls


def client_blocks(data: bytes) -> list[str]:
    """The JSON texts the AG-UI JS client reads (PROTOCOLS.md §5.3 / §1.8): it splits the
    body on ``\\n\\n`` only, keeps the ``data:`` lines of each block and skips a block
    that has none (comments, ``retry:``)."""
    out = []
    for block in data.decode().split("\n\n"):
        lines = [
            line[5:].removeprefix(" ") for line in block.split("\n") if line.startswith("data:")
        ]
        if lines:
            out.append("\n".join(lines))
    return out


def events(data: bytes) -> list[dict[str, Any]]:
    """The events of a body, each validated by the ag-ui-protocol model of its type and
    re-encoded by its ``EventEncoder`` to the very same bytes."""
    assert b"\r" not in data
    assert data.endswith(b"\n\n")
    encoder = EventEncoder()
    out = []
    for text in client_blocks(data):
        obj = json.loads(text)
        assert None not in obj.values()  # the JS client rejects null for optional fields
        cls = model_of(obj["type"])
        if "\\ud" in text:
            # A lone surrogate, ASCII-escaped (PROTOCOLS.md §6.5): pydantic's JSON parser
            # refuses it where JSON.parse takes it, so the model checks the parsed object.
            model = cls.model_validate(obj)
        else:
            model = cls.model_validate_json(text)
            assert encoder.encode(model) == f"data: {text}\n\n"
        assert model.model_dump(mode="json", by_alias=True, exclude_none=True) == obj
        out.append(obj)
    return out


def check_lifecycle(items: list[dict[str, Any]]) -> None:
    """PROTOCOLS.md §5.3: RUN_STARTED first; content only inside its START/END; no delta
    empty; nothing open at RUN_FINISHED; RUN_FINISHED or RUN_ERROR last."""
    assert items[0]["type"] == "RUN_STARTED"
    texts: set[str] = set()
    reasonings: set[str] = set()
    reasoning_messages: set[str] = set()
    tools: set[str] = set()
    seen_messages: set[str] = set()  # a message id is never opened twice
    for i, item in enumerate(items[1:], 1):
        kind = item["type"]
        if kind in ("RUN_FINISHED", "RUN_ERROR"):
            assert i == len(items) - 1, f"{kind} is not last"
            if kind == "RUN_FINISHED":
                assert (item["threadId"], item["runId"]) == (
                    items[0]["threadId"],
                    items[0]["runId"],
                )
                assert not (texts or reasonings or reasoning_messages or tools)
        elif kind == "TEXT_MESSAGE_START":
            assert item["role"] == "assistant"
            assert item["messageId"] not in seen_messages
            seen_messages.add(item["messageId"])
            texts.add(item["messageId"])
        elif kind == "TEXT_MESSAGE_CONTENT":
            assert item["messageId"] in texts and item["delta"]
        elif kind == "TEXT_MESSAGE_END":
            texts.remove(item["messageId"])
        elif kind == "REASONING_START":
            assert item["messageId"] not in seen_messages
            seen_messages.add(item["messageId"])
            reasonings.add(item["messageId"])
        elif kind == "REASONING_MESSAGE_START":
            assert item["messageId"] in reasonings and item["role"] == "reasoning"
            reasoning_messages.add(item["messageId"])
        elif kind == "REASONING_MESSAGE_CONTENT":
            assert item["messageId"] in reasoning_messages and item["delta"]
        elif kind == "REASONING_MESSAGE_END":
            reasoning_messages.remove(item["messageId"])
        elif kind == "REASONING_END":
            assert item["messageId"] not in reasoning_messages
            reasonings.remove(item["messageId"])
        elif kind == "TOOL_CALL_START":
            assert item["toolCallId"] not in tools and "parentMessageId" in item
            tools.add(item["toolCallId"])
        elif kind == "TOOL_CALL_ARGS":
            assert item["toolCallId"] in tools and item["delta"]
        elif kind == "TOOL_CALL_END":
            tools.remove(item["toolCallId"])
        else:
            raise AssertionError(f"unexpected event {item}")
        # One text or reasoning message open at a time.
        assert len(texts) + len(reasonings) <= 1


def deltas(items: list[dict[str, Any]], kind: str = "TEXT_MESSAGE_CONTENT") -> str:
    return "".join(i["delta"] for i in items if i["type"] == kind)


def kinds(items: list[dict[str, Any]]) -> list[str]:
    return [i["type"] for i in items]


# --- the wire -------------------------------------------------------------------------


def test_registered_without_extra_headers() -> None:
    assert FORMATS["ag-ui"] is AGUIFormat
    assert sse_headers("ag-ui") == sse_headers("text")


def test_the_format_does_not_import_ag_ui_protocol() -> None:
    code = (
        "import sys, llmsse; from llmsse.formats import AGUIFormat; "
        "b''.join(llmsse.iter_sse(['x'], format='ag-ui', heartbeat=None)); "
        "print(sorted(m for m in sys.modules if m.startswith('ag_ui')))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_protocols_example_byte_for_byte() -> None:
    assert body(weather_example(), format=PINNED) == EXAMPLE_BYTES


def test_protocols_example_byte_for_byte_async() -> None:
    assert arun(weather_example(), format=PINNED) == EXAMPLE_BYTES


def test_protocols_example_from_an_async_source() -> None:
    async def source() -> Any:
        for item in weather_example():
            yield item

    assert arun(source(), format=PINNED) == EXAMPLE_BYTES


def test_the_example_is_what_the_packages_encoder_writes() -> None:
    items = events(EXAMPLE_BYTES)
    check_lifecycle(items)
    encoder = EventEncoder()
    again = "".join(encoder.encode(model_of(i["type"]).model_validate(i)) for i in items)
    assert again.encode() == EXAMPLE_BYTES


def test_ids_are_generated_and_unique_per_stream() -> None:
    first, second = events(body(answer("a"))), events(body(answer("a")))
    for key in ("threadId", "runId"):
        assert first[0][key] != second[0][key]
        assert first[0][key] == first[-1][key]
    assert first[1]["messageId"] != second[1]["messageId"]


@pytest.mark.parametrize("option", ["thread_id", "run_id", "message_id", "reasoning_id"])
def test_ids_must_be_str(option: str) -> None:
    with pytest.raises(TypeError, match=f"{option} must be a str or None, got int"):
        AGUIFormat(**{option: 1})  # type: ignore[arg-type]


def test_text_only_stream_and_on_complete() -> None:
    results: list[StreamResult] = []
    fmt = functools.partial(AGUIFormat, thread_id="t", run_id="r", message_id="m")
    items = events(body(answer("Hello", ",\n", "wörld"), format=fmt, on_complete=results.append))
    check_lifecycle(items)
    assert items == [
        {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
        {"type": "TEXT_MESSAGE_START", "messageId": "m", "role": "assistant"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "Hello"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": ",\n"},
        {"type": "TEXT_MESSAGE_CONTENT", "messageId": "m", "delta": "wörld"},
        {"type": "TEXT_MESSAGE_END", "messageId": "m"},
        {"type": "RUN_FINISHED", "threadId": "t", "runId": "r"},
    ]
    assert results[0].text == "Hello,\nwörld"
    assert results[0].outcome == "finished"


def test_raw_utf8() -> None:
    assert "wörld 👋".encode() in body(answer("wörld 👋"))


def test_empty_deltas_open_no_message() -> None:
    source = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": None}),
        chunk({"content": "", "reasoning_content": ""}),
        chunk({}, "stop"),
        usage_chunk(),
    ]
    assert kinds(events(body(source))) == ["RUN_STARTED", "RUN_FINISHED"]


@PIPELINES
def test_str_pieces(run: Callable[..., bytes]) -> None:
    items = events(run(["Hi", "", " there\r\n"]))
    check_lifecycle(items)
    assert deltas(items) == "Hi there\r\n"
    assert kinds(items).count("TEXT_MESSAGE_CONTENT") == 2


def test_reasoning_and_text_alternate_in_messages_of_their_own() -> None:
    source = [
        chunk({"reasoning_content": "Hmm"}),
        chunk({"reasoning_content": " ok"}),
        chunk({"content": "A"}),
        chunk({"reasoning_content": "again"}),
        chunk({"content": "B", "reasoning_content": "both"}),  # the reasoning first
        chunk({}, "stop"),
    ]
    results: list[StreamResult] = []
    items = events(body(source, format=PINNED, on_complete=results.append))
    check_lifecycle(items)
    starts = [(i["type"], i["messageId"]) for i in items if i["type"].endswith("_START")]
    assert starts == [
        ("REASONING_START", "rs_1"),
        ("REASONING_MESSAGE_START", "rs_1"),
        ("TEXT_MESSAGE_START", "msg_1"),
        ("REASONING_START", "rs_1-2"),
        ("REASONING_MESSAGE_START", "rs_1-2"),
        ("TEXT_MESSAGE_START", "msg_1-2"),
    ]
    assert deltas(items, "REASONING_MESSAGE_CONTENT") == "Hmm okagainboth"
    assert deltas(items) == "AB"
    assert results[0].reasoning == "Hmm okagainboth"


def test_a_refusal_is_answer_text() -> None:
    source = [chunk({"refusal": "I can't"}), chunk({"refusal": " help."}), chunk({}, "stop")]
    results: list[StreamResult] = []
    items = events(body(source, on_complete=results.append))
    check_lifecycle(items)
    assert deltas(items) == "I can't help."
    assert results[0].refusal == "I can't help."


# --- tool calls -----------------------------------------------------------------------


def test_two_parallel_tool_calls_hang_on_the_assistant_message() -> None:
    source = chunks(
        "Let me check.",
        tool_calls=[
            tool_call("get_weather", {"city": "Paris"}, id="call_a"),
            tool_call("get_time", {"tz": "Europe/Paris"}, id="call_b"),
        ],
        finish_reason="tool_calls",
    )
    results: list[StreamResult] = []
    items = events(body(source, format=PINNED, on_complete=results.append))
    check_lifecycle(items)
    assert [i for i in items if i["type"] == "TOOL_CALL_START"] == [
        {
            "type": "TOOL_CALL_START",
            "toolCallId": call_id,
            "toolCallName": name,
            "parentMessageId": "msg_1",
        }
        for call_id, name in (("call_a", "get_weather"), ("call_b", "get_time"))
    ]
    for call_id, args in (("call_a", '{"city":"Paris"}'), ("call_b", '{"tz":"Europe/Paris"}')):
        streamed = [
            i["delta"]
            for i in items
            if i["type"] == "TOOL_CALL_ARGS" and i["toolCallId"] == call_id
        ]
        assert len(streamed) > 1 and "".join(streamed) == args
    assert [c.name for c in results[0].tool_calls] == ["get_weather", "get_time"]


def test_a_call_before_any_text_gets_the_message_id_and_text_after_it_a_new_one() -> None:
    source = [fragment(0, "{}", id="c1", name="f"), chunk({"content": "after"}), chunk({}, "stop")]
    items = events(body(source, format=PINNED))
    check_lifecycle(items)
    assert items[1]["parentMessageId"] == "msg_1"
    assert [i["messageId"] for i in items if i["type"] == "TEXT_MESSAGE_START"] == ["msg_1-2"]


def test_arguments_before_the_id_and_name_are_sent_at_the_start() -> None:
    source = [
        fragment(0, '{"a":'),
        fragment(0, "", id="call_x"),
        fragment(0, "1", name="f"),
        fragment(0, "}"),
        chunk({}, "tool_calls"),
    ]
    items = events(body(source))
    check_lifecycle(items)
    assert [(i["type"], i.get("delta")) for i in items[1:-1]] == [
        ("TOOL_CALL_START", None),
        ("TOOL_CALL_ARGS", '{"a":1'),
        ("TOOL_CALL_ARGS", "}"),
        ("TOOL_CALL_END", None),
    ]


def test_a_call_that_never_got_an_id_or_name_still_starts_and_ends() -> None:
    items = events(body([fragment(0, '{"q":2}'), chunk({}, "tool_calls")], format=PINNED))
    check_lifecycle(items)
    assert items[1:-1] == [
        {
            "type": "TOOL_CALL_START",
            "toolCallId": "call_1",
            "toolCallName": "",
            "parentMessageId": "msg_1",
        },
        {"type": "TOOL_CALL_ARGS", "toolCallId": "call_1", "delta": '{"q":2}'},
        {"type": "TOOL_CALL_END", "toolCallId": "call_1"},
    ]


def test_a_call_without_a_finish_reason_is_ended_before_run_finished() -> None:
    items = events(body([fragment(0, '{"a":1}', id="c1", name="f")]))
    check_lifecycle(items)
    assert kinds(items)[-2:] == ["TOOL_CALL_END", "RUN_FINISHED"]


# --- failure, heartbeats, closing ---------------------------------------------------------


def failing(after: int) -> FakeStream[ChatCompletionChunk]:
    from llmsse.testing.errors import api_error

    return FakeStream(answer("one", "two"), error=api_error("secret detail"), error_after=after)


@PIPELINES
def test_an_upstream_error_ends_with_a_masked_run_error(run: Callable[..., bytes]) -> None:
    source = failing(2)
    results: list[StreamResult] = []
    data = run(source, on_complete=results.append)
    assert b"secret" not in data
    items = events(data)
    check_lifecycle(items)
    assert items[-1] == {"type": "RUN_ERROR", "message": GENERIC_MESSAGE}
    assert "RUN_FINISHED" not in kinds(items)
    assert kinds(items)[-2] == "TEXT_MESSAGE_END"  # the partial message is closed first
    assert deltas(items) == "one"
    assert source.close_count == 1
    assert results[0].outcome == "failed"


def test_an_error_with_a_tool_call_open_closes_it_first() -> None:
    from llmsse.testing.errors import api_error

    source = FakeStream(
        [fragment(0, '{"a":', id="c1", name="f")], error=api_error("secret"), error_after=1
    )
    items = events(body(source))
    check_lifecycle(items)
    assert kinds(items)[-2:] == ["TOOL_CALL_END", "RUN_ERROR"]


def test_on_error_chooses_the_message() -> None:
    data = body(failing(1), on_error=lambda exc: "The model is busy, try again.")
    assert events(data)[-1] == {"type": "RUN_ERROR", "message": "The model is busy, try again."}


@PIPELINES
def test_heartbeats_are_comments_the_client_skips(run: Callable[..., bytes]) -> None:
    source = FakeStream(answer("late"), first_delay=0.35)
    data = run(source, heartbeat=0.1)
    assert data.count(b": ping\n\n") >= 2
    assert data.index(b": ping") < data.index(b"TEXT_MESSAGE_START")
    # A ": ping" block has no data line: the client's parser drops it (no JSON.parse).
    assert client_blocks(b": ping\n\n") == []
    items = events(data)
    check_lifecycle(items)
    assert deltas(items) == "late"


# --- docs/ag-ui.md -------------------------------------------------------------------------


def docs_backend(monkeypatch: pytest.MonkeyPatch, client: Any) -> dict[str, Any]:
    """The FastAPI example of docs/ag-ui.md, run as written, with ``client`` as its model."""
    page = (Path(__file__).parents[1] / "docs" / "ag-ui.md").read_text(encoding="utf-8")
    code = page.split("```python\n", 1)[1].split("```\n", 1)[0]
    monkeypatch.setenv("OPENAI_API_KEY", "sk-docs")  # AsyncOpenAI() at import
    namespace: dict[str, Any] = {}
    exec(compile(code, "docs/ag-ui.md", "exec"), namespace)
    namespace["client"] = client
    return namespace


def test_the_docs_backend_round_trip(monkeypatch: pytest.MonkeyPatch, fake_openai: Any) -> None:
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
    http = TestClient(docs_backend(monkeypatch, fake_openai.async_client())["app"])
    weather = {
        "name": "get_weather",
        "description": "The weather in a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    user = {"id": "u1", "role": "user", "content": "Weather in Paris?"}
    run = {
        "threadId": "t1",
        "runId": "r1",
        "state": {},
        "messages": [user],
        "tools": [weather],
        "context": [],
        "forwardedProps": {},
    }
    core.RunAgentInput.model_validate(run)  # what HttpAgent posts

    first = http.post("/api/agent", json=run)
    assert first.headers["content-type"] == "text/event-stream; charset=utf-8"
    items = events(first.content)
    check_lifecycle(items)
    assert items[0] == {"type": "RUN_STARTED", "threadId": "t1", "runId": "r1"}
    assert items[-1] == {"type": "RUN_FINISHED", "threadId": "t1", "runId": "r1"}
    assert deltas(items) == "Checking."
    assert deltas(items, "REASONING_MESSAGE_CONTENT") == "Need weather."
    (start,) = [i for i in items if i["type"] == "TOOL_CALL_START"]
    assert (start["toolCallId"], start["toolCallName"]) == ("call_1", "get_weather")
    assert fake_openai.last_request.json["tools"] == [{"type": "function", "function": weather}]

    # What HttpAgent posts next: the assistant message it built, and the tool's result.
    text_id = next(i["messageId"] for i in items if i["type"] == "TEXT_MESSAGE_START")
    args = "".join(i["delta"] for i in items if i["type"] == "TOOL_CALL_ARGS")
    assistant = {
        "id": text_id,
        "role": "assistant",
        "content": "Checking.",
        "toolCalls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "get_weather", "arguments": args},
            }
        ],
    }
    result = {"id": "tr1", "role": "tool", "toolCallId": "call_1", "content": '{"sky":"sunny"}'}
    second_run = {**run, "runId": "r2", "messages": [user, assistant, result]}
    core.RunAgentInput.model_validate(second_run)
    second = http.post("/api/agent", json=second_run)
    assert fake_openai.last_request.messages == [
        {"role": "user", "content": "Weather in Paris?"},
        {"role": "assistant", "content": "Checking.", "tool_calls": assistant["toolCalls"]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky":"sunny"}'},
    ]
    items = events(second.content)
    check_lifecycle(items)
    assert items[0]["runId"] == "r2"
    assert deltas(items) == "Sunny in Paris.\nEnjoy!"


# --- AG-UI's own client -----------------------------------------------------------------------

JS = Path(__file__).parent / "js" / "ag-ui"


@pytest.fixture(scope="session")
def http_agent() -> Callable[[list[bytes]], list[dict[str, Any]]]:
    """``read(bodies)``: what ``HttpAgent`` (``@ag-ui/client`` 1.0.0) makes of each body."""
    node = node_with(JS, ["@ag-ui/client"], tests="the AG-UI client tests", needs="@ag-ui/client")

    def read(bodies: list[bytes], piece: int = 7) -> list[dict[str, Any]]:
        return read_streams(node, JS / "read_ag_ui_stream.mjs", bodies, piece)

    return read


def test_http_agent_reads_the_protocols_example(http_agent: Any) -> None:
    (read,) = http_agent([body(weather_example(), format=PINNED)])
    assert read["error"] is None
    assert read["events"] == events(EXAMPLE_BYTES)  # every event passed the client's schemas
    assert read["messages"] == [
        {"id": "rs_1", "role": "reasoning", "content": "Need weather."},
        {
            "id": "msg_1",
            "role": "assistant",
            "content": "Checking Paris…\n",
            "toolCalls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
    ]


def test_http_agent_reads_what_llmsse_sends(http_agent: Any) -> None:
    """Every kind of stream llmsse sends, read by the real client, fed 7 bytes at a time."""
    rng = random.Random(2026)
    alphabet = 'ab \n\r"\\é€😀\u2028\x00:{}'
    pieces = ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 9))) for _ in range(40)]
    alternating = [
        chunk({"reasoning_content": "think"}),
        chunk({"content": "A"}),
        chunk({"refusal": "no"}),
        chunk({"reasoning_content": "more"}),
        chunk({"content": "B"}),
        chunk({}, "stop"),
    ]
    parallel = chunks(
        "Both.",
        tool_calls=[tool_call("f", {"a": [1, 2]}, id="ca"), tool_call("g", "{}", id="cb")],
        finish_reason="tool_calls",
    )
    call_first = [fragment(0, '{"x":1}', id="c1", name="f"), chunk({"content": "after"})]
    no_id = [fragment(0, '{"q":2}'), chunk({}, "tool_calls")]
    from llmsse.testing.errors import api_error

    open_call = FakeStream(
        [fragment(0, '{"a":', id="c1", name="f")], error=api_error("secret"), error_after=1
    )
    streams = {
        "pieces": body(answer(*pieces), format=PINNED),
        "str": body(["Hello", " ", "world"], format=PINNED),
        "empty": body([chunk({"content": ""}), chunk({}, "stop")]),
        "pings, retry and ids": body(
            FakeStream(answer("x", "y"), first_delay=0.25),
            heartbeat=0.1,
            retry=3000,
            ids=True,
            format=PINNED,
        ),
        "alternating": body(alternating, format=PINNED),
        "parallel tools": body(parallel, format=PINNED),
        "call first": body(call_first, format=PINNED),
        "no id": body(no_id, format=PINNED),
        "surrogates": body(answer("\ud83d", "\ude00"), format=PINNED),
        "error": body(failing(2), format=PINNED),
        "error with a call open": body(open_call, format=PINNED),
    }
    assert b": ping" in streams["pings, retry and ids"]
    reads = dict(zip(streams, http_agent(list(streams.values())), strict=True))
    for name, data in streams.items():
        assert reads[name]["error"] is None, (name, reads[name]["error"])
        assert reads[name]["events"] == events(data), name
        # The kit's reader takes what the client takes, and shows the same answer.
        reply = read_ag_ui_stream(data)
        assert reply.ag_ui_events == reads[name]["events"], name
        content = "".join(
            m.get("content") or "" for m in reads[name]["messages"] if m["role"] == "assistant"
        )
        assert js_string(reply.text) == content, name

    def shown(name: str) -> list[tuple[str, str, Any]]:
        return [(m["role"], m["id"], m.get("content")) for m in reads[name]["messages"]]

    assert shown("pieces") == [("assistant", "msg_1", "".join(pieces))]
    assert shown("str") == [("assistant", "msg_1", "Hello world")]
    assert shown("empty") == []
    assert shown("pings, retry and ids") == [("assistant", "msg_1", "xy")]
    assert shown("alternating") == [
        ("reasoning", "rs_1", "think"),
        ("assistant", "msg_1", "Ano"),
        ("reasoning", "rs_1-2", "more"),
        ("assistant", "msg_1-2", "B"),
    ]
    (both,) = reads["parallel tools"]["messages"]
    assert both["content"] == "Both."
    assert [(c["id"], c["function"]["arguments"]) for c in both["toolCalls"]] == [
        ("ca", '{"a":[1,2]}'),
        ("cb", "{}"),
    ]
    first = reads["call first"]["messages"]
    assert [(m["id"], m.get("content")) for m in first] == [
        ("msg_1", None),  # the message the client made for the call
        ("msg_1-2", "after"),
    ]
    assert first[0]["toolCalls"][0]["function"] == {"name": "f", "arguments": '{"x":1}'}
    assert reads["no id"]["messages"][0]["toolCalls"][0]["id"] == "call_1"
    assert shown("surrogates") == [("assistant", "msg_1", "😀")]
    assert shown("error") == [("assistant", "msg_1", "one")]
    assert reads["error"]["events"][-1] == {"type": "RUN_ERROR", "message": GENERIC_MESSAGE}
    assert reads["error with a call open"]["events"][-1]["type"] == "RUN_ERROR"


def test_http_agent_reads_a_responses_source(http_agent: Any) -> None:
    """Responses API events in every shape, and seeded mixes of interleaved deltas: the
    client accepts each stream and shows the same answer and tool calls."""
    from llmsse.testing import response_events, to_response_event

    calls = [tool_call("f", {"a": [1]}, id="c1"), tool_call("g", "{}", id="c2")]
    streams = {
        "everything": body(
            response_events("Hello world", reasoning=[["Think"], ["More"]], tool_calls=calls),
            format=PINNED,
        ),
        "refusal": body(response_events("A", refusal="No."), format=PINNED),
        "incomplete": body(response_events("cut", end="incomplete"), format=PINNED),
        "failed": body(response_events("Hi", end="failed", error_message="sk-secret")),
        "nested error": body(
            response_events("Hi", tool_calls=calls[:1], end="nested-error"), format=PINNED
        ),
        "pings and ids": body(
            FakeStream(response_events("x y"), first_delay=0.25), heartbeat=0.1, ids=True
        ),
    }
    for n, dicts in enumerate(seeded_mixes(6)):
        streams[f"mix {n}"] = body([to_response_event(d) for d in dicts])
    reads = dict(zip(streams, http_agent(list(streams.values())), strict=True))
    for name, data in streams.items():
        items = events(data)
        check_lifecycle(items)
        assert reads[name]["error"] is None, (name, reads[name]["error"])
        assert reads[name]["events"] == items == read_ag_ui_stream(data).ag_ui_events, name
        shown = "".join(
            m.get("content") or "" for m in reads[name]["messages"] if m["role"] == "assistant"
        )
        assert shown == deltas(items), name

    messages = reads["everything"]["messages"]
    assert [(m["role"], m["id"], m.get("content")) for m in messages] == [
        ("reasoning", "rs_1", "Think\n\nMore"),
        ("assistant", "msg_1", "Hello world"),
    ]
    assert [(c["id"], c["function"]["arguments"]) for c in messages[1]["toolCalls"]] == [
        ("c1", '{"a":[1]}'),
        ("c2", "{}"),
    ]
    assert reads["refusal"]["messages"][0]["content"] == "ANo."
    for name in ("failed", "nested error"):
        assert reads[name]["events"][-1] == {"type": "RUN_ERROR", "message": GENERIC_MESSAGE}
    assert b"sk-secret" not in streams["failed"]


def test_http_agent_rejects_what_llmsse_must_never_send(http_agent: Any) -> None:
    """The reader is strict enough to notice a broken stream (so its passing means something)."""
    start = b'data: {"type":"RUN_STARTED","threadId":"t","runId":"r"}\n\n'
    bad = [
        b'data: {"type":"TEXT_MESSAGE_START","messageId":"m"}\n\n',
        start + b'data: {"type":"TEXT_MESSAGE_CONTENT","messageId":"m","delta":"a"}\n\n',
        start
        + b'data: {"type":"TEXT_MESSAGE_START","messageId":"m"}\n\n'
        + b'data: {"type":"RUN_FINISHED","threadId":"t","runId":"r"}\n\n',
        (start + b'data: {"type":"RUN_FINISHED","threadId":"t","runId":"r"}\n\n').replace(
            b"\n", b"\r\n"
        ),
        start + b'data: {"type":"TEXT_MESSAGE_START","messageId":"m","role":null}\n\n',
    ]
    reasons = [
        "the first event must be RUN_STARTED",
        "no active text message 'm'",
        "RUN_FINISHED while text messages are still active",
        "a CR in the body",
        "null for ['role']",
    ]
    for data, read, reason in zip(bad, http_agent(bad), reasons, strict=True):
        assert read["error"] is not None, data
        with pytest.raises(AssertionError, match=re.escape(reason)):  # the kit's reader too
            read_ag_ui_stream(data)


def test_http_agent_reads_random_chunk_mixes(http_agent: Any) -> None:
    """Seeded mixes of text, reasoning, refusals, tool fragments, empty deltas, finish
    reasons and failures: the client accepts every one and shows the same text."""
    from llmsse.testing.errors import api_error

    rng = random.Random(5)
    makers: list[Callable[[], ChatCompletionChunk]] = [
        lambda: chunk({"content": rng.choice(["", "a", "b\n", "é"])}),
        lambda: chunk({"reasoning_content": rng.choice(["", "r", "s "])}),
        lambda: chunk({"refusal": rng.choice(["", "no"])}),
        lambda: chunk({"content": "t", "reasoning_content": "u"}),
        lambda: chunk({"content": None}),
        lambda: fragment(
            (i := rng.randint(0, 2)),
            rng.choice(["", "{", '"k":', "1", "}", None]),
            **({"id": f"id{i}", "name": "f"} if rng.random() < 0.5 else {}),
        ),
        lambda: chunk({}, rng.choice(["stop", "tool_calls", "length"])),
        lambda: usage_chunk(),
    ]
    sources = [[rng.choice(makers)() for _ in range(rng.randint(0, 12))] for _ in range(150)]
    bodies = []
    for n, source in enumerate(sources):
        if n % 4 == 3:
            failing_source = FakeStream(source, error=api_error("x"), error_after=len(source))
            bodies.append(body(failing_source))
        else:
            bodies.append(body(source))
    for data, read in zip(bodies, http_agent(bodies, piece=5), strict=True):
        assert read["error"] is None, (data, read["error"])
        items = events(data)
        check_lifecycle(items)
        assert read["events"] == items == read_ag_ui_stream(data).ag_ui_events
        shown = "".join(
            m.get("content") or "" for m in read["messages"] if m["role"] == "assistant"
        )
        assert shown == deltas(items)
