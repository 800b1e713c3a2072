"""The offline fake model: llmsse.testing's fake OpenAI API, answering with the demo's brain.

The fake API runs as a real HTTP server on 127.0.0.1 and the demo reaches it through the real
``openai`` SDK (``base_url`` pointing at it), so everything between the SDK and the browser is
what runs against the real API: the same chunk objects, the same ``Stream.close()`` when the
browser leaves. Its request records tell whether that close really reached the upstream.
"""

from __future__ import annotations

import sys
from typing import Any

from llmsse.demo import brain
from llmsse.testing import FakeChatServer, FakeOpenAI, RecordedRequest, Reply, StreamError
from llmsse.testing import tool_call as make_tool_call

__all__ = ["FAILURE", "answer", "start_fake_model", "upstream_stats"]

#: The error event the fake model sends when asked to fail (the SDK raises ``APIError``).
FAILURE = StreamError(message="The fake model failed on purpose.", type="server_error")


def answer(request: RecordedRequest) -> Reply:
    """The fake API's reply to ``request``: the brain's choice, paced by the fake's delay."""
    choice = brain.reply(request.messages)
    calls = []
    if choice.tool_call is not None:
        call = choice.tool_call
        calls.append(make_tool_call(call.name, call.arguments, id=call.id, chunk_size=6))
    return Reply(
        content=choice.text or None,
        reasoning=choice.reasoning or None,
        tool_calls=calls,
        error=FAILURE if choice.fail else None,
    )


def start_fake_model(*, delay: float = 0.03) -> FakeChatServer:
    """Start the fake API on a free port of 127.0.0.1; ``stop()`` it when done.

    Args:
        delay: Seconds between two chunks (a word each); the first one comes after ten times
            that (at most a second), like a real model's time to first token.
    """
    fake = FakeOpenAI(default=answer, delay=delay, first_delay=min(10 * delay, 1.0))
    server = FakeChatServer(fake).start()
    _quiet_resets(server)
    return server


def _quiet_resets(server: FakeChatServer) -> None:
    # socketserver prints a traceback when a keep-alive connection is reset while it waits
    # for the next request, which the SDK does after an error event (it stops reading before
    # the end of the chunked body). Harmless, but a demo's console should not show it.
    # Workaround until llmsse.testing's server ignores such resets itself.
    inner = getattr(server, "_server", None)
    if inner is None:
        return
    report = inner.handle_error

    def handle_error(request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            report(request, client_address)

    inner.handle_error = handle_error


def upstream_stats(server: FakeChatServer) -> dict[str, Any]:
    """How the fake's streams ended: ``closed_early`` counts those the demo server closed."""
    records = [r for r in server.requests if r.stream]
    return {
        "started": len(records),
        "open": sum(1 for r in records if not r.closed),
        "finished": sum(1 for r in records if r.closed and not r.disconnected),
        "closed_early": sum(1 for r in records if r.disconnected),
    }
