"""The wire formats, by name."""

from __future__ import annotations

from collections.abc import Callable

from llmsse.formats.ag_ui import AGUIFormat
from llmsse.formats.ai_sdk import AISDKFormat
from llmsse.formats.base import Format
from llmsse.formats.openai import OpenAIFormat
from llmsse.formats.text import TextFormat

__all__ = [
    "FORMATS",
    "AGUIFormat",
    "AISDKFormat",
    "Format",
    "FormatSpec",
    "OpenAIFormat",
    "TextFormat",
    "resolve_format",
]

#: What ``format=`` accepts: a registered name, or a Format subclass (or any callable
#: taking ``retry=`` and ``ids=`` and returning a Format).
FormatSpec = str | Callable[..., Format]

FORMATS: dict[str, type[Format]] = {
    cls.name: cls for cls in (TextFormat, OpenAIFormat, AISDKFormat, AGUIFormat)
}


def resolve_format(format: FormatSpec) -> Callable[..., Format]:
    """Return the factory for ``format``; ``ValueError`` for an unknown name."""
    if isinstance(format, str):
        try:
            return FORMATS[format]
        except KeyError:
            known = ", ".join(repr(name) for name in FORMATS)
            raise ValueError(f"unknown format {format!r}: expected one of {known}") from None
    if callable(format):
        return format
    raise TypeError(
        f"format must be a format name or a Format subclass, got {type(format).__name__}"
    )
