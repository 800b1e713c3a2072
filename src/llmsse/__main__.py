"""``python -m llmsse``: the command line (today one command, ``demo``)."""

from __future__ import annotations

import sys


def _main() -> int:
    # Imported here, not at the top: ``import llmsse`` never loads the demo.
    from llmsse.demo.cli import main

    return main()


if __name__ == "__main__":
    sys.exit(_main())
