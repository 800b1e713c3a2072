"""The pytest plugin, as a user's project sees it: installed through the pytest11 entry point."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from importlib.metadata import entry_points
from pathlib import Path

USER_TESTS = """
import openai
import pytest

from llmsse.testing import read_text_stream


def test_fake_openai(fake_openai):
    fake_openai.reply("Hello\\nworld")
    stream = fake_openai.client().chat.completions.create(model="m", messages=[], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "Hello\\nworld"


@pytest.mark.anyio
async def test_fake_openai_async(fake_openai):
    fake_openai.reply("Hi")
    stream = await fake_openai.async_client().chat.completions.create(
        model="m", messages=[], stream=True
    )
    assert [c async for c in stream][1].choices[0].delta.content == "Hi"


def test_fake_chat_server(fake_chat_server):
    fake_chat_server.reply("over a socket")
    client = openai.OpenAI(base_url=fake_chat_server.base_url, api_key="sk", max_retries=0)
    stream = client.chat.completions.create(model="m", messages=[], stream=True)
    assert "".join(c.choices[0].delta.content or "" for c in stream) == "over a socket"


def test_chunk_builder(chunk_builder):
    stream = chunk_builder.stream("a b", usage=True)
    items = list(stream)
    assert items[-1].choices == [] and items[0].id != chunk_builder.chunks("x")[0].id
    assert b"data: [DONE]" in chunk_builder.body("x")
"""


def run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_user.py").write_text(USER_TESTS)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args, str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_plugin_is_registered_as_a_pytest11_entry_point() -> None:
    found = [ep for ep in entry_points(group="pytest11") if ep.name == "llmsse"]
    assert [ep.value for ep in found] == ["llmsse.testing.plugin"]


def test_a_users_tests_get_the_fixtures(tmp_path: Path) -> None:
    result = run_pytest(
        tmp_path, "-p", "anyio", "-W", "error::pytest.PytestUnraisableExceptionWarning"
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "passed" in result.stdout


def test_the_plugin_can_be_disabled(tmp_path: Path) -> None:
    result = run_pytest(tmp_path, "-p", "no:llmsse")
    assert result.returncode != 0
    assert "fixture 'fake_openai' not found" in result.stdout


def test_loading_the_plugin_imports_no_framework_and_no_openai() -> None:
    code = textwrap.dedent(
        """
        import sys
        import llmsse.testing.plugin
        heavy = ("openai", "starlette", "fastapi", "flask", "django", "httpx", "httpx2")
        print(sorted(m for m in heavy if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "[]", out.stderr


def test_import_llmsse_does_not_import_the_kit() -> None:
    code = "import sys, llmsse; print('llmsse.testing' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.strip() == "False", out.stderr
