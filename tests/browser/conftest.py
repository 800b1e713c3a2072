"""Headless Chromium, driven by Playwright, for the tests in this folder.

They need Debian's ``chromium`` (or ``LLMSSE_CHROMIUM=/path/to/chrome``) and the ``playwright``
Python package; Playwright's own browser download is never used. Without them the tests are
skipped, except on CI (``CI`` set), where a missing browser is an error.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest

HOW = "apt-get install chromium; pip install playwright"

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def _chromium() -> str | None:
    configured = os.environ.get("LLMSSE_CHROMIUM")
    if configured:
        return configured if os.path.exists(configured) else None
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _unavailable(reason: str) -> NoReturn:
    if os.environ.get("CI"):
        pytest.fail(f"browser tests must run on CI: {reason} ({HOW})", pytrace=False)
    pytest.skip(f"{reason}: to run the browser tests, {HOW}")


# Module scope, not session: Playwright's sync API runs an asyncio loop in the main
# thread while it is open, and every later test that starts a loop there would fail.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """A headless Chromium, shared by one module's tests."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        _unavailable("playwright is not installed")
    executable = _chromium()
    if executable is None:
        _unavailable("chromium is not installed")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    """A fresh page (its own browser context), closed after the test."""
    context = browser.new_context(viewport={"width": 900, "height": 800})
    context.set_default_timeout(20_000)
    try:
        yield context.new_page()
    finally:
        context.close()
