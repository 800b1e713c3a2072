"""The chat app of ``_redis_app.py`` in Flask, for gunicorn workers (WSGI, sync views).

Same routes, same environment, same Redis key prefix: a stream started here can be resumed
or cancelled by the Starlette workers and the other way round. The store runs on each
process's background event loop (where ``start_stream`` and ``resume_response`` put it).
"""

from __future__ import annotations

import os

import flask
import openai

from llmsse.flask import resume_response
from llmsse.resumable import RedisStore, cancel_stream, start_stream

STORE = RedisStore(url=os.environ["LLMSSE_TEST_REDIS_URL"], prefix=os.environ["LLMSSE_TEST_PREFIX"])
# max_retries: see _redis_app.py (a closed keep-alive connection is retried).
CLIENT = openai.OpenAI(base_url=os.environ["LLMSSE_TEST_OPENAI"], api_key="sk-test", max_retries=2)

app = flask.Flask(__name__)


@app.post("/chat")
def start() -> flask.Response:
    body = flask.request.get_json()
    stream = CLIENT.chat.completions.create(
        model="fake", messages=[{"role": "user", "content": body["message"]}], stream=True
    )
    stream_id = start_stream(stream, store=STORE, expire=body.get("expire", 60.0))
    return flask.jsonify({"id": stream_id, "pid": os.getpid()})


@app.get("/chat/<stream_id>")
def resume(stream_id: str) -> flask.Response:
    return resume_response(stream_id, store=STORE, heartbeat=0.5)


@app.post("/chat/<stream_id>/cancel")
def cancel(stream_id: str) -> flask.Response:
    return flask.jsonify({"cancelled": cancel_stream(stream_id, store=STORE), "pid": os.getpid()})
