import pytest

from accounts.models import Role
from accounts.services import staff_user_set_role
from accounts.tests.factories import AgentFactory, CustomerFactory, SupervisorFactory
from dialogs.services.conversations import conversation_create
from dialogs.tests.browser_support import chromium, uvicorn_server  # noqa: F401 (fixtures)
from tts.models import EmotionPreset


@pytest.fixture
def customer(db):
    user = CustomerFactory()
    user.customer_profile.nickname = "王先生"
    user.customer_profile.save()
    return user


@pytest.fixture
def agent(db):
    # Through the service so the agent is in the "agents" group, as in production.
    user = AgentFactory(first_name="小李")
    return staff_user_set_role(user=user, role=Role.AGENT)


@pytest.fixture
def supervisor(db):
    return staff_user_set_role(user=SupervisorFactory(), role=Role.SUPERVISOR)


@pytest.fixture
def conversation(customer):
    return conversation_create(customer=customer)


@pytest.fixture
def presets(db):
    return {preset.name: preset for preset in EmotionPreset.objects.all()}


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
