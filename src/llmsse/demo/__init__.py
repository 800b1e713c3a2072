"""The ``python -m llmsse demo`` chat page, its offline fake model, and a server per framework.

Nothing here is imported by ``import llmsse``. The page (``static/``) is plain HTML, JS and
CSS shipped as package data; the fake model's replies come from :mod:`llmsse.demo.brain`.
"""

from llmsse.demo.cli import main

__all__ = ["main"]
