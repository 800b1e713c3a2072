"""Reading a Responses API stream: what each event adds to the assistant message.

``client.responses.create(..., stream=True)`` yields typed events (PROTOCOLS.md §3).
:class:`ResponsesReader` records them in the same :class:`~llmsse._chat.ChatState` the
chat chunks go to, so every format encodes both sources alike. It dispatches on the
``type`` string, never on the class: the SDK builds an event of an unknown type as the
first class of its union, with the real ``type`` kept.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from llmsse._chat import ATTRS, SPEEDUPS, ChatState, to_plain

__all__ = ["ResponsesReader", "UpstreamError", "chat_usage", "is_response_event", "output_text"]

#: The Responses usage names and the Chat Completions names they are reported under.
USAGE_NAMES: dict[str, str] = {
    "input_tokens": "prompt_tokens",
    "output_tokens": "completion_tokens",
    "input_tokens_details": "prompt_tokens_details",
    "output_tokens_details": "completion_tokens_details",
}

# response.incomplete's reason as a chat finish reason (the others are kept as they are).
_INCOMPLETE_REASONS = {"max_output_tokens": "length", "content_filter": "content_filter"}

_FAILED_MESSAGE = "The upstream response failed."


class UpstreamError(Exception):
    """The upstream reported a failure inside its stream.

    Raised by the formats for a Responses ``response.failed`` or ``error`` event (which
    the openai SDK yields instead of raising), so that the stream ends the way it does
    when the source raises: with the format's error event, ``StreamResult.outcome ==
    "failed"`` and this exception in ``StreamResult.error``. The upstream's message
    reaches the client only when ``on_error`` returns it.

    Attributes:
        message: The upstream's error message (a generic one when it sent none).
        code: The upstream's error code, if any.
        event: The event that reported the failure.
    """

    def __init__(self, message: str, *, code: Any = None, event: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.event = event


# Whether a type is a Mapping: isinstance() against the ABC costs several dict reads
# per call, and this is asked twice per event. Bounded: types made on the fly are
# checked each time once it is full.
_MAPPINGS: dict[type, bool] = {dict: True}


def _get(obj: Any, name: str) -> Any:
    """A field of an SDK model, a plain object or a dict; ``None`` when absent."""
    mapping = _MAPPINGS.get(type(obj))
    if mapping is None:
        mapping = isinstance(obj, Mapping)
        if len(_MAPPINGS) < 512:
            _MAPPINGS[type(obj)] = mapping
    if mapping:
        return obj.get(name)
    try:
        return obj.__dict__[name]  # pydantic fields: skips BaseModel.__getattr__
    except (AttributeError, KeyError):
        return getattr(obj, name, None)


def _output_text_attrs(event: Any) -> str | None:
    """:data:`output_text` reading fields as attributes (the faster on Python 3.12+)."""
    try:
        if event.type == "response.output_text.delta":
            delta = event.delta
            if delta and type(delta) is str:
                return delta
    except Exception:  # not an SDK event
        pass
    return None


def _output_text_dict(event: Any) -> str | None:
    """:data:`output_text` reading fields from ``__dict__`` (the faster on 3.10 and 3.11)."""
    try:
        fields = event.__dict__
        if fields["type"] == "response.output_text.delta":
            delta = fields["delta"]
            if delta and type(delta) is str:
                return delta
    except Exception:  # not an SDK event
        pass
    return None


# output_text(event): the text of a response.output_text.delta event (nearly every event
# of a stream), else None: ResponsesReader.read() records the answer's text from such an
# event and nothing else, so a format may write it directly. Read as _chat.plain_text
# reads a chunk (see _chat.ATTRS).
output_text: Callable[[Any], str | None] = _output_text_attrs if ATTRS else _output_text_dict

# output_text_event(event, add_text): as _chat.text_event, for such an event; None without
# the C speedups, which replace both when they are there (see _chat.SPEEDUPS).
output_text_event: Callable[[Any, Callable[[str], object] | None], bytes | None] | None = None
if SPEEDUPS:
    from llmsse import _speedups

    output_text = _speedups.output_text
    output_text_event = _speedups.output_text_event


def is_response_event(item: object) -> bool:
    """Whether ``item`` is a Responses API stream event (by its ``type`` string)."""
    kind = _get(item, "type") if not isinstance(item, Mapping) else None
    return isinstance(kind, str) and (kind.startswith("response.") or kind == "error")


def chat_usage(usage: Any) -> dict[str, Any] | None:
    """A Responses usage object with the Chat Completions names (see :data:`USAGE_NAMES`)."""
    plain = to_plain(usage)
    if not isinstance(plain, dict):
        return None
    return {USAGE_NAMES.get(key) or key: value for key, value in plain.items()}


def _error(source: Any, event: Any) -> UpstreamError:
    message = _get(source, "message")
    if not isinstance(message, str) or not message:
        message = _FAILED_MESSAGE
    return UpstreamError(message, code=_get(source, "code"), event=event)


class ResponsesReader:
    """Records Responses events in a :class:`ChatState`, one reader per stream.

    :meth:`read` returns the answer text an event adds (or ``None``); reasoning,
    refusals and tool calls go to ``state.pending`` as chunks' do. Function calls are
    numbered in the order they start; their id is the item's ``call_id`` (what a tool
    result refers to). Summary parts of the reasoning are joined by a blank line.
    With ``keep_text=False`` the answer's text is not kept in the state (nothing will
    read it: no ``on_complete``), as the formats do for chunks.
    """

    __slots__ = ("_add_text", "_calls", "_ended", "_reasoning_key", "state")

    def __init__(self, state: ChatState, *, keep_text: bool = True) -> None:
        self.state = state
        self._add_text = state.add_text if keep_text else None
        self._calls: dict[Any, int] = {}  # function_call item id -> ToolCall index
        self._ended: set[int] = set()
        self._reasoning_key: Any = None  # the reasoning part the last delta belonged to

    def read(self, event: Any) -> str | None:
        """Record ``event``; return its answer text. Raises :class:`UpstreamError` on a failure."""
        kind = _get(event, "type")
        if kind == "response.output_text.delta":  # nearly every event of a stream
            delta = _get(event, "delta")
            if delta and isinstance(delta, str):
                if self._add_text is not None:
                    self._add_text(delta)
                return delta
            return None
        handler = _HANDLERS.get(kind)
        if handler is not None:
            handler(self, event)
        return None

    # --- content ----------------------------------------------------------------------

    def _refusal(self, event: Any) -> None:
        delta = _get(event, "delta")
        if delta and isinstance(delta, str):
            self.state.add_refusal(delta)

    def _summary(self, event: Any) -> None:
        self._reasoning(event, (_get(event, "item_id"), "summary", _get(event, "summary_index")))

    def _reasoning_text(self, event: Any) -> None:
        self._reasoning(event, (_get(event, "item_id"), "text", _get(event, "content_index")))

    def _reasoning(self, event: Any, key: tuple[Any, ...]) -> None:
        delta = _get(event, "delta")
        if not delta or not isinstance(delta, str):
            return
        if key != self._reasoning_key:
            if self._reasoning_key is not None:
                self.state.add_reasoning("\n\n")
            self._reasoning_key = key
        self.state.add_reasoning(delta)

    # --- function calls ---------------------------------------------------------------

    def _index(self, item_id: Any) -> int:
        index = self._calls.get(item_id)
        if index is None:
            index = self._calls[item_id] = len(self._calls)
        return index

    def _item_added(self, event: Any) -> None:
        item = _get(event, "item")
        if _get(item, "type") != "function_call":
            return
        item_id = _get(item, "id") or _get(event, "output_index")
        index = self._index(item_id)
        call_id = _get(item, "call_id") or _get(item, "id")
        self.state.add_tool_call(index, call_id, _get(item, "name"))
        arguments = _get(item, "arguments")
        if arguments and isinstance(arguments, str):
            self.state.add_arguments(index, arguments)

    def _arguments_delta(self, event: Any) -> None:
        delta = _get(event, "delta")
        index = self._index(_get(event, "item_id"))
        if delta and isinstance(delta, str) and index not in self._ended:
            self.state.add_arguments(index, delta)

    def _arguments_done(self, event: Any) -> None:
        self._end_call(self._index(_get(event, "item_id")), _get(event, "arguments"))

    def _item_done(self, event: Any) -> None:
        item = _get(event, "item")
        if _get(item, "type") != "function_call":
            return
        index = self._index(_get(item, "id") or _get(event, "output_index"))
        if index not in self._ended:
            self.state.add_tool_call(index, _get(item, "call_id"), _get(item, "name"))
        self._end_call(index, _get(item, "arguments"))

    def _end_call(self, index: int, arguments: Any) -> None:
        if index in self._ended:
            return
        self._ended.add(index)
        call = self.state.add_tool_call(index, None, None)
        if isinstance(arguments, str) and arguments != call.arguments:
            if arguments.startswith(call.arguments):
                self.state.add_arguments(index, arguments[len(call.arguments) :])
            else:  # fragments went astray: the complete arguments win
                call.arguments = arguments
        self.state.end_tool_call(index)

    # --- the end ----------------------------------------------------------------------

    def _end(self, event: Any, finish_reason: str | None) -> None:
        response = _get(event, "response")
        usage = _get(response, "usage")
        result = self.state.result
        if usage is not None:
            result.usage = chat_usage(usage)
        if finish_reason is not None:
            result.finish_reason = finish_reason
        for index in list(self._calls.values()):
            self._end_call(index, None)

    def _completed(self, event: Any) -> None:
        self._end(event, "tool_calls" if self._calls else "stop")

    def _incomplete(self, event: Any) -> None:
        details = _get(_get(event, "response"), "incomplete_details")
        reason = _get(details, "reason")
        if isinstance(reason, str):
            reason = _INCOMPLETE_REASONS.get(reason, reason)
        else:
            reason = "incomplete"
        self._end(event, reason)

    def _failed(self, event: Any) -> None:
        self._end(event, None)
        raise _error(_get(_get(event, "response"), "error"), event)

    def _error_event(self, event: Any) -> None:
        # The schema says flat ({"type": "error", "message", "code"}), the API has been
        # seen to nest it ({"type": "error", "error": {...}}): read either.
        nested = _get(event, "error")
        raise _error(nested if nested is not None else event, event)


_HANDLERS: dict[Any, Callable[[ResponsesReader, Any], None]] = {
    "response.refusal.delta": ResponsesReader._refusal,
    "response.reasoning_summary_text.delta": ResponsesReader._summary,
    "response.reasoning_text.delta": ResponsesReader._reasoning_text,
    "response.output_item.added": ResponsesReader._item_added,
    "response.function_call_arguments.delta": ResponsesReader._arguments_delta,
    "response.function_call_arguments.done": ResponsesReader._arguments_done,
    "response.output_item.done": ResponsesReader._item_done,
    "response.completed": ResponsesReader._completed,
    "response.incomplete": ResponsesReader._incomplete,
    "response.failed": ResponsesReader._failed,
    "error": ResponsesReader._error_event,
}
