"""The complete examples of docs/testing.md run, as a user would run them, and pass."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[2] / "docs" / "testing.md"
EXAMPLE = re.compile(r"```python\n# (test_\w+\.py)\n(.*?)```", re.S)


def examples() -> dict[str, str]:
    return dict(EXAMPLE.findall(DOC.read_text()))


def test_the_doc_has_an_example_per_framework() -> None:
    assert {"test_fastapi_chat.py", "test_flask_chat.py", "test_django_chat.py"} <= set(examples())


def test_the_doc_examples_pass(tmp_path: Path) -> None:
    # One pytest run for all of them: a run costs seconds of start-up.
    for name, code in examples().items():
        (tmp_path / name).write_text(code)
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    for name in examples():
        assert f"{name}::" in result.stdout and "FAILED" not in result.stdout
