"""The complete examples of docs/testing.md run, as a user would run them, and pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
EXAMPLE = re.compile(r"```python\n# (test_\w+\.py)\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(DOC.read_text()))


def test_the_doc_has_an_example_per_framework() -> None:
    assert {"test_fastapi_chat.py", "test_flask_chat.py", "test_django_chat.py"} <= set(examples())


@pytest.mark.parametrize("name", sorted(examples()))
def test_doc_example_passes(name: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text(examples()[name])
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path / name)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " passed" in result.stdout
