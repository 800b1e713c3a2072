"""``import llmsse`` stays light: no web framework, no openai, no testing kit."""

from __future__ import annotations

import subprocess
import sys

import llmsse


def test_import_pulls_in_no_framework_and_no_sdk() -> None:
    code = (
        "import sys, llmsse\n"
        "heavy = ('openai', 'pydantic', 'httpx', 'starlette', 'fastapi', 'flask', 'django', 'trio',"
        " 'llmsse.testing', 'llmsse.demo', 'llmsse.starlette', 'llmsse.flask', 'llmsse.django')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_public_names() -> None:
    assert set(llmsse.__all__) >= {
        "ServerSentEvent",
        "SSEDecoder",
        "parse",
        "iter_sse",
        "aiter_sse",
        "StreamResult",
        "ToolCall",
        "Format",
        "sse_headers",
        "is_async_source",
    }
    for name in llmsse.__all__:
        assert getattr(llmsse, name) is not None
        assert name == "__version__" or getattr(llmsse, name).__doc__, f"{name} has no docstring"
