"""The demo as a Flask app under werkzeug's threaded server, streaming with ``llmsse.flask``."""

from __future__ import annotations

from flask import Flask, Response, request

from llmsse.demo.service import PAGES, STATIC, BadRequest, DemoService, load_asset
from llmsse.flask import sse_response

__all__ = ["create_app"]


def create_app(service: DemoService) -> Flask:
    """The Flask app of the demo: the page, its files and the streaming endpoints."""
    app = Flask("llmsse.demo", static_folder=None)

    def page() -> Response:
        asset = load_asset(PAGES[request.path])
        return Response(asset.body, content_type=asset.content_type)

    for path in PAGES:
        app.add_url_rule(path, f"page{path}", page)

    @app.get("/static/<name>")
    def static(name: str) -> Response:
        if name not in STATIC:
            return Response("Not found", status=404, content_type="text/plain")
        asset = load_asset(name)
        return Response(asset.body, content_type=asset.content_type)

    @app.route("/api/chat", methods=["GET", "POST"])
    def chat() -> Response:
        try:
            headers = request.headers
            service.check_same_site(
                headers.get("Origin"), headers.get("Host"), headers.get("Sec-Fetch-Site")
            )
            if request.method == "POST":
                messages = service.parse_chat(request.get_data())
            else:
                messages = service.parse_question(request.args.get("q"))
        except BadRequest as exc:
            return Response(str(exc), status=400, content_type="text/plain")
        # A sync source: werkzeug gives each request its own thread.
        source = service.sync_source(messages)
        return sse_response(source, **service.options(eventsource=request.method == "GET"))

    @app.get("/api/stats")
    def stats() -> Response:
        return Response(service.stats_json(), content_type="application/json")

    return app
