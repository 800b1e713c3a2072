"""Running a JS client of a stream format under Node: tests/js (the ``ai`` packages) and
tests/js/ag-ui (``@ag-ui/client``) each have a reader script and their own packages."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any, NoReturn

import pytest

TESTS = Path(__file__).parent


def unavailable(reason: str, *, tests: str, how: str) -> NoReturn:
    """Skip the ``tests`` (``"the AI SDK client tests"``) locally; fail them on CI."""
    if os.environ.get("CI"):
        pytest.fail(f"{tests} must run on CI: {reason} ({how})", pytrace=False)
    pytest.skip(f"{reason}: to run {tests}, {how}")


def node_with(js: Path, packages: list[str], *, tests: str, needs: str) -> str:
    """The path of ``node`` once ``js`` has ``packages`` installed (``npm ci`` on first
    use); skips (or fails on CI, see :func:`unavailable`) when Node 18+ and npm are missing.

    ``needs`` names what wants Node 18+ (``"the ai package"``).
    """
    where = js.relative_to(TESTS.parent).as_posix()
    how = f"install Node.js 18+ and npm; {where} is then set up with `npm ci` on first use"
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        unavailable("node and npm are not on PATH", tests=tests, how=how)
    version = subprocess.run([node, "--version"], capture_output=True, text=True).stdout
    if int(version.lstrip("v").split(".")[0]) < 18:
        unavailable(f"Node {version.strip()} is too old ({needs} needs 18+)", tests=tests, how=how)
    installed = js / "node_modules"
    if not all((installed / name / "package.json").exists() for name in packages):
        done = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"],
            cwd=js,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            reason = f"`npm ci` in {where} failed: {done.stderr.strip()[-500:]}"
            unavailable(reason, tests=tests, how=how)
    return node


def read_streams(
    node: str, script: Path, bodies: list[bytes], piece: int, **extra: Any
) -> list[dict[str, Any]]:
    """What ``script`` (run in its folder) reports for each body, fed to the client in
    ``piece``-byte pieces; ``extra`` goes into its JSON request too."""
    request = {"streams": [base64.b64encode(b).decode() for b in bodies], "piece": piece, **extra}
    done = subprocess.run(
        [node, str(script)],
        input=json.dumps(request),
        capture_output=True,
        text=True,
        timeout=120,
        cwd=script.parent,
    )
    assert done.returncode == 0, done.stderr
    results: list[dict[str, Any]] = json.loads(done.stdout)
    return results
