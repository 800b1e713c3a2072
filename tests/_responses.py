"""Interleaved Responses API events for property tests, and what they should rebuild."""

from __future__ import annotations

import random
from typing import Any

from hypothesis import strategies as st

piece = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=0, max_size=6)
ops = st.lists(
    st.one_of(
        st.tuples(st.just("text"), piece),
        st.tuples(st.just("refusal"), piece),
        st.tuples(st.just("summary"), st.integers(0, 2), piece),
        st.tuples(st.just("call"), st.integers(0, 2), piece),
    ),
    max_size=14,
)


def mixed_events(steps: list[tuple[Any, ...]]) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Responses event dicts of interleaved deltas, and what they should rebuild."""
    events: list[dict[str, Any]] = []
    text, refusal, reasoning, summary_deltas = "", "", "", ""
    last_part: Any = None
    calls: dict[int, str] = {}

    def emit(kind: str, **fields: Any) -> None:
        events.append({"type": kind, "sequence_number": len(events), **fields})

    for step in steps:
        if step[0] == "text":
            emit(
                "response.output_text.delta",
                item_id="msg",
                output_index=0,
                content_index=0,
                delta=step[1],
                logprobs=[],
            )
            text += step[1]
        elif step[0] == "refusal":
            emit(
                "response.refusal.delta",
                item_id="msg",
                output_index=0,
                content_index=1,
                delta=step[1],
            )
            refusal += step[1]
        elif step[0] == "summary":
            emit(
                "response.reasoning_summary_text.delta",
                item_id="rs",
                output_index=0,
                summary_index=step[1],
                delta=step[2],
            )
            summary_deltas += step[2]
            if step[2]:
                if last_part is not None and last_part != step[1]:
                    reasoning += "\n\n"
                last_part = step[1]
                reasoning += step[2]
        else:
            _, n, fragment = step
            if n not in calls:
                calls[n] = ""
                emit(
                    "response.output_item.added",
                    output_index=n + 1,
                    item={
                        "id": f"fc_{n}",
                        "type": "function_call",
                        "status": "in_progress",
                        "arguments": "",
                        "call_id": f"call_{n}",
                        "name": f"f{n}",
                    },
                )
            emit(
                "response.function_call_arguments.delta",
                item_id=f"fc_{n}",
                output_index=n + 1,
                delta=fragment,
            )
            calls[n] += fragment
    for n, arguments in calls.items():
        emit(
            "response.function_call_arguments.done",
            item_id=f"fc_{n}",
            output_index=n + 1,
            arguments=arguments,
        )
    emit(
        "response.completed",
        response={
            "id": "r",
            "object": "response",
            "status": "completed",
            "output": [],
            "usage": None,
        },
    )
    expected = {
        "text": text,
        "refusal": refusal,
        "reasoning": reasoning,
        "summary_deltas": summary_deltas,
        "calls": [(f"call_{n}", a) for n, a in calls.items()],
        "finish_reason": "tool_calls" if calls else "stop",
    }
    return events, expected


def seeded_mixes(seed: int, count: int = 40) -> list[list[dict[str, Any]]]:
    """``count`` random :func:`mixed_events` streams (up to 10 steps each, some empty
    pieces), the same ones for a given ``seed``."""
    rng = random.Random(seed)
    kinds = ["text", "refusal", "summary", "call"]
    mixes = []
    for _ in range(count):
        steps: list[tuple[Any, ...]] = []
        for _ in range(rng.randint(0, 10)):
            kind = rng.choice(kinds)
            piece = rng.choice(["", "a", "b\n", "é", '{"k":', "1}"])
            steps.append(
                (kind, piece) if kind in ("text", "refusal") else (kind, rng.randint(0, 2), piece)
            )
        mixes.append(mixed_events(steps)[0])
    return mixes
