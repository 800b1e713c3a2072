"""docs/custom-formats.md: its worked example (the format and its tests) runs as written."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DOC = Path(__file__).resolve().parents[1] / "docs" / "custom-formats.md"
FILE = re.compile(r"```python\n# (\w+\.py)\n(.*?)```", re.S)
BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def test_the_worked_example_passes_its_own_tests(tmp_path: Path) -> None:
    files = dict(FILE.findall(DOC.read_text(encoding="utf-8")))
    assert set(files) == {"htmx_format.py", "test_htmx_format.py"}
    for name, code in files.items():
        (tmp_path / name).write_text(code, encoding="utf-8")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-v", "-p", "no:cacheprovider", "test_htmx_format.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert result.stdout.count(" PASSED") == 4


def test_every_python_block_compiles() -> None:
    for code in BLOCK.findall(DOC.read_text(encoding="utf-8")):
        compile(code, str(DOC), "exec")
