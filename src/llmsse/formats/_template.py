"""A chunk's JSON from a template: pydantic's bytes for chunks that differ only in text.

Nearly every chunk of a stream repeats the one before it except for its text (and the
API's random ``obfuscation`` padding). :func:`chunk_template` serialises one chunk with
those strings replaced by sentinels and cuts the output at the sentinels. A later chunk
whose fields set, constants (equal values of the same types) and classes are the
template's is then written as the constant pieces around its own JSON-escaped strings:
the bytes pydantic would write, for a fraction of the cost. Anything else is a miss
(``None``) and the caller serialises the chunk itself.

Only the openai SDK's own classes are templated, and only without custom serialisers,
so that a string field is written as its JSON string and nothing else. Provider extras
(OpenRouter's ``provider``, vLLM's ``reasoning_content``, ``obfuscation`` with older
SDKs) are checked like fields, their order too, as they are written in it. A template
must reproduce its own chunk's JSON exactly, or it is not used.

The bytes are pydantic's for chunks as the SDK builds them. A chunk edited by hand can
differ: pydantic writes fields in the order of the model's ``__dict__`` (a field deleted
and set again moves to the end; the template keeps its own order, the same JSON), and a
value equal to the template's but of another class (a ``str`` enum member whose value is
not its text) is compared by equality only: checking the class of every field would
cost most of what the template saves.
"""

from __future__ import annotations

from collections.abc import Callable
from json.encoder import encode_basestring
from operator import itemgetter
from typing import Any

__all__ = ["Ineligible", "chunk_template"]

Render = Callable[[Any], "bytes | None"]

# The string fields that change from chunk to chunk; every other field set must be
# equal to the template's to match.
_CHUNK_SLOTS = frozenset({"obfuscation"})
_DELTA_SLOTS = frozenset({"content", "refusal", "reasoning_content", "reasoning"})
_SENTINEL = "\x00llmsse slot %d\x00"
_OPTIONS: dict[str, Any] = {"exclude_unset": True, "by_alias": True, "warnings": False}


class Ineligible(Exception):
    """The chunk cannot serve as a template (n != 1, a nested object, a float, ...)."""


def _none(fields: dict[str, Any]) -> tuple[()]:
    return ()


def _getter(names: list[str]) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    """A function of a ``__dict__`` that gives the values of ``names`` as a tuple."""
    if not names:
        return _none
    # itemgetter of one name returns the bare value: ask for it twice.
    return itemgetter(*names) if len(names) > 1 else itemgetter(names[0], names[0])


class _Level:
    """What one model of a chunk (the chunk, its choice, the delta) must be to match.

    Declared fields and provider extras (``__pydantic_extra__``) are checked apart; the
    level's one slot (``slot``), if any, is in either (``slot_in_extra``).
    """

    def __init__(self, model: Any, slot_names: frozenset[str], child: str) -> None:
        cls = type(model)
        decorators = getattr(cls, "__pydantic_decorators__", None)
        if (
            not cls.__module__.startswith("openai.")
            or decorators is None
            or decorators.field_serializers
            or decorators.model_serializers
        ):
            raise Ineligible(cls.__qualname__)
        self.cls = cls
        self.fields_set = frozenset(model.__pydantic_fields_set__)
        fields = model.__dict__
        extra = model.__pydantic_extra__ or {}
        if any(name in fields for name in extra):
            raise Ineligible("an extra named like a field")  # both are written
        self.slot = ""
        self.slot_in_extra = False
        consts: list[str] = []
        numbers: list[str] = []
        for name in self.fields_set:
            if name == child or name in extra:
                continue  # validated models count their extras as set
            if name not in fields:
                raise Ineligible(name)  # set but not a field: never in practice
            kind = self._kind(name, fields[name], slot_names)
            if kind is not str:
                consts.append(name)
            if kind is int or kind is bool:
                numbers.append(name)  # 1 == 1.0 == True: their types must match too
        self.consts = _getter(consts)
        self.values = self.consts(fields)
        if len(numbers) > 1:
            raise Ineligible("numbers")  # one at most (created, index): checked by name
        self.number = numbers[0] if numbers else ""
        self.kind = type(fields[self.number]) if numbers else None
        extra_consts: list[str] = []
        for name, value in extra.items():
            kind = self._kind(name, value, slot_names, in_extra=True)
            if kind is int or kind is bool:
                raise Ineligible(name)  # an extra is written as what it is: keep it simple
            if kind is not str:
                extra_consts.append(name)
        self.extra_keys = list(extra)
        self.extra_consts = _getter(extra_consts)
        self.extra_values = self.extra_consts(extra)

    def _kind(
        self, name: str, value: Any, slot_names: frozenset[str], in_extra: bool = False
    ) -> type:
        """``str`` for the slot, else the constant's type; raises for anything else.

        An empty string is a constant: some servers send ``"content": ""`` beside the
        reasoning that is the text of the chunk.
        """
        kind = type(value)
        if name in slot_names and kind is str and value:
            if self.slot:
                raise Ineligible("two slots in one model")
            self.slot, self.slot_in_extra = name, in_extra
            return str
        if value is None or kind is str:
            return type(None)  # a constant
        if kind is int or kind is bool:
            return kind
        raise Ineligible(name)

    def copy(self, model: Any, sentinels: list[str]) -> Any:
        """A shallow copy of ``model`` with a numbered sentinel in its slot."""
        copy = model.__copy__()
        if self.slot:
            values = copy.__pydantic_extra__ if self.slot_in_extra else copy.__dict__
            values[self.slot] = _SENTINEL % len(sentinels)
            sentinels.append(values[self.slot])
        return copy


def chunk_template(chunk: Any, to_json: Callable[..., bytes], head: bytes, tail: bytes) -> Render:
    """A function that writes ``head + <chunk JSON> + tail`` for chunks shaped like ``chunk``.

    ``to_json`` is the chunk class's ``__pydantic_serializer__.to_json``. Raises
    :class:`Ineligible` when ``chunk`` cannot serve as a template (found before
    anything is serialised) and ``ValueError`` when the result would not be exact.
    """
    choices = chunk.__dict__.get("choices")
    if type(choices) is not list or len(choices) != 1:
        raise Ineligible("choices")
    choice = choices[0]
    delta = choice.__dict__.get("delta")
    # The delta first: where most chunks that cannot be templated show it.
    low = _Level(delta, _DELTA_SLOTS, "")
    if not low.slot:
        raise Ineligible("no text")
    mid = _Level(choice, frozenset(), "delta")
    top = _Level(chunk, _CHUNK_SLOTS, "choices")
    sentinels: list[str] = []
    low_copy = low.copy(delta, sentinels)
    top_copy = top.copy(chunk, sentinels)
    mid_copy = mid.copy(choice, sentinels)
    mid_copy.__dict__["delta"] = low_copy
    top_copy.__dict__["choices"] = [mid_copy]
    text = (head + to_json(top_copy, **_OPTIONS) + tail).decode()
    marks = []
    for number, sentinel in enumerate(sentinels):
        escaped = encode_basestring(sentinel)
        if text.count(escaped) != 1:
            raise ValueError("a sentinel is not where it can be cut out")
        marks.append((text.index(escaped), len(escaped), number))
    marks.sort()
    pieces = []
    start = 0
    for at, size, _ in marks:
        pieces.append(text[start:at])
        start = at + size
    pieces.append(text[start:])
    render = _compile(top, mid, low, pieces, first=marks[0][2])
    if render(chunk) != head + to_json(chunk, **_OPTIONS) + tail:
        raise ValueError("the template does not reproduce its own chunk")
    return render


def _extras_differ(
    extra: dict[str, Any] | None,
    keys: list[str],
    consts: Callable[[dict[str, Any]], tuple[Any, ...]],
    values: tuple[Any, ...],
) -> bool:
    # Extras are written in their dict's order: the keys must come in the same order.
    return (
        not extra
        or len(extra) != len(keys)
        or (len(keys) > 1 and list(extra) != keys)
        or consts(extra) != values
    )


def _compile(top: _Level, mid: _Level, low: _Level, pieces: list[str], first: int) -> Render:
    # One function of local reads for the hot path: on this path every attribute
    # lookup or call costs as much as a field of the chunk. The three levels are
    # checked by the same lines, written out for that reason.
    top_cls, top_set, top_consts, top_values = top.cls, top.fields_set, top.consts, top.values
    top_number, top_kind, top_keys = top.number, top.kind, top.extra_keys
    top_extra_consts, top_extra_values = top.extra_consts, top.extra_values
    mid_cls, mid_set, mid_consts, mid_values = mid.cls, mid.fields_set, mid.consts, mid.values
    mid_number, mid_kind, mid_keys = mid.number, mid.kind, mid.extra_keys
    mid_extra_consts, mid_extra_values = mid.extra_consts, mid.extra_values
    low_cls, low_set, low_consts, low_values = low.cls, low.fields_set, low.consts, low.values
    low_number, low_kind, low_keys = low.number, low.kind, low.extra_keys
    low_extra_consts, low_extra_values = low.extra_consts, low.extra_values
    differ = _extras_differ
    text_name, text_in_extra = low.slot, low.slot_in_extra
    pad_name, pad_in_extra = top.slot, top.slot_in_extra
    pad_first = first == 1
    esc = encode_basestring

    def render(chunk: Any) -> bytes | None:
        try:
            fields = chunk.__dict__
            extra = chunk.__pydantic_extra__
            if (
                type(chunk) is not top_cls
                or chunk.__pydantic_fields_set__ != top_set
                or top_consts(fields) != top_values
                or (top_number and type(fields[top_number]) is not top_kind)
                or (
                    differ(extra, top_keys, top_extra_consts, top_extra_values)
                    if top_keys
                    else extra
                )
            ):
                return None
            choices = fields["choices"]
            if type(choices) is not list or len(choices) != 1:
                return None
            choice = choices[0]
            choice_fields = choice.__dict__
            choice_extra = choice.__pydantic_extra__
            if (
                type(choice) is not mid_cls
                or choice.__pydantic_fields_set__ != mid_set
                or mid_consts(choice_fields) != mid_values
                or (mid_number and type(choice_fields[mid_number]) is not mid_kind)
                or (
                    differ(choice_extra, mid_keys, mid_extra_consts, mid_extra_values)
                    if mid_keys
                    else choice_extra
                )
            ):
                return None
            delta = choice_fields["delta"]
            delta_fields = delta.__dict__
            delta_extra = delta.__pydantic_extra__
            if (
                type(delta) is not low_cls
                or delta.__pydantic_fields_set__ != low_set
                or low_consts(delta_fields) != low_values
                or (low_number and type(delta_fields[low_number]) is not low_kind)
                or (
                    differ(delta_extra, low_keys, low_extra_consts, low_extra_values)
                    if low_keys
                    else delta_extra
                )
            ):
                return None
            # esc() raises TypeError for anything but a str, which is a miss.
            text = (delta_extra if text_in_extra else delta_fields)[text_name]
            if not pad_name:
                return f"{pieces[0]}{esc(text)}{pieces[1]}".encode()
            pad = (extra if pad_in_extra else fields)[pad_name]
            if pad_first:
                text, pad = pad, text
            return f"{pieces[0]}{esc(text)}{pieces[1]}{esc(pad)}{pieces[2]}".encode()
        except Exception:
            # A miss: a lone surrogate (UnicodeEncodeError, which the caller's fallback
            # escapes), a field that is not there, a value whose == raises.
            return None

    return render
