"""``python -m llmsse demo``: parse the options, bind the port, serve the page.

Everything a user can get wrong (an unknown option, a taken port, a framework that is not
installed) ends in one line on stderr and a non-zero exit status, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib.util
import logging
import os
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn

if TYPE_CHECKING:
    from llmsse.testing import FakeChatServer

__all__ = ["DemoError", "build_parser", "main"]

PROG = "python -m llmsse"

FRAMEWORKS = ("starlette", "flask", "django")
#: The server each framework runs under unless ``--server`` says otherwise.
DEFAULT_SERVER = {"starlette": "uvicorn", "flask": "werkzeug", "django": "uvicorn"}
SERVERS = {"starlette": ("uvicorn",), "flask": ("werkzeug",), "django": ("uvicorn", "werkzeug")}
EXTRAS = {"starlette": "starlette", "flask": "flask", "django": "django"}


class DemoError(Exception):
    """A problem to report to the user in one line (exit status 1)."""


class _Parser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose errors are one line: what was wrong, and where to look."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The parser of ``python -m llmsse``: one sub-command, ``demo``."""
    parser = _Parser(
        prog=PROG,
        description="llmsse: stream LLM output to frontends as Server-Sent Events.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    demo = commands.add_parser(
        "demo",
        help="serve a chat page that streams answers token by token",
        description=(
            "Serve a small chat page on http://HOST:PORT/ that streams answers with llmsse. "
            "Without OPENAI_API_KEY the answers come from an offline fake model (through the "
            "real openai SDK); with it, from the OpenAI API or any OpenAI-compatible API "
            "given by OPENAI_BASE_URL."
        ),
        epilog=(
            "Try: 'show me some code', 'what is the weather in Paris?', 'tell me a long "
            "story' (then Stop), 'make the model fail'. The page at /eventsource is the same "
            "answer read by a plain EventSource."
        ),
    )
    demo.add_argument(
        "--framework",
        choices=FRAMEWORKS,
        default="starlette",
        help="which llmsse adapter serves the page (default: %(default)s)",
    )
    demo.add_argument(
        "--server",
        choices=("uvicorn", "werkzeug"),
        help="the server: uvicorn for starlette, werkzeug for flask, either for django "
        "(default: uvicorn if installed)",
    )
    demo.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    demo.add_argument(
        "--port",
        type=_port,
        default=8000,
        help="port to listen on, 0 for any free one (default: %(default)s)",
    )
    demo.add_argument(
        "--model",
        help="model name for the API (default: gpt-4o-mini with OPENAI_API_KEY, "
        "llmsse-fake offline)",
    )
    demo.add_argument(
        "--offline",
        action="store_true",
        help="use the offline fake model even when OPENAI_API_KEY is set",
    )
    demo.add_argument(
        "--delay",
        type=_seconds,
        default=0.03,
        help="seconds between two words of the offline fake model (default: %(default)s)",
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is between 0 and 65535, got {port}")
    return port


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"expected 0 to 10 seconds, got {value}")
    return value


@dataclass(frozen=True, slots=True)
class _Plan:
    framework: str
    server: str
    host: str
    port: int
    model: str
    api_key: str | None
    base_url: str | None
    delay: float


def _default_server(framework: str) -> str:
    # Django brings no server: take whichever of the two is installed, uvicorn first.
    for server in (DEFAULT_SERVER[framework], *SERVERS[framework]):
        if importlib.util.find_spec(server) is not None:
            return server
    return DEFAULT_SERVER[framework]


def _plan(args: argparse.Namespace, environ: dict[str, str]) -> _Plan:
    server = args.server or _default_server(args.framework)
    if server not in SERVERS[args.framework]:
        raise DemoError(
            f"--framework {args.framework} runs under {' or '.join(SERVERS[args.framework])}"
        )
    api_key = None if args.offline else (environ.get("OPENAI_API_KEY") or None)
    model = args.model or ("gpt-4o-mini" if api_key else "llmsse-fake")
    base_url = (environ.get("OPENAI_BASE_URL") or None) if api_key else None
    return _Plan(args.framework, server, args.host, args.port, model, api_key, base_url, args.delay)


def _check_installed(plan: _Plan) -> None:
    # Import what the demo needs before binding the port, so that a missing extra is one
    # clear line and not a traceback from inside the server.
    modules = [EXTRAS[plan.framework], plan.server, f"llmsse.{plan.framework}"]
    for module in modules:
        try:
            __import__(module)
        except ImportError as exc:
            hint = f"pip install 'llmsse[{EXTRAS[plan.framework]}]'"
            if module == plan.server:
                hint = f"pip install {plan.server}"
            raise DemoError(
                f"--framework {plan.framework} needs {module}: {hint} ({exc})"
            ) from None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port``; ``DemoError`` saying why if it cannot be had."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise DemoError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    try:
        return socket.create_server(address, family=family, backlog=128)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        if exc.errno == 98 or "in use" in reason.lower():
            reason += " (another program listens there: pick another --port, or --port 0)"
        raise DemoError(f"cannot listen on {host}:{port}: {reason}") from None


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


class _OneLine(logging.Formatter):
    """Log records in one line: a failing upstream is expected in a demo, its traceback is not."""

    def format(self, record: logging.LogRecord) -> str:
        line = f"{record.levelname.lower()}: {record.getMessage()}"
        if record.exc_info and record.exc_info[1] is not None:
            exc = record.exc_info[1]
            line += f" ({type(exc).__name__})"
        return line


def _setup_logging() -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_OneLine())
    for name in ("llmsse", "uvicorn", "uvicorn.error", "django", "werkzeug"):
        logger = logging.getLogger(name)
        logger.handlers[:] = [handler]
        logger.propagate = False
        logger.setLevel(logging.WARNING)
    # werkzeug logs every request at INFO; uvicorn's access log is turned off in its config.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)


def _make_app(plan: _Plan, service: Any) -> Any:
    if plan.framework == "starlette":
        from llmsse.demo.starlette_app import create_app

        return create_app(service)
    if plan.framework == "flask":
        from llmsse.demo.flask_app import create_app as create_flask_app

        return create_flask_app(service)
    from llmsse.demo import django_app

    if plan.server == "uvicorn":
        return django_app.create_asgi_app(service)
    return django_app.create_wsgi_app(service)


def _serve_uvicorn(app: Any, sock: socket.socket) -> None:
    import uvicorn

    config = uvicorn.Config(
        app,
        log_config=None,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    uvicorn.Server(config).run(sockets=[sock])


def _serve_werkzeug(app: Any, sock: socket.socket, host: str) -> None:
    from werkzeug.serving import make_server

    server = make_server(host, sock.getsockname()[1], app, threaded=True, fd=sock.fileno())

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    # Set SIGINT too: a shell starts background jobs with SIGINT ignored, and uvicorn (which
    # sets its own handlers) stops on it there, so the werkzeug servers should as well.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        server.server_close()


def run(plan: _Plan, *, out: Callable[[str], None]) -> None:
    """Serve the demo described by ``plan`` until interrupted (Ctrl+C or SIGTERM)."""
    from llmsse.demo.service import DemoConfig, DemoService

    _check_installed(plan)
    sock = bind(plan.host, plan.port)
    fake: FakeChatServer | None = None
    try:
        config = DemoConfig(
            model=plan.model, api_key=plan.api_key, base_url=plan.base_url, delay=plan.delay
        )
        if config.offline:
            from llmsse.demo.fake_model import start_fake_model

            fake = start_fake_model(delay=plan.delay)
        service = DemoService(config, fake)
        app = _make_app(plan, service)
        service.warm_up(asynchronous=plan.server == "uvicorn")
        source = "offline fake model" if config.offline else f"model {plan.model}"
        if plan.base_url:
            source += f" at {plan.base_url}"
        out(
            f"llmsse demo on {_url(sock)} ({plan.framework} under {plan.server}, {source});"
            " press Ctrl+C to stop"
        )
        if plan.server == "uvicorn":
            _serve_uvicorn(app, sock)
        else:
            _serve_werkzeug(app, sock, plan.host)
    finally:
        sock.close()
        if fake is not None:
            fake.stop()


def main(argv: Sequence[str] | None = None, environ: dict[str, str] | None = None) -> int:
    """Run ``python -m llmsse`` with ``argv``; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    _setup_logging()
    try:
        plan = _plan(args, dict(os.environ) if environ is None else environ)
        run(plan, out=lambda line: print(line, flush=True))
    except DemoError as exc:
        print(f"{PROG} demo: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
