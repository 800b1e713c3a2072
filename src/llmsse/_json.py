"""Compact JSON for event payloads."""

from __future__ import annotations

import json
from typing import Any

_compact = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode
_ascii = json.JSONEncoder(ensure_ascii=True, separators=(",", ":")).encode


def dumps(obj: Any) -> bytes:
    """Serialise ``obj`` as compact UTF-8 JSON.

    A provider can send half of a surrogate pair as a JSON escape; raw UTF-8 cannot
    carry it, so that payload falls back to ASCII escapes, which a JavaScript client
    joining successive deltas turns back into the character.
    """
    text = _compact(obj)
    try:
        return text.encode()
    except UnicodeEncodeError:
        return _ascii(obj).encode()
