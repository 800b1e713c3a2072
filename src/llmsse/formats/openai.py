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
from llmsse.formats._template import Render, chunk_template
from llmsse.formats.base import Format

__all__ = ["OpenAIFormat"]


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


# Fields the openai SDK's stream helpers (client.responses.stream()) add to the events
# they pass on; the API never sends them.
_HELPER_FIELDS = frozenset({"snapshot", "parsed", "output_parsed", "parsed_arguments"})


def _strip_helper_fields(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip_helper_fields(v) for k, v in obj.items() if k not in _HELPER_FIELDS}
    if isinstance(obj, list):
        return [_strip_helper_fields(v) for v in obj]
    return obj


def _event_json(event: Any, number: int) -> bytes:
    """A Responses event's JSON as the API sent it (``number``: its sequence number if unset)."""
    if type(event).__module__.startswith("openai.lib."):
        # Rebuilt by a stream helper: stripped of what the helper added. The helpers of
        # older SDKs also drop the fields they did not know, sequence_number among them.
        plain = _strip_helper_fields(to_plain(event))
        if isinstance(plain, dict):
            plain.setdefault("sequence_number", number)
        return dumps(plain)
    return _chunk_json(event)


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
        self._responses = False  # the source yields Responses API events
        self._sequence = -1  # the last sequence_number passed through
        self._event_cls: type | None = None  # the last Responses event's class
        self._event_to_json: Any = _not_pydantic
        self._lines: dict[str, bytes] = {}  # "event: <type>\n" by type
        self._to_json: Any = _not_pydantic
        # Chunks shaped like the last template's are written from it (see _template.py).
        self._template: Render | None = None
        self._framed = False  # the template writes "data: ...\n\n" itself
        self._misses = 0
        self._builds = 0
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
            template = self._template
            if template is not None:
                out = template(chunk)
                if out is not None:
                    return out if self._framed else self._data(out)
            # Same class as the last chunk (all of them, in practice): its serializer
            # is at hand. (type(), not .__class__: that read goes through pydantic's
            # slow __getattr__ hook.)
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
            self._template = None
            data = _chunk_json(chunk)
        self._misses += 1
        # A few tries up front (Azure's empty chunk, the role chunk, the first text
        # chunk), then one per 8 misses: chunks that never repeat pay little for it.
        if self._builds < 3 + self._misses // 8 and self._to_json is not _not_pydantic:
            self._learn(chunk)
        if self._plain:
            return b"data: " + data + b"\n\n"
        return self._data(data)

    def _learn(self, chunk: Any) -> None:
        self._builds += 1
        framed = self._plain
        head, tail = (b"data: ", b"\n\n") if framed else (b"", b"")
        try:
            self._template = chunk_template(chunk, self._to_json, head, tail)
        except Exception:  # Ineligible, or an odd object: the serializer still writes it
            return
        self._framed = framed

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

    # --- a Responses API source: passed through in its own wire format ------------------

    def response_event(self, event: Any) -> bytes:
        """Pass a Responses event through as ``event: <type>`` and ``data: <JSON>``.

        A failure event (``response.failed``, ``error``) is not passed on: it raises
        :class:`~llmsse.UpstreamError`, and the stream ends with :meth:`error`.
        """
        self.read_response_event(event)
        self.state.pending.clear()
        self._responses = True
        number = getattr(event, "sequence_number", None)
        self._sequence = number if isinstance(number, int) else self._sequence + 1
        kind = getattr(event, "type", "")
        line = self._lines.get(kind) if type(kind) is str else None
        if line is None:
            line = b"" if "\n" in kind or "\r" in kind else b"event: " + kind.encode() + b"\n"
            if len(self._lines) < 64:
                self._lines[kind] = line
        if type(event) is self._event_cls:
            # A run of events of one class (the deltas): its serializer is at hand.
            try:
                data: bytes = self._event_to_json(
                    event, exclude_unset=True, by_alias=True, warnings=False
                )
            except (ValueError, UnicodeEncodeError):
                data = _event_json(event, self._sequence)
        else:
            data = _event_json(event, self._sequence)
            cls = type(event)
            serializer = getattr(cls, "__pydantic_serializer__", None)
            if serializer is not None and not cls.__module__.startswith("openai.lib."):
                self._event_cls, self._event_to_json = cls, serializer.to_json
        if self._plain:
            return line + b"data: " + data + b"\n\n"
        return line + self._data(data)

    def finish(self) -> bytes:
        if self._responses:
            return b""  # the Responses API sends no [DONE]
        if self._made is not None:
            # The source was plain text: close the choice as the API would.
            self.result.finish_reason = "stop"
            return self._made_chunk({}, "stop") + self._data(b"[DONE]")
        # An event like the others: with ids=True it gets the next id too.
        return self._data(b"[DONE]")

    def error(self, error: Mapping[str, Any]) -> bytes:
        inner = {"message": error.get("message"), "type": error.get("type"), "code": None}
        if self._responses:
            # An `error` event in both of the shapes seen from the API: flat (what the
            # schema and JS clients read) and nested (what the openai SDK raises as APIError).
            body: dict[str, Any] = {
                "type": "error",
                "sequence_number": self._sequence + 1,
                "code": inner["type"],
                "message": inner["message"],
                "param": None,
                "error": inner,
            }
            return b"event: error\n" + self._data(dumps(body))
        return self._data(dumps({"error": inner}))
