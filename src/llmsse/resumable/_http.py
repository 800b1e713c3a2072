"""What the adapters' ``resume_response`` decide before any framework object is made.

Every adapter does the same: :func:`open_reader` (the client's position from the request,
404 or 400 when the URL or the position is unusable), then the reader's
:meth:`~llmsse.resumable.ResumedStream.probe` wherever that framework runs a coroutine,
then :func:`probed` (404 for a missing stream, 204 when nothing is left). What remains
is a :class:`Refusal` or a reader to stream, which the adapter turns into its own response.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from llmsse.resumable._args import check_stream_id, parse_last_event_id
from llmsse.resumable._reader import ResumedStream

if TYPE_CHECKING:
    from llmsse.formats import FormatSpec
    from llmsse.resumable._reader import ResumeStatus
    from llmsse.resumable._store import Store

__all__ = ["Refusal", "open_reader", "probed", "refusal_for", "resume_position"]


@dataclass(frozen=True, slots=True)
class Refusal:
    """An answer other than the stream: its HTTP status and a plain-text body."""

    status: int
    message: str = ""


class Lookup(Protocol):
    """A request's headers or query parameters, as every framework offers them."""

    def get(self, key: str, /) -> Any: ...


def open_reader(
    stream_id: str,
    headers: Lookup,
    query: Lookup,
    *,
    store: Store | None,
    format: FormatSpec,
    heartbeat: float | None,
    retry: int | None,
) -> ResumedStream | Refusal:
    """The reader for a resume request, not yet probed, or the request's refusal.

    The client's position is its ``Last-Event-ID`` header (``headers`` must look it up
    case-insensitively, as every framework's do), else the ``last_event_id`` query
    parameter, else none; see :func:`resume_position` for the refusals.
    """
    last = headers.get("Last-Event-ID") or query.get("last_event_id")
    after = resume_position(stream_id, last)
    if isinstance(after, Refusal):
        return after
    return ResumedStream(
        stream_id,
        store=store,
        last_event_id=after,
        format=format,
        heartbeat=heartbeat,
        retry=retry,
    )


def probed(reader: ResumedStream, status: ResumeStatus) -> ResumedStream | Refusal:
    """``reader`` once its :meth:`~llmsse.resumable.ResumedStream.probe` returned
    ``status``, or the refusal that status calls for (see :func:`refusal_for`)."""
    return refusal_for(reader.stream_id, status) or reader


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
