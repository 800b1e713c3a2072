"""The Django project served by the integration tests: settings, URLs and views in one module.

``GZipMiddleware`` is on, as in many real projects, to show that it leaves the stream alone.

    /sync/<script>?tag=&hb=      a scripted sync source (sync view)
    /async/<script>?tag=&hb=     a scripted async source (async view)
    /openai/<model>?hb=          OpenAI() in a sync view
    /aopenai/<model>?hb=         AsyncOpenAI() in an async view: stream opened in the view (ASGI)
    /aopenai-lazy/<model>?hb=    AsyncOpenAI() opened lazily by an async generator (WSGI and ASGI)
    /ping                        a plain response
"""

from __future__ import annotations

from typing import Any

from _django import project_settings

#: What these tests need; in a process where other tests configured Django first, apply it
#: with ``override_settings(**SETTINGS)`` and build the handlers inside (they load the
#: middleware when they are made).
SETTINGS = project_settings(__name__)

from django.core.wsgi import get_wsgi_application  # noqa: E402
from django.http import HttpRequest, HttpResponse  # noqa: E402
from django.urls import path  # noqa: E402

from integration.apps._clients import answer, async_client, messages, sync_client  # noqa: E402
from integration.apps._record import FileAsyncSource, FileSyncSource, on_complete_for  # noqa: E402
from llmsse.django import SSEResponse, sse_response  # noqa: E402


def _options(request: HttpRequest) -> dict[str, Any]:
    options: dict[str, Any] = {"heartbeat": float(request.GET.get("hb", "15"))}
    if "tag" in request.GET:
        options["on_complete"] = on_complete_for(request.GET["tag"])
    return options


def sync_script(request: HttpRequest, script: str) -> SSEResponse:
    return sse_response(FileSyncSource(script, request.GET["tag"]), **_options(request))


async def async_script(request: HttpRequest, script: str) -> SSEResponse:
    return sse_response(FileAsyncSource(script, request.GET["tag"]), **_options(request))


def openai_sync(request: HttpRequest, model: str) -> SSEResponse:
    stream = sync_client().chat.completions.create(model=model, messages=messages(), stream=True)
    return sse_response(stream, **_options(request))


async def openai_async(request: HttpRequest, model: str) -> SSEResponse:
    stream = await async_client().chat.completions.create(
        model=model, messages=messages(), stream=True
    )
    return sse_response(stream, **_options(request))


async def openai_async_lazy(request: HttpRequest, model: str) -> SSEResponse:
    return sse_response(answer(model), **_options(request))


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"pong")


urlpatterns = [
    path("sync/<str:script>", sync_script),
    path("async/<str:script>", async_script),
    path("openai/<str:model>", openai_sync),
    path("aopenai/<str:model>", openai_async),
    path("aopenai-lazy/<str:model>", openai_async_lazy),
    path("ping", ping),
]

# For gunicorn (a process of its own, configured above).
wsgi_application = get_wsgi_application()
