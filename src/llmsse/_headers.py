"""The response headers every SSE response needs."""

from __future__ import annotations

import functools

from llmsse.formats import FormatSpec, resolve_format

__all__ = ["sse_headers"]

_BASE = {
    "Content-Type": "text/event-stream; charset=utf-8",
    "Cache-Control": "no-cache",
    # nginx buffers proxied responses unless told not to.
    "X-Accel-Buffering": "no",
}


def sse_headers(format: FormatSpec = "text") -> dict[str, str]:
    """The headers an adapter sets for ``format``.

    ``Content-Type: text/event-stream; charset=utf-8``, ``Cache-Control: no-cache``,
    ``X-Accel-Buffering: no`` and the format's own (never ``Connection``, which
    HTTP/2 forbids).
    """
    headers = dict(_BASE)
    factory = resolve_format(format)
    # functools.partial(SomeFormat, option=...) keeps its class's headers.
    while isinstance(factory, functools.partial):
        factory = factory.func
    headers.update(getattr(factory, "headers", {}))
    return headers
