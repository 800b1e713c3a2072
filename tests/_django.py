"""The settings of the tests' Django projects (tests/integration/apps/django_app.py,
tests/resumable/_django_app.py): each is one module holding its views and URLs."""

from __future__ import annotations

from typing import Any

import django
from django.conf import settings


def project_settings(urlconf: str) -> dict[str, Any]:
    """The settings of the project whose URLs are module ``urlconf``; Django is configured
    with them when nothing else configured it first.

    In a process where other tests configured Django first, apply them with
    ``override_settings(**settings)`` and build the handlers inside (they load the
    middleware when they are made).
    """
    project: dict[str, Any] = {
        "DEBUG": False,
        "ALLOWED_HOSTS": ["*"],
        "ROOT_URLCONF": urlconf,
        # As in many real projects: it must leave the stream alone.
        "MIDDLEWARE": ["django.middleware.gzip.GZipMiddleware"],
    }
    if not settings.configured:
        settings.configure(SECRET_KEY="llmsse-tests", INSTALLED_APPS=[], DATABASES={}, **project)
        django.setup()
    return project
