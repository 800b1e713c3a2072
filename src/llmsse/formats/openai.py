"""The "openai" format: the OpenAI Chat Completions wire format, byte for byte.

The openai SDK (or any OpenAI-compatible client) pointed at the endpoint reads it.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Mapping
from typing import Any

from llmsse._chat import plain_text, to_plain
from llmsse._json import dumps
from llmsse.formats.base import Format

__all__ = ["OpenAIFormat"]

_DONE = b"data: [DONE]\n\n"


def _chunk_json(chunk: Any) -> bytes:
    serializer = getattr(type(chunk), "__pydantic_serializer__", None)
    if serializer is not None:
        # Only the fields the upstream sent (exclude_unset), provider extras included:
        # the same JSON the API produced, without a detour through Python dicts.
        try:
            data: bytes = serializer.to_json(
                chunk, exclude_unset=True, by_alias=True, warnings=False
            )
            return data
        except (ValueError, UnicodeEncodeError):
            pass  # a lone surrogate: fall back to ASCII escapes below
    return dumps(to_plain(chunk))


def _not_pydantic(chunk: Any, **_: Any) -> bytes:
    raise ValueError("not a pydantic model")


class OpenAIFormat(Format):
    """``data: <chunk JSON>`` per chunk and ``data: [DONE]`` at the end.

    Chunks are passed through with every field the upstream sent (provider extras
    too). A source of ``str`` pieces is wrapped in minimal chunks. On failure the
    stream ends with ``data: {"error": {...}}`` and no ``[DONE]``, which the openai
    SDK raises as ``openai.APIError``.
    """

    name = "openai"

    def __init__(self, *, retry: int | None = None, ids: bool = False) -> None:
        super().__init__(retry=retry, ids=ids)
        self._made: dict[str, Any] | None = None
        self._next_id = 0
        self._text_append = self.state.add_text
        self._cls: type | None = None
        self._to_json: Any = _not_pydantic
        self._plain = retry is None and not ids
        # The openai SDK's decoder dispatches any block that sets a field, or that
        # follows an id, as an event and fails to parse its empty data. So retry:
        # rides on the first event and, once ids are sent, a ping is a comment line
        # that joins the next event's block instead of ending a block of its own.
        self._head = b"" if retry is None else b"retry: %d\n" % retry
        if ids:
            self.ping = b": ping\n"

    def start(self) -> bytes:
        return b""

    def _data(self, payload: bytes) -> bytes:
        head = self._head
        if head:
            self._head = b""
            self._plain = not self.ids
        if self.ids:
            self._next_id += 1
            head += b"id: %d\n" % self._next_id
        return head + b"data: " + payload + b"\n\n"

    def chunk(self, chunk: Any) -> bytes:
        if self.accumulate:
            text = plain_text(chunk)
            if text is None:
                state = self.state
                state.absorb(chunk)
                state.pending.clear()
            else:
                self._text_append(text)
        if type(chunk) is self._cls:
            # Same class as the last chunk (all of them, in practice): its serializer
            # is at hand, and the common case needs no retry/id prefix. (type(), not
            # .__class__: that read goes through pydantic's slow __getattr__ hook.)
            try:
                data: bytes = self._to_json(
                    chunk, exclude_unset=True, by_alias=True, warnings=False
                )
            except (ValueError, UnicodeEncodeError):
                data = _chunk_json(chunk)
        else:
            self._cls = type(chunk)
            serializer = getattr(self._cls, "__pydantic_serializer__", None)
            self._to_json = serializer.to_json if serializer is not None else _not_pydantic
            data = _chunk_json(chunk)
        if self._plain:
            return b"data: " + data + b"\n\n"
        return self._data(data)

    def _made_chunk(self, delta: dict[str, Any], finish_reason: str | None) -> bytes:
        if self._made is None:
            self._made = {
                "id": "chatcmpl-" + uuid.uuid4().hex,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": "llmsse",
            }
        body = dict(self._made)
        body["choices"] = [{"index": 0, "delta": delta, "finish_reason": finish_reason}]
        return self._data(dumps(body))

    def text(self, piece: str) -> bytes:
        if not piece:
            return b""
        out = self._made_chunk({"content": piece}, None)
        self.state.add_text(piece)
        return out

    def finish(self) -> bytes:
        if self._made is not None:
            # The source was plain text: close the choice as the API would.
            self.result.finish_reason = "stop"
            return self._made_chunk({}, "stop") + self._head + _DONE
        return self._head + _DONE

    def error(self, error: Mapping[str, Any]) -> bytes:
        body = {"error": {"message": error.get("message"), "type": error.get("type"), "code": None}}
        return self._data(dumps(body))
