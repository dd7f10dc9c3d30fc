"""Conversations, registered once for the whole suite."""

import pytest

from dialogs.services.conversations import conversation_create


@pytest.fixture
def conversation(customer):
    return conversation_create(customer=customer)
