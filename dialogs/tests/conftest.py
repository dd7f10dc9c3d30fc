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
