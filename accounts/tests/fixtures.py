"""People, registered once for the whole suite (root conftest.py `pytest_plugins`)."""

import pytest

from accounts.models import Role
from accounts.services import staff_user_set_role
from accounts.tests.factories import AgentFactory, CustomerFactory, SupervisorFactory


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
