"""Build hook: compiles llmsse's optional C speedups (src/llmsse/_speedups.c).

llmsse is complete without them: when there is no C compiler (or no Python headers),
or ``LLMSSE_NO_SPEEDUPS`` is set, the wheel is pure Python and the same code paths run
in Python. setuptools only drives the compiler (it knows every platform's flags).
"""

from __future__ import annotations

import os
import platform
import shutil
import sysconfig
import tempfile
from typing import Any

from hatchling.builders.hooks.plugin.interface import BuildHookInterface

EXTENSION = "llmsse._speedups"
SOURCE = os.path.join("src", "llmsse", "_speedups.c")


def compile_speedups(root: str, build_dir: str) -> str:
    """Compile the extension into ``build_dir``; its path. Raises when it cannot."""
    from setuptools import Distribution, Extension
    from setuptools.command.build_ext import build_ext

    extension = Extension(EXTENSION, [os.path.join(root, SOURCE)])
    command = build_ext(Distribution({"name": "llmsse", "ext_modules": [extension]}))
    command.build_lib = build_dir
    command.build_temp = os.path.join(build_dir, "temp")
    command.ensure_finalized()
    command.run()
    return str(command.get_ext_fullpath(EXTENSION))


def why_not_built() -> str | None:
    """Why the speedups are not even tried here, or ``None``."""
    if os.environ.get("LLMSSE_NO_SPEEDUPS"):
        return "LLMSSE_NO_SPEEDUPS is set"
    if platform.python_implementation() != "CPython":
        return "not CPython"  # PyPy's JIT does better with the Python code
    if sysconfig.get_config_var("Py_GIL_DISABLED"):
        return "a free-threaded Python"  # the module relies on the GIL
    return None


class SpeedupsBuildHook(BuildHookInterface):  # type: ignore[type-arg]
    PLUGIN_NAME = "custom"

    def initialize(self, version: str, build_data: dict[str, Any]) -> None:
        if self.target_name != "wheel":
            return
        skip = why_not_built()
        if skip:
            self.app.display_info(f"llmsse: {skip}, building pure Python")
            self._drop_editable_copy(version)
            return
        build_dir = tempfile.mkdtemp(prefix="llmsse-speedups-")
        try:
            built = compile_speedups(self.root, build_dir)
        except Exception as exc:  # no compiler, no headers: pure Python it is
            self.app.display_warning(
                f"llmsse: C speedups not built ({type(exc).__name__}: {exc}); "
                "llmsse works the same in pure Python, only slower per chunk"
            )
            shutil.rmtree(build_dir, ignore_errors=True)
            self._drop_editable_copy(version)
            return
        name = os.path.basename(built)
        if version == "editable":
            # An editable install imports from src/: put the module there (through a
            # rename, so that a process that has the old one loaded keeps it intact).
            target = os.path.join(self.root, "src", "llmsse", name)
            try:
                shutil.copyfile(built, target + ".tmp")
                os.replace(target + ".tmp", target)
            except OSError as exc:  # Windows: a running Python has the old one open
                self.app.display_warning(f"llmsse: C speedups not replaced in src/ ({exc})")
                return
            finally:
                shutil.rmtree(build_dir, ignore_errors=True)
        else:
            build_data["force_include"][built] = f"llmsse/{name}"
            self._build_dir = build_dir
        build_data["pure_python"] = False
        build_data["infer_tag"] = True

    def _drop_editable_copy(self, version: str) -> None:
        # An editable install that builds pure Python must not import an earlier build
        # for this interpreter from src/.
        if version != "editable":
            return
        suffix = sysconfig.get_config_var("EXT_SUFFIX") or ".so"
        try:
            os.remove(os.path.join(self.root, "src", "llmsse", "_speedups" + suffix))
        except FileNotFoundError:
            pass
        except OSError as exc:
            self.app.display_warning(f"llmsse: an earlier build stays in src/ ({exc})")

    def finalize(self, version: str, build_data: dict[str, Any], artifact_path: str) -> None:
        build_dir = getattr(self, "_build_dir", None)
        if build_dir is not None:
            shutil.rmtree(build_dir, ignore_errors=True)
