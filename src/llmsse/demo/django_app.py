"""The demo as a Django project in one module, streaming with ``llmsse.django``.

Served under uvicorn (ASGI, with ``AsyncOpenAI``) or werkzeug (WSGI, with ``OpenAI``).
Django is configured in code, so this module is both the settings' ``ROOT_URLCONF`` and
the views.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.urls import path

from llmsse.demo.service import PAGES, STATIC, BadRequest, DemoService, load_asset
from llmsse.django import sse_response

__all__ = ["create_asgi_app", "create_wsgi_app", "urlpatterns"]

_state: dict[str, Any] = {}


def _service() -> DemoService:
    service: DemoService = _state["service"]
    return service


def page(request: HttpRequest) -> HttpResponse:
    """The chat page or the ``EventSource`` page."""
    asset = load_asset(PAGES[request.path])
    return HttpResponse(asset.body, content_type=asset.content_type)


def static(request: HttpRequest, name: str) -> HttpResponse:
    """The page's script and style sheet."""
    if name not in STATIC:
        return HttpResponse("Not found", status=404, content_type="text/plain")
    asset = load_asset(name)
    return HttpResponse(asset.body, content_type=asset.content_type)


def chat(request: HttpRequest) -> HttpResponse:
    """``POST`` a conversation (the page's ``fetch``) or ``GET ?q=`` (``EventSource``)."""
    service = _service()
    try:
        headers = request.headers
        service.check_same_site(
            headers.get("Origin"), headers.get("Host"), headers.get("Sec-Fetch-Site")
        )
        if request.method == "POST":
            messages = service.parse_chat(request.body)
        elif request.method == "GET":
            messages = service.parse_question(request.GET.get("q"))
        else:
            return HttpResponse("Method not allowed", status=405, content_type="text/plain")
    except BadRequest as exc:
        return HttpResponse(str(exc), status=400, content_type="text/plain")
    options = service.options(eventsource=request.method == "GET")
    # Under ASGI an async source keeps AsyncOpenAI on the event loop; under WSGI each
    # request has its own thread and the sync client is the natural fit.
    if _state["asgi"]:
        return sse_response(service.async_source(messages), **options)
    return sse_response(service.sync_source(messages), **options)


def stats(request: HttpRequest) -> HttpResponse:
    """How the streams ended, as JSON."""
    return HttpResponse(_service().stats_json(), content_type="application/json")


urlpatterns = [
    *(path(url.lstrip("/"), page) for url in PAGES),
    path("static/<str:name>", static),
    path("api/chat", chat),
    path("api/stats", stats),
]


def _configure(service: DemoService, *, asgi: bool) -> None:
    from django.conf import settings

    _state["service"] = service
    _state["asgi"] = asgi
    if not settings.configured:
        settings.configure(
            DEBUG=False,
            SECRET_KEY=secrets.token_urlsafe(32),
            ROOT_URLCONF=__name__,
            # The demo answers on whatever --host it was given; it has no sessions or data.
            ALLOWED_HOSTS=["*"],
            INSTALLED_APPS=[],
            MIDDLEWARE=["django.middleware.common.CommonMiddleware"],
            USE_TZ=True,
        )
    import django

    django.setup()


def create_asgi_app(service: DemoService) -> Any:
    """The demo as an ASGI application (for uvicorn)."""
    _configure(service, asgi=True)
    from django.core.asgi import get_asgi_application

    return get_asgi_application()


def create_wsgi_app(service: DemoService) -> Any:
    """The demo as a WSGI application (for werkzeug)."""
    _configure(service, asgi=False)
    from django.core.wsgi import get_wsgi_application

    return get_wsgi_application()
