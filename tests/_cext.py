"""llmsse's optional C speedups (src/llmsse/_speedups.c), for the tests that run them."""

from __future__ import annotations

import os
import platform
import shlex
import shutil
import sysconfig
from types import ModuleType

import pytest

SPEEDUPS: ModuleType | None
try:
    from llmsse import _speedups as SPEEDUPS
except ImportError:  # not built: no C compiler when llmsse was installed
    SPEEDUPS = None


def can_build() -> bool:
    """Whether an install here would have built them (a C compiler, not turned off)."""
    # As hatch_build.why_not_built() decides (it needs hatchling, not installed here).
    if os.environ.get("LLMSSE_NO_SPEEDUPS") or sysconfig.get_config_var("Py_GIL_DISABLED"):
        return False
    if platform.python_implementation() != "CPython":
        return False
    compiler = shlex.split(sysconfig.get_config_var("CC") or "")
    return bool(compiler) and shutil.which(compiler[0]) is not None


def speedups() -> ModuleType:
    """The C module; a test that needs it fails on CI or where it should have been
    built, and skips where it could not be (no C compiler)."""
    if SPEEDUPS is not None:
        return SPEEDUPS
    if os.environ.get("CI") or can_build():
        pytest.fail("llmsse._speedups is not built: reinstall llmsse (pip install -e .)")
    pytest.skip(
        "llmsse's C speedups are not built (no C compiler or LLMSSE_NO_SPEEDUPS set): "
        "install a C compiler (e.g. apt-get install gcc) and reinstall llmsse to test them"
    )
