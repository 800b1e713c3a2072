"""The wheel, built as pip builds it: with the C speedups, or pure Python without them.

hatch_build.py compiles src/llmsse/_speedups.c when it can and must never fail the
install when it cannot (no compiler, no headers) or is told not to (LLMSSE_NO_SPEEDUPS).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from _cext import speedups

ROOT = Path(__file__).resolve().parents[1]
SUFFIX = sysconfig.get_config_var("EXT_SUFFIX")


def build_wheel(tmp_path: Path, **env: str) -> tuple[zipfile.ZipFile, str]:
    """The wheel pip builds from this checkout with ``env``, and pip's output."""
    out = tmp_path / "wheel"
    run = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-v", "-w", str(out), str(ROOT)],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    [wheel] = out.glob("llmsse-*.whl")
    return zipfile.ZipFile(wheel), run.stdout + run.stderr


def modules(wheel: zipfile.ZipFile) -> list[str]:
    return sorted(n for n in wheel.namelist() if n.startswith("llmsse/_speedups"))


@pytest.mark.integration
def test_the_wheel_carries_the_compiled_module(tmp_path: Path) -> None:
    speedups()  # a compiler is here (else this skips, or fails on CI)
    wheel, _ = build_wheel(tmp_path)
    # Only this interpreter's build: not the C source, not an editable install's copies.
    assert modules(wheel) == sorted(["llmsse/_speedups.pyi", f"llmsse/_speedups{SUFFIX}"])
    abi = f"cp{sys.version_info.major}{sys.version_info.minor}"
    assert f"-{abi}-{abi}-" in Path(wheel.filename).name  # a platform wheel


@pytest.mark.integration
@pytest.mark.parametrize(
    "env", [{"LLMSSE_NO_SPEEDUPS": "1"}, {"CC": "false"}], ids=["turned-off", "no-compiler"]
)
def test_pure_python_without_them(tmp_path: Path, env: dict[str, str]) -> None:
    wheel, output = build_wheel(tmp_path, **env)
    assert modules(wheel) == ["llmsse/_speedups.pyi"]
    assert Path(wheel.filename).name.endswith("-py3-none-any.whl")
    if "CC" in env:
        assert "C speedups not built" in output


@pytest.mark.integration
def test_an_editable_install_builds_into_src_and_drops_it_when_told(tmp_path: Path) -> None:
    speedups()
    # A copy of what the build reads and a venv of its own: this test must not reinstall
    # the llmsse it runs under.
    tree = tmp_path / "llmsse"
    ignore = shutil.ignore_patterns("*.so", "*.pyd", "__pycache__")
    shutil.copytree(ROOT / "src", tree / "src", ignore=ignore)
    for name in ("pyproject.toml", "hatch_build.py", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, tree / name)
    subprocess.run([sys.executable, "-m", "venv", str(tmp_path / "venv")], check=True)
    python = tmp_path / "venv" / "bin" / "python"
    built = tree / "src" / "llmsse" / f"_speedups{SUFFIX}"

    def install(**env: str) -> None:
        command = [str(python), "-m", "pip", "install", "-q", "--no-deps", "-e", str(tree)]
        run = subprocess.run(
            command, env={**os.environ, **env}, capture_output=True, text=True, timeout=600
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    install()
    assert built.is_file()
    install(LLMSSE_NO_SPEEDUPS="1")
    assert not built.exists()  # not an earlier build imported by a pure-Python install
