"""A chat app for the multi-process tests: every uvicorn worker shares one Redis.

Run as ``uvicorn _redis_app:app --app-dir tests/resumable``, with the environment:
``LLMSSE_TEST_REDIS_URL``, ``LLMSSE_TEST_PREFIX`` (the store's key prefix) and
``LLMSSE_TEST_OPENAI`` (the base URL of a fake OpenAI API, ``llmsse.testing.FakeChatServer``).

``POST /chat`` (JSON ``{"message": ..., "expire": seconds}``) starts a generation with the
real ``AsyncOpenAI`` client, detached, and answers ``{"id": ..., "pid": ...}``;
``GET /chat/{id}`` serves it with ``llmsse.starlette.resume_response`` from ``Last-Event-ID``
on (404 when unknown, 204 when nothing is left); ``POST /chat/{id}/cancel`` stops it wherever
it runs.
"""

from __future__ import annotations

import os

import openai
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from llmsse.resumable import RedisStore, acancel_stream, astart_stream
from llmsse.starlette import resume_response

STORE = RedisStore(url=os.environ["LLMSSE_TEST_REDIS_URL"], prefix=os.environ["LLMSSE_TEST_PREFIX"])
_clients: list[openai.AsyncOpenAI] = []


def client() -> openai.AsyncOpenAI:
    if not _clients:
        # max_retries: a pooled keep-alive connection that the fake API has closed in the
        # meantime fails before the request is read (httpx ReadError); the SDK's retry is
        # what a real app relies on there.
        _clients.append(
            openai.AsyncOpenAI(
                base_url=os.environ["LLMSSE_TEST_OPENAI"], api_key="sk-test", max_retries=2
            )
        )
    return _clients[0]


async def start(request: Request) -> Response:
    body = await request.json()
    stream = await client().chat.completions.create(
        model="fake",
        messages=[{"role": "user", "content": body["message"]}],
        stream=True,
    )
    stream_id = await astart_stream(stream, store=STORE, expire=body.get("expire", 60.0))
    return JSONResponse({"id": stream_id, "pid": os.getpid()})


async def resume(request: Request) -> Response:
    # heartbeat 0.5 s: a dropped client is noticed at the next write.
    headers = {"X-Worker": str(os.getpid())}
    return await resume_response(
        request, request.path_params["id"], store=STORE, heartbeat=0.5, headers=headers
    )


async def cancel(request: Request) -> Response:
    cancelled = await acancel_stream(request.path_params["id"], store=STORE)
    return JSONResponse({"cancelled": cancelled, "pid": os.getpid()})


app = Starlette(
    routes=[
        Route("/chat", start, methods=["POST"]),
        Route("/chat/{id}", resume),
        Route("/chat/{id}/cancel", cancel, methods=["POST"]),
    ]
)
