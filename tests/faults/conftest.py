"""Fixtures shared with the integration tests."""

from tests.integration.night import night  # noqa: F401 - shared fixture
