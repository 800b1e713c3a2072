"""Fixtures for the test kit's own tests (the kit's public fixtures come from its plugin)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture
def django_settings() -> Iterator[None]:
    """Django configured (once per process) and routed to this folder's kit_django_urls."""
    django = pytest.importorskip("django")
    from django.conf import settings

    if not settings.configured:
        settings.configure(
            DEBUG=True,
            SECRET_KEY="llmsse-tests",
            ALLOWED_HOSTS=["*"],
            ROOT_URLCONF="testing_kit.kit_django_urls",
            INSTALLED_APPS=[],
            MIDDLEWARE=[],
        )
        django.setup()
    from django.test.utils import override_settings

    with override_settings(ROOT_URLCONF="testing_kit.kit_django_urls", ALLOWED_HOSTS=["*"]):
        yield
