"""Checking a pipeline's options at the call, before any byte is sent."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from llmsse._errors import OnError
from llmsse.formats import FormatSpec, resolve_format
from llmsse.formats.base import Format
from llmsse.result import StreamResult

__all__ = ["Options", "check_options"]

PING = b": ping\n\n"


@dataclass(frozen=True, slots=True)
class Options:
    make_format: Callable[..., Format]
    heartbeat: float | None
    retry: int | None
    ids: bool
    on_complete: Callable[[StreamResult], Any] | None
    on_error: OnError | None

    def new_format(self) -> Format:
        fmt = self.make_format(retry=self.retry, ids=self.ids)
        if not isinstance(fmt, Format):
            raise TypeError(f"format must produce a llmsse Format, got {type(fmt).__name__}")
        fmt.accumulate = self.on_complete is not None
        return fmt


def check_options(
    format: FormatSpec,
    heartbeat: float | None,
    retry: int | None,
    ids: bool,
    on_complete: Callable[[StreamResult], Any] | None,
    on_error: OnError | None,
) -> Options:
    make_format = resolve_format(format)
    if heartbeat is not None:
        if isinstance(heartbeat, bool) or not isinstance(heartbeat, (int, float)):
            raise TypeError(
                f"heartbeat must be a number of seconds or None, got {type(heartbeat).__name__}"
            )
        if not heartbeat > 0:
            raise ValueError(
                f"heartbeat must be > 0 seconds (or None to turn it off), got {heartbeat}"
            )
    if retry is not None and (type(retry) is not int or retry < 0):
        raise ValueError(f"retry must be a non-negative int (milliseconds) or None, got {retry!r}")
    if not isinstance(ids, bool):
        raise TypeError(f"ids must be a bool, got {type(ids).__name__}")
    for name, hook in (("on_complete", on_complete), ("on_error", on_error)):
        if hook is not None and not callable(hook):
            raise TypeError(f"{name} must be callable or None, got {type(hook).__name__}")
    return Options(make_format, heartbeat, retry, ids, on_complete, on_error)
