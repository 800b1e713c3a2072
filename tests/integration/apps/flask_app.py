"""The Flask app served by the integration tests (werkzeug in-process, gunicorn as a subprocess).

/sync/<script>?tag=&hb=      a scripted sync source (integration/apps/_record.py)
/async/<script>?tag=&hb=     a scripted async source, driven on llmsse's background loop
/openai/<model>?hb=          OpenAI() against the fake API
/aopenai/<model>?hb=         AsyncOpenAI() from an async def view, opened lazily
/aopenai-eager/<model>       AsyncOpenAI() stream opened in an async def view (refused)
/ping                        a plain response, to see that the server is not blocked
"""

from __future__ import annotations

from typing import Any

import flask

from integration.apps._clients import answer, messages, sync_client
from integration.apps._clients import async_client as _async_client
from integration.apps._record import FileAsyncSource, FileSyncSource, on_complete_for
from llmsse.flask import sse_response

app = flask.Flask(__name__)


def _options() -> dict[str, Any]:
    args = flask.request.args
    options: dict[str, Any] = {"heartbeat": float(args.get("hb", "15"))}
    if "tag" in args:
        options["on_complete"] = on_complete_for(args["tag"])
    return options


@app.get("/sync/<script>")
def sync_script(script: str) -> flask.Response:
    return sse_response(FileSyncSource(script, flask.request.args["tag"]), **_options())


@app.get("/async/<script>")
def async_script(script: str) -> flask.Response:
    return sse_response(FileAsyncSource(script, flask.request.args["tag"]), **_options())


@app.get("/openai/<model>")
def openai_sync(model: str) -> flask.Response:
    stream = sync_client().chat.completions.create(model=model, messages=messages(), stream=True)
    return sse_response(stream, **_options())


@app.get("/aopenai/<model>")
async def openai_async(model: str) -> flask.Response:
    return sse_response(answer(model), **_options())


@app.get("/aopenai-eager/<model>")
async def openai_async_eager(model: str) -> flask.Response:
    stream = await _async_client().chat.completions.create(
        model=model, messages=messages(), stream=True
    )
    try:
        return sse_response(stream, **_options())
    except RuntimeError as exc:
        await stream.close()
        return flask.Response(str(exc), status=500)


@app.get("/ping")
def ping() -> str:
    return "pong"
