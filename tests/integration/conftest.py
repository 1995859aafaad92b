from tests.integration.night import night  # noqa: F401 - shared fixture
