"""The Starlette and Flask apps the adapter tests serve (the Django one is ``_django_app.py``).

Every app has the same routes, in each framework's one-line style:

    POST /chat?n=&delay=&tag=    start a stream of n text pieces, one per ``delay`` seconds
                                 -> {"id": stream id}
    GET  /chat/<id>/stream       resume it (Last-Event-ID header or ?last_event_id=)
    POST /chat/<id>/cancel       the stop button -> {"cancelled": bool}
    GET  /record/<tag>           what happened to the source: {"produced", "closed"}

The record lives in the serving process (gunicorn runs the Flask app in a worker), so the
tests ask for it over HTTP.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import anyio
import flask
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import llmsse.flask
import llmsse.starlette
from llmsse.resumable import acancel_stream, astart_stream, cancel_stream, start_stream

#: The heartbeat of every resumed response: short, so a reader that left is noticed soon.
HEARTBEAT = 0.5

RECORD: dict[str, dict[str, Any]] = {}


def pieces(n: int) -> list[str]:
    return [f"p{i} " for i in range(n)]


def sync_source(tag: str, n: int, delay: float) -> Iterator[str]:
    record = RECORD[tag] = {"produced": 0, "closed": False}
    try:
        for piece in pieces(n):
            time.sleep(delay)
            record["produced"] += 1
            yield piece
    finally:
        record["closed"] = True


async def async_source(tag: str, n: int, delay: float) -> AsyncIterator[str]:
    record = RECORD[tag] = {"produced": 0, "closed": False}
    try:
        for piece in pieces(n):
            await anyio.sleep(delay)
            record["produced"] += 1
            yield piece
    finally:
        record["closed"] = True


def source_args(args: Any) -> tuple[str, int, float]:
    return args["tag"], int(args.get("n", "10")), float(args.get("delay", "0.01"))


# --- Starlette ----------------------------------------------------------------------------


async def start(request: Request) -> Response:
    stream_id = await astart_stream(async_source(*source_args(request.query_params)))
    return JSONResponse({"id": stream_id})


async def resume(request: Request) -> Response:
    return await llmsse.starlette.resume_response(
        request, request.path_params["stream_id"], heartbeat=HEARTBEAT
    )


async def cancel(request: Request) -> Response:
    return JSONResponse({"cancelled": await acancel_stream(request.path_params["stream_id"])})


async def record(request: Request) -> Response:
    return JSONResponse(RECORD.get(request.path_params["tag"]))


starlette_app = Starlette(
    routes=[
        Route("/chat", start, methods=["POST"]),
        Route("/chat/{stream_id}/stream", resume),
        Route("/chat/{stream_id}/cancel", cancel, methods=["POST"]),
        Route("/record/{tag}", record),
    ]
)


# --- Flask --------------------------------------------------------------------------------

flask_app = flask.Flask(__name__)


@flask_app.post("/chat")
def flask_start() -> Any:
    return {"id": start_stream(sync_source(*source_args(flask.request.args)))}


@flask_app.get("/chat/<stream_id>/stream")
def flask_resume(stream_id: str) -> flask.Response:
    return llmsse.flask.resume_response(stream_id, heartbeat=HEARTBEAT)


@flask_app.post("/chat/<stream_id>/cancel")
def flask_cancel(stream_id: str) -> Any:
    return {"cancelled": cancel_stream(stream_id)}


@flask_app.get("/record/<tag>")
def flask_record(tag: str) -> Any:
    return flask.jsonify(RECORD.get(tag))
