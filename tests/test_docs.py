"""The documentation site builds with ``mkdocs build --strict``: no broken link, no missing
page, no docstring the API reference cannot render.

Needs the ``docs`` extra (``pip install -e '.[docs]'``); skipped without it.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _missing() -> list[str]:
    missing = []
    for module in ("mkdocs", "material", "mkdocstrings"):
        if importlib.util.find_spec(module) is None:
            missing.append(module)
    if "mkdocstrings" not in missing:
        try:
            spec = importlib.util.find_spec("mkdocstrings_handlers.python")
        except ModuleNotFoundError:
            spec = None
        if spec is None:
            missing.append("mkdocstrings-python")
    return missing


def test_docs_build_strict(tmp_path: Path) -> None:
    missing = _missing()
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed: pip install -e '.[docs]'")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "index.html").is_file()
    assert (tmp_path / "assets" / "demo.png").is_file()
    api = (tmp_path / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("llmsse.iter_sse", "llmsse.aiter_sse", "llmsse.starlette.sse_response"):
        assert f'id="{name}"' in api, f"{name} is missing from the API reference"


def test_every_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    pages = sorted(p.relative_to(ROOT / "docs").as_posix() for p in (ROOT / "docs").rglob("*.md"))
    missing = [page for page in pages if page not in config]
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"
