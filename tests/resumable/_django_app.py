"""The Django project of the adapter tests: the routes of ``_apps.py`` twice, as sync views
under ``/chat`` and as ``async def`` views under ``/achat``.

In a process where other tests configured Django first, apply ``SETTINGS`` with
``override_settings`` and build the handlers inside (see ``tests/_django.py``).
"""

from __future__ import annotations

from _django import project_settings

SETTINGS = project_settings(__name__)

from django.http import HttpRequest, HttpResponse, JsonResponse  # noqa: E402
from django.urls import path  # noqa: E402

import llmsse.django  # noqa: E402
from llmsse.resumable import acancel_stream, cancel_stream  # noqa: E402

from ._apps import HEARTBEAT, RECORD, async_source, source_args, sync_source  # noqa: E402


def start(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"id": llmsse.django.start_stream(sync_source(*source_args(request.GET)))})


def resume(request: HttpRequest, stream_id: str) -> HttpResponse:
    return llmsse.django.resume_response(request, stream_id, heartbeat=HEARTBEAT)


def cancel(request: HttpRequest, stream_id: str) -> HttpResponse:
    return JsonResponse({"cancelled": cancel_stream(stream_id)})


async def astart(request: HttpRequest) -> HttpResponse:
    source = async_source(*source_args(request.GET))
    return JsonResponse({"id": await llmsse.django.astart_stream(source)})


async def aresume(request: HttpRequest, stream_id: str) -> HttpResponse:
    return await llmsse.django.aresume_response(request, stream_id, heartbeat=HEARTBEAT)


async def acancel(request: HttpRequest, stream_id: str) -> HttpResponse:
    return JsonResponse({"cancelled": await acancel_stream(stream_id)})


def record(request: HttpRequest, tag: str) -> HttpResponse:
    return JsonResponse(RECORD.get(tag), safe=False)


urlpatterns = [
    path("chat", start),
    path("chat/<str:stream_id>/stream", resume),
    path("chat/<str:stream_id>/cancel", cancel),
    path("achat", astart),
    path("achat/<str:stream_id>/stream", aresume),
    path("achat/<str:stream_id>/cancel", acancel),
    path("record/<str:tag>", record),
]
