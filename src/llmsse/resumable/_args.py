"""The arguments the resumable API shares: stream ids, stores, Last-Event-ID values."""

from __future__ import annotations

import re
import threading

from llmsse.resumable._store import Store
from llmsse.resumable.memory import MemoryStore

__all__ = [
    "check_seconds",
    "check_stream_id",
    "default_store",
    "parse_last_event_id",
    "resolve_store",
]

_default: MemoryStore | None = None
_default_lock = threading.Lock()

# Printable ASCII without space: ids travel in URL paths, headers and Redis keys.
_ID = re.compile(r"[\x21-\x7e]{1,200}")
_DIGITS = re.compile(r"[0-9]{1,19}")


def default_store() -> MemoryStore:
    """The process-wide :class:`MemoryStore` used when no ``store=`` is given."""
    global _default
    with _default_lock:
        if _default is None:
            _default = MemoryStore()
        return _default


def resolve_store(store: Store | None) -> Store:
    """``store``, or the default store for ``None``; ``TypeError`` for anything else."""
    if store is None:
        return default_store()
    if not isinstance(store, Store):
        raise TypeError(
            f"store must be a llmsse.resumable.Store (MemoryStore, RedisStore) or None, "
            f"got {type(store).__name__}"
        )
    return store


def check_stream_id(stream_id: object) -> str:
    """``stream_id`` if it is 1-200 printable ASCII characters without spaces."""
    if not isinstance(stream_id, str):
        raise TypeError(f"stream_id must be a str, got {type(stream_id).__name__}")
    if not _ID.fullmatch(stream_id):
        raise ValueError(
            "stream_id must be 1 to 200 printable ASCII characters without spaces, "
            f"got {stream_id!r}"
        )
    return stream_id


def check_seconds(name: str, value: object, *, zero: bool = False) -> float:
    """``value`` as a float when it is a positive number of seconds (or 0 with ``zero``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds, got {type(value).__name__}")
    if not (value >= 0 if zero else value > 0) or value != value or value == float("inf"):
        bound = ">= 0" if zero else "> 0"
        raise ValueError(f"{name} must be a finite number of seconds {bound}, got {value!r}")
    return float(value)


def parse_last_event_id(value: object) -> int:
    """The event id to resume after: ``None`` is 0 (from the start), an int ``>= 0`` is
    itself, a string must be its decimal digits (a ``Last-Event-ID`` header's value)."""
    if value is None:
        return 0
    if isinstance(value, bool):
        raise TypeError("last_event_id must be an int, a str of digits or None, got bool")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"last_event_id must be >= 0, got {value}")
        return value
    if isinstance(value, str):
        if not _DIGITS.fullmatch(value):
            raise ValueError(
                f"last_event_id must be a non-negative integer (decimal digits), got {value!r}"
            )
        return int(value)
    raise TypeError(
        f"last_event_id must be an int, a str of digits or None, got {type(value).__name__}"
    )
