"""Shortcuts the pipelines take for the default text format (the per-item hot path)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmsse.event import encode_data
from llmsse.formats.base import Format
from llmsse.formats.text import TextFormat

__all__ = ["text_feed"]


def text_feed(fmt: Format, ids: bool) -> Callable[[Any], bytes] | None:
    """A one-call stand-in for ``TextFormat.text`` (the feeder of ``str`` sources), or ``None``.

    The feeder calls ``text()``, which calls ``_event()``, which calls ``_field_lines()``:
    four calls per piece where one does. Only for ``TextFormat`` itself (a subclass may
    override ``text()``) and without ids. Raises ``TypeError`` for anything but a ``str``,
    so that the pipelines choose another feeder, as with the standard one.
    """
    if type(fmt) is not TextFormat or ids:
        return None
    add_text = fmt.state.add_text if fmt.accumulate else None
    held = fmt._held  # half of a surrogate pair held back by the format
    text = fmt.text

    def feed_text(piece: Any) -> bytes:
        if type(piece) is not str:
            raise TypeError("not a str")
        if not piece:
            return b""
        if held:
            return text(piece)
        try:
            if "\n" in piece or "\r" in piece:
                out = encode_data(piece)
            else:
                out = f"data: {piece}\n\n".encode()
        except UnicodeEncodeError:  # half of a surrogate pair
            out = fmt.render(piece)
        if add_text is not None:  # the text is kept only for on_complete
            add_text(piece)
        return out

    return feed_text
