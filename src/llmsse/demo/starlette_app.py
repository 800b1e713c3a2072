"""The demo as a Starlette app, served by uvicorn, streaming with ``llmsse.starlette``."""

from __future__ import annotations

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from llmsse.demo.service import PAGES, STATIC, BadRequest, DemoService, load_asset
from llmsse.starlette import sse_response

__all__ = ["create_app"]


def create_app(service: DemoService) -> Starlette:
    """The Starlette app of the demo: the page, its files and the streaming endpoints."""

    async def page(request: Request) -> Response:
        asset = load_asset(PAGES[request.url.path])
        return Response(asset.body, media_type=asset.content_type)

    async def static(request: Request) -> Response:
        name = request.path_params["name"]
        if name not in STATIC:
            return PlainTextResponse("Not found", status_code=404)
        asset = load_asset(name)
        return Response(asset.body, media_type=asset.content_type)

    async def chat(request: Request) -> Response:
        try:
            headers = request.headers
            service.check_same_site(
                headers.get("origin"), headers.get("host"), headers.get("sec-fetch-site")
            )
            if request.method == "POST":
                messages = service.parse_chat(await request.body())
            else:
                messages = service.parse_question(request.query_params.get("q"))
        except BadRequest as exc:
            return PlainTextResponse(str(exc), status_code=400)
        # An async source: AsyncOpenAI's stream stays on the event loop.
        source = service.async_source(messages)
        return sse_response(source, **service.options(eventsource=request.method == "GET"))

    async def stats(request: Request) -> Response:
        return Response(service.stats_json(), media_type="application/json")

    return Starlette(
        routes=[
            *(Route(path, page) for path in PAGES),
            Route("/static/{name}", static),
            Route("/api/chat", chat, methods=["GET", "POST"]),
            Route("/api/stats", stats),
        ]
    )
