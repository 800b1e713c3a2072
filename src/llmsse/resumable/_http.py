"""What the adapters' ``resume_response`` decide before any framework object is made."""

from __future__ import annotations

from dataclasses import dataclass

from llmsse.resumable._args import check_stream_id, parse_last_event_id

__all__ = ["Refusal", "refusal_for", "resume_position"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer other than the stream: its HTTP status and a plain-text body."""

    status: int
    message: str = ""


def resume_position(stream_id: str, last_event_id: str | None) -> int | Refusal:
    """The event id to resume after, from a request's ``Last-Event-ID`` header (or the
    ``last_event_id`` query parameter); an empty value counts as none.

    A ``stream_id`` this library would refuse is a 404 (no such stream; it comes from the
    URL), a malformed last event id a 400. A non-``str`` ``stream_id`` is the
    application's mistake and raises ``TypeError``.
    """
    try:
        check_stream_id(stream_id)
    except ValueError:
        return Refusal(404, f"no stream {stream_id!r}")
    try:
        return parse_last_event_id(last_event_id or None)
    except ValueError as exc:
        return Refusal(400, str(exc))


def refusal_for(stream_id: str, status: str) -> Refusal | None:
    """The answer for a :meth:`~llmsse.resumable.ResumedStream.probe` result, or ``None``
    to stream: 404 for a missing stream, 204 when nothing is left to send."""
    if status == "missing":
        return Refusal(404, f"no stream {stream_id!r}")
    if status == "done":
        return Refusal(204)
    return None
