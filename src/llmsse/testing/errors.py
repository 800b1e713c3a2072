"""The openai SDK's own exceptions, built the way the SDK builds them.

They carry a real request (and, for status errors, a real response) of the HTTP library the
installed SDK uses (``httpx`` for openai 1.x/2.x, ``httpx2`` for 3.x), so code that reads
``err.request``, ``err.status_code``, ``err.body`` or ``err.code`` works on them.
"""

from __future__ import annotations

import builtins
import sys
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import openai

__all__ = ["api_connection_error", "api_error", "api_status_error", "error_body", "sdk_httpx"]

_FAKE_URL = "https://api.openai.com/v1/chat/completions"

# Status code -> (error type, code) as the API sends them.
_STATUS_DEFAULTS: dict[int, tuple[str, str | None]] = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "unsupported_country_region_territory"),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
    503: ("server_error", None),
}


def sdk_httpx() -> ModuleType:
    """The HTTP library module the installed openai SDK is built on (``httpx`` or ``httpx2``)."""
    import openai

    base = openai.DefaultHttpxClient.__mro__[1]
    return sys.modules[base.__module__.partition(".")[0]]


def error_body(
    status: int | None, message: str, *, type: str | None = None, code: str | None = None
) -> dict[str, Any]:
    """The inner ``error`` object of an API error, with the API's usual type and code."""
    default_type, default_code = _STATUS_DEFAULTS.get(status or 500, ("server_error", None))
    return {
        "message": message,
        "type": type if type is not None else default_type,
        "param": None,
        "code": code if code is not None else default_code,
    }


def api_error(
    message: str = "The server had an error while processing your request.",
    *,
    type: str = "server_error",
    code: str | None = None,
) -> openai.APIError:
    """The ``openai.APIError`` the SDK raises for an error event in the middle of a stream.

    Like the SDK's, it has ``.body`` (the inner error object), ``.type`` and ``.code`` and
    no ``status_code``.
    """
    import openai

    request = sdk_httpx().Request("POST", _FAKE_URL)
    body = error_body(None, message, type=type, code=code)
    return openai.APIError(message, request, body=body)


def api_status_error(
    status: int,
    message: str | None = None,
    *,
    type: str | None = None,
    code: str | None = None,
    headers: dict[str, str] | None = None,
) -> openai.APIStatusError:
    """The ``APIStatusError`` subclass the SDK raises for an HTTP error status.

    429 gives ``openai.RateLimitError``, 401 ``AuthenticationError``, 5xx
    ``InternalServerError`` and so on, with a real response and the SDK's message format
    (``"Error code: 429 - {...}"``).
    """
    import openai

    httpx = sdk_httpx()
    message = message or f"Fake error with status {status}"
    payload = {"error": error_body(status, message, type=type, code=code)}
    response = httpx.Response(
        status,
        json=payload,
        headers=headers or {},
        request=httpx.Request("POST", _FAKE_URL),
    )
    classes: dict[int, builtins.type[openai.APIStatusError]] = {
        400: openai.BadRequestError,
        401: openai.AuthenticationError,
        403: openai.PermissionDeniedError,
        404: openai.NotFoundError,
        409: openai.ConflictError,
        422: openai.UnprocessableEntityError,
        429: openai.RateLimitError,
    }
    cls = classes.get(status)
    if cls is None:
        cls = openai.InternalServerError if status >= 500 else openai.APIStatusError
    return cls(f"Error code: {status} - {payload}", response=response, body=payload["error"])


def api_connection_error(*, timeout: bool = False) -> openai.APIConnectionError:
    """``openai.APIConnectionError`` (or ``APITimeoutError``): the connection broke mid-stream."""
    import openai

    request = sdk_httpx().Request("POST", _FAKE_URL)
    if timeout:
        return openai.APITimeoutError(request=request)
    return openai.APIConnectionError(request=request)
