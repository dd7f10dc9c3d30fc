"""The agents' integration API: list with filters, assign, resolve, reply."""

import pytest

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory
from dialogs.models import AudioStatus, ConversationPriority, ConversationStatus, SenderKind
from dialogs.services.conversations import conversation_create
from dialogs.services.messages import customer_message_create

pytestmark = pytest.mark.django_db

LIST = "/api/agent/conversations/"


def action_url(conversation_id: int, action: str) -> str:
    return f"/api/agent/conversations/{conversation_id}/{action}/"


@pytest.fixture
def as_agent(api_client, agent):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=agent)['access']}")
    return api_client


def test_customers_are_refused_with_403(api_client, customer, conversation):
    api_client.force_authenticate(customer)
    assert api_client.get(LIST).status_code == 403
    for action, body in (("assign", {}), ("resolve", {}), ("reply", {"text": "x"})):
        response = api_client.post(action_url(conversation.pk, action), body, format="json")
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "permission_denied"
    assert not conversation.messages.exists()


def test_a_session_login_works_too(client, agent, conversation):
    client.force_login(agent)
    response = client.get(LIST)
    assert response.status_code == 200
    assert conversation.pk in [c["id"] for c in response.json()["results"]]


def test_the_list_filters_by_status_assignment_and_priority(as_agent, agent, supervisor):
    mine = conversation_create(customer=CustomerFactory(), priority=ConversationPriority.HIGH)
    mine.assigned_agent = agent
    mine.save()
    theirs = conversation_create(customer=CustomerFactory())
    theirs.assigned_agent = supervisor
    theirs.save()
    unassigned = conversation_create(customer=CustomerFactory())
    resolved = conversation_create(customer=CustomerFactory())
    resolved.status = ConversationStatus.RESOLVED
    resolved.save()

    def ids(**params):
        response = as_agent.get(LIST, params)
        assert response.status_code == 200, response.json()
        return {c["id"] for c in response.json()["results"]}

    assert ids() == {mine.pk, theirs.pk, unassigned.pk}  # resolved ones only on request
    assert ids(status="resolved") == {resolved.pk}
    assert ids(assigned="me") == {mine.pk}
    assert ids(assigned="none") == {unassigned.pk}
    assert ids(priority=ConversationPriority.HIGH) == {mine.pk}
    bad = as_agent.get(LIST, {"assigned": "someone"})
    assert bad.status_code == 400
    assert "assigned" in bad.json()["error"]["fields"]


def test_assign_defaults_to_the_caller(as_agent, agent, conversation):
    response = as_agent.post(action_url(conversation.pk, "assign"), {}, format="json")
    assert response.status_code == 200
    assert response.json()["assigned_agent"] == {"id": agent.pk, "display_name": agent.display_name}
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent


def test_assign_to_another_agent_but_never_to_a_customer(
    as_agent, supervisor, customer, conversation
):
    refused = as_agent.post(
        action_url(conversation.pk, "assign"), {"agent_id": customer.pk}, format="json"
    )
    assert refused.status_code == 400
    assert "agent_id" in refused.json()["error"]["fields"]
    missing = as_agent.post(
        action_url(conversation.pk, "assign"), {"agent_id": 10**9}, format="json"
    )
    assert missing.status_code == 400
    conversation.refresh_from_db()
    assert conversation.assigned_agent is None  # nothing changed
    ok = as_agent.post(
        action_url(conversation.pk, "assign"), {"agent_id": supervisor.pk}, format="json"
    )
    assert ok.status_code == 200
    conversation.refresh_from_db()
    assert conversation.assigned_agent == supervisor


def test_resolve(as_agent, conversation):
    response = as_agent.post(action_url(conversation.pk, "resolve"), format="json")
    assert response.status_code == 200
    assert response.json()["status"] == ConversationStatus.RESOLVED
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.RESOLVED


def test_an_unknown_conversation_is_404(as_agent):
    response = as_agent.post(action_url(10**9, "resolve"), format="json")
    assert response.status_code == 404


def test_reply_with_text_follows_the_emotion_policy(as_agent, agent, customer, conversation):
    customer_message_create(conversation=conversation, author=customer, text="太差了，我要投诉")
    response = as_agent.post(
        action_url(conversation.pk, "reply"), {"text": "非常抱歉，马上为您处理。"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["sender_kind"] == SenderKind.AGENT
    assert body["author"] == agent.display_name
    assert body["audio"]["status"] == AudioStatus.PENDING
    assert body["audio"]["emotion"]["name"] == "calm"  # complaint -> calm


def test_reply_with_a_short_code_and_an_emotion_override(as_agent, conversation, customer):
    response = as_agent.post(
        action_url(conversation.pk, "reply"),
        {"short_code": "greet", "emotion": "happy"},
        format="json",
    )
    assert response.status_code == 201
    body = response.json()
    # Variables are filled in from the customer's profile and the replying agent.
    assert (
        body["text"]
        == f"{customer.customer_profile.nickname}您好，我是客服小李，请问有什么可以帮您？"
    )
    assert body["audio"]["emotion"]["name"] == "happy"
    assert conversation.messages.get(pk=body["id"]).emotion_overridden is True


@pytest.mark.parametrize(
    "payload, field",
    [
        ({}, None),
        ({"text": "好的", "short_code": "hello"}, None),
        ({"short_code": "no-such-phrase"}, "short_code"),
        ({"text": "好的", "emotion": "furious"}, "emotion"),
    ],
)
def test_reply_rejects_bad_input(as_agent, conversation, payload, field):
    response = as_agent.post(action_url(conversation.pk, "reply"), payload, format="json")
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid"
    if field:
        assert field in error["fields"]
    assert not conversation.messages.exists()
