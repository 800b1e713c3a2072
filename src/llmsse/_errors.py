"""Turning an upstream failure into the error event's payload, without leaking it."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from llmsse._responses import UpstreamError

__all__ = ["GENERIC_MESSAGE", "OnError", "error_payload"]

logger = logging.getLogger("llmsse")

GENERIC_MESSAGE = "The response could not be completed."

#: ``on_error(exc)`` returns the message (``str``) or the error object (a mapping with
#: ``type``/``message``) the client should see, ``None`` for the generic one; raising
#: (for example re-raising ``exc``) propagates out of the stream instead.
OnError = Callable[[BaseException], str | Mapping[str, Any] | None]


def _default_type(exc: BaseException) -> str:
    # The class name of an SDK error says nothing secret; anything else is ours.
    if isinstance(exc, UpstreamError) or type(exc).__module__.startswith("openai"):
        return "upstream_error"
    return "internal_error"


def error_payload(exc: BaseException, on_error: OnError | None) -> dict[str, Any]:
    """The ``{"type", "message"}`` object for ``exc``; exception text is never used by default."""
    logger.error("llmsse: the stream's source failed", exc_info=exc)
    mapped = on_error(exc) if on_error is not None else None
    payload: dict[str, Any] = {"type": _default_type(exc), "message": GENERIC_MESSAGE}
    if isinstance(mapped, str):
        payload["message"] = mapped
    elif isinstance(mapped, Mapping):
        payload.update(mapped)
    elif mapped is not None:
        raise TypeError(
            f"on_error must return a str, a mapping or None, got {type(mapped).__name__}"
        )
    return payload
