# The shared people, presets and conversation fixtures are registered once for the whole suite
# (root conftest.py `pytest_plugins`); the browser fixtures and the business-hours switch are
# dialogs' own.
import pytest

from dialogs.tests.browser_support import (  # noqa: F401 (fixtures)
    chromium,
    reseed_after_flush,
    uvicorn_server,
)


@pytest.fixture(autouse=True)
def _always_open(request):
    """The seeded business hours (9:00-21:00 Shanghai) would make every test that hands a
    conversation to a human depend on the time of day: tests run always open unless they
    build a schedule (see `business_hours`)."""
    if "db" in request.fixturenames or request.node.get_closest_marker("django_db"):
        from dialogs.models import BusinessHours

        request.getfixturevalue("db")
        BusinessHours.objects.all().delete()


@pytest.fixture
def business_hours(db):
    """The seeded schedule: every day 9:00-21:00 local time."""
    import datetime

    from dialogs.models import BusinessHours

    BusinessHours.objects.bulk_create(
        BusinessHours(weekday=day, opens_at=datetime.time(9), closes_at=datetime.time(21))
        for day in range(7)
    )
