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
    override ``text()``). Raises ``TypeError`` for anything but a ``str``, so that the
    pipelines choose another feeder, as with the standard one.
    """
    if type(fmt) is not TextFormat:
        return None
    add_text = fmt.state.add_text if fmt.accumulate else None
    held = fmt._held  # what the format holds back for the next delta
    text = fmt.text
    id_line = fmt._id_line if ids else None

    def feed_text(piece: Any) -> bytes:
        if type(piece) is not str:
            raise TypeError("not a str")
        if not piece:
            return b""
        if held:
            return text(piece)
        try:
            if not ("\n" in piece or "\r" in piece):
                out = f"data: {piece}\n\n".encode()
            elif piece[-1] != "\r":
                out = encode_data(piece)
            else:  # maybe half of a CRLF: text() holds the CR back (and never raises)
                return text(piece)
        except UnicodeEncodeError:  # half of a surrogate pair
            out = fmt.render(piece)
        else:
            if id_line is not None:  # the id line goes first, as TextFormat._event() writes it
                out = id_line() + out
        if add_text is not None:  # the text is kept only for on_complete
            add_text(piece)
        return out

    return feed_text
