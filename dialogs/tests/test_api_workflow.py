"""The workflow over HTTP: 转人工, the queue, claim/assign/transfer/resolve/reopen, CSAT, the
customer panel, agents and presence, phrases — and every refusal as a clear 4xx envelope."""

import pytest
from rest_framework.test import APIClient

from accounts.models import Role
from accounts.services import staff_user_set_role, tokens_for_user
from accounts.tests.factories import AgentFactory, CustomerFactory
from dialogs.models import (
    Conversation,
    ConversationAction,
    ConversationPriority,
    ConversationStatus,
    CsatResponse,
    Presence,
    SenderKind,
)
from dialogs.services import workflow
from dialogs.services.conversations import conversation_create

pytestmark = pytest.mark.django_db


def _client(user) -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=user)['access']}")
    return client


@pytest.fixture
def as_customer(customer):
    return _client(customer)


@pytest.fixture
def as_agent(agent):
    return _client(agent)


@pytest.fixture
def agent2(db):
    return staff_user_set_role(user=AgentFactory(first_name="小王"), role=Role.AGENT)


def conv_url(conversation_id: int, action: str = "") -> str:
    return f"/api/conversations/{conversation_id}/{action + '/' if action else ''}"


def agent_url(conversation_id: int, action: str = "") -> str:
    return f"/api/agent/conversations/{conversation_id}/{action + '/' if action else ''}"


def _error(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]
    return body["error"]


# --- the customer's side ------------------------------------------------------------------------


def test_a_complaint_is_acknowledged_queued_high_and_auto_assigned(
    as_customer, as_agent, agent, conversation, django_capture_on_commit_callbacks
):
    workflow.agent_profile_update(user=agent, display_name="客服小李")
    workflow.agent_heartbeat(user=agent)
    with django_capture_on_commit_callbacks(execute=True):
        posted = as_customer.post(
            conv_url(conversation.pk, "messages"), {"text": "我要投诉，太差了"}, format="json"
        )
    assert posted.status_code == 201
    ack = posted.json()["bot_reply"]
    assert ack["text"] == "已为您转接人工客服，请稍候。"
    detail = as_customer.get(conv_url(conversation.pk)).json()
    assert detail["priority"] == ConversationPriority.HIGH
    assert detail["status"] == ConversationStatus.OPEN  # auto-assigned at once
    assert detail["assigned_agent"] == {"id": agent.pk, "display_name": "客服小李"}
    assert agent.username not in posted.content.decode() + str(detail)
    assert detail["handoff_reason"] == "intent"
    assert detail["service"]["open_now"] is True
    queue = as_agent.get("/api/agent/conversations/", {"view": "mine"}).json()["results"]
    assert [row["id"] for row in queue] == [conversation.pk]
    assert queue[0]["unread_count"] == 1
    assert queue[0]["last_message_text"] == "已为您转接人工客服，请稍候。"


def test_the_customer_asks_for_a_human_by_word_or_button(as_customer, customer):
    words = conversation_create(customer=customer)
    as_customer.post(conv_url(words.pk, "messages"), {"text": "转人工"}, format="json")
    words.refresh_from_db()
    assert words.status == ConversationStatus.WAITING
    assert words.handoff_reason == "requested"
    other = conversation_create(customer=CustomerFactory())
    waiting_first = workflow.conversation_handoff(conversation=other, reason="requested")
    button = conversation_create(customer=customer)
    response = as_customer.post(conv_url(button.pk, "handoff"))
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == ConversationStatus.WAITING
    assert body["queue_position"] == 3  # behind the two waiting longer
    assert waiting_first.status == ConversationStatus.WAITING
    again = as_customer.post(conv_url(button.pk, "handoff")).json()
    assert again["waiting_since"] == body["waiting_since"]  # idempotent
    assert button.messages.filter(sender_kind=SenderKind.BOT).count() == 1


def test_a_customer_cannot_touch_someone_elses_or_an_unknown_conversation(as_customer):
    theirs = conversation_create(customer=CustomerFactory())
    for action, body in (("handoff", None), ("csat", {"rating": 5})):
        _error(as_customer.post(conv_url(theirs.pk, action), body, format="json"), 404, "not_found")
        _error(as_customer.post(conv_url(10**9, action), body, format="json"), 404, "not_found")
    theirs.refresh_from_db()
    assert theirs.status == ConversationStatus.OPEN
    assert not theirs.workflow_events.exists()


def test_csat_after_resolve_once_and_in_range(
    as_customer, as_agent, agent, conversation, django_capture_on_commit_callbacks
):
    _error(
        as_customer.post(conv_url(conversation.pk, "csat"), {"rating": 5}, format="json"),
        409,
        "not_resolved",
    )
    as_agent.post(agent_url(conversation.pk, "claim"))
    assert as_agent.post(agent_url(conversation.pk, "resolve")).status_code == 200
    for bad in (
        {"rating": 0},
        {"rating": 6},
        {"rating": "五"},
        {},
        {"rating": 3, "comment": "x" * 501},
    ):
        error = _error(
            as_customer.post(conv_url(conversation.pk, "csat"), bad, format="json"), 400, "invalid"
        )
        assert error["fields"]
    assert not CsatResponse.objects.exists()
    created = as_customer.post(
        conv_url(conversation.pk, "csat"), {"rating": 5, "comment": "很耐心"}, format="json"
    )
    assert created.status_code == 201
    assert created.json()["rating"] == 5
    _error(
        as_customer.post(conv_url(conversation.pk, "csat"), {"rating": 1}, format="json"),
        409,
        "already_rated",
    )
    assert CsatResponse.objects.get().rating == 5
    assert CsatResponse.objects.get().agent == agent
    assert as_customer.get(conv_url(conversation.pk)).json()["csat"]["rating"] == 5


# --- the agent's side ---------------------------------------------------------------------------


def test_claim_transfer_requeue_resolve_reopen_over_http(
    as_agent, agent, agent2, supervisor, conversation
):
    workflow.conversation_handoff(conversation=conversation, reason="requested")
    claimed = as_agent.post(agent_url(conversation.pk, "claim"))
    assert claimed.status_code == 200
    assert claimed.json()["assigned_agent"]["id"] == agent.pk
    moved = as_agent.post(
        agent_url(conversation.pk, "transfer"), {"agent_id": agent2.pk, "note": "退款"}, "json"
    )
    assert moved.json()["assigned_agent"]["display_name"] == agent2.display_name
    as_agent2 = _client(agent2)
    back = as_agent2.post(agent_url(conversation.pk, "transfer"), {"agent_id": None}, "json")
    assert back.json()["status"] == ConversationStatus.WAITING
    assert back.json()["assigned_agent"] is None
    as_agent2.post(agent_url(conversation.pk, "claim"))
    assert as_agent2.post(agent_url(conversation.pk, "resolve")).json()["status"] == "resolved"
    reopened = _client(supervisor).post(agent_url(conversation.pk, "reopen"))
    assert reopened.json()["status"] == ConversationStatus.OPEN
    assert list(conversation.workflow_events.values_list("action", flat=True)) == [
        ConversationAction.HANDOFF,
        ConversationAction.CLAIMED,
        ConversationAction.TRANSFERRED,
        ConversationAction.REQUEUED,
        ConversationAction.CLAIMED,
        ConversationAction.RESOLVED,
        ConversationAction.REOPENED,
    ]


def test_bad_agent_moves_are_clear_4xx_and_change_nothing(
    as_agent, agent, agent2, customer, conversation
):
    _error(as_agent.post(agent_url(10**9, "claim")), 404, "not_found")
    as_agent.post(agent_url(conversation.pk, "claim"))
    events = conversation.workflow_events.count()
    as_agent2 = _client(agent2)
    _error(as_agent2.post(agent_url(conversation.pk, "claim")), 409, "already_assigned")
    _error(as_agent2.post(agent_url(conversation.pk, "resolve")), 403, "not_your_conversation")
    _error(
        as_agent2.post(agent_url(conversation.pk, "reply"), {"text": "我来"}, format="json"),
        403,
        "not_your_conversation",
    )
    error = _error(
        as_agent.post(agent_url(conversation.pk, "assign"), {"agent_id": customer.pk}, "json"),
        400,
        "invalid",
    )
    assert "agent_id" in error["fields"]
    workflow.agent_profile_update(user=agent2, capacity=0)
    _error(
        as_agent.post(agent_url(conversation.pk, "transfer"), {"agent_id": agent2.pk}, "json"),
        409,
        "agent_at_capacity",
    )
    _error(as_agent.post(agent_url(conversation.pk, "transfer"), {}, "json"), 400, "invalid")
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent
    assert conversation.workflow_events.count() == events
    assert not conversation.messages.filter(author=agent2).exists()
    as_agent.post(agent_url(conversation.pk, "resolve"))
    _error(as_agent.post(agent_url(conversation.pk, "resolve")), 409, "already_resolved")
    _error(as_agent.post(agent_url(conversation.pk, "claim")), 409, "already_resolved")
    assert conversation.workflow_events.filter(action="resolved").count() == 1


def test_the_queue_lists_waiting_first_with_filters_and_unread_counts(as_agent, agent):
    served = conversation_create(customer=CustomerFactory())
    workflow.conversation_handoff(conversation=served, reason="requested")
    workflow.conversation_claim(conversation=served, agent=agent)
    normal = workflow.conversation_handoff(
        conversation=conversation_create(customer=CustomerFactory()), reason="unanswered"
    )
    high = workflow.conversation_handoff(
        conversation=conversation_create(customer=CustomerFactory()),
        reason="intent",
        priority=ConversationPriority.HIGH,
    )

    def ids(**params):
        body = as_agent.get("/api/agent/conversations/", params).json()
        return [row["id"] for row in body["results"]]

    assert ids() == [high.pk, normal.pk, served.pk]
    assert ids(view="unassigned") == [high.pk, normal.pk]
    assert ids(view="mine") == [served.pk]
    assert ids(assigned="me") == [served.pk]
    assert ids(status="waiting", priority=ConversationPriority.HIGH) == [high.pk]
    _error(as_agent.get("/api/agent/conversations/", {"view": "theirs"}), 400, "invalid")
    row = as_agent.get(agent_url(high.pk)).json()
    assert row["queue_position"] == 1 and row["sla"]["overdue"] is False
    assert row["sla"]["first_response_due_at"]
    Conversation.objects.filter(pk=served.pk).update(agent_read_at=None)
    read = as_agent.post(agent_url(served.pk, "read")).json()
    assert read["unread_count"] == 0


def test_the_customer_panel(as_agent, customer, conversation, agent):
    earlier = conversation_create(customer=customer)
    workflow.conversation_handoff(conversation=earlier, reason="requested")
    workflow.conversation_claim(conversation=earlier, agent=agent)
    workflow.conversation_resolve(conversation=earlier, actor=agent)
    workflow.csat_submit(conversation=earlier, customer=customer, rating=4, comment="还行")
    as_customer = _client(customer)
    as_customer.post(conv_url(conversation.pk, "messages"), {"text": "我想退款"}, format="json")
    panel = as_agent.get(agent_url(conversation.pk, "customer")).json()
    assert panel["profile"]["nickname"] == "王先生"
    assert panel["profile"]["conversations"] == 2
    assert [c["id"] for c in panel["earlier_conversations"]] == [earlier.pk]
    assert panel["earlier_conversations"][0]["csat_rating"] == 4
    assert {"name": "refund", "label": "退款", "count": 1} in panel["intents_seen"]
    assert panel["csat_given"][0]["rating"] == 4
    assert customer.customer_profile.openid not in str(panel)
    _error(as_customer.get(agent_url(conversation.pk, "customer")), 403, "permission_denied")


def test_agents_me_presence_and_display_name(as_agent, agent, agent2):
    me = as_agent.get("/api/agent/me/").json()
    assert me["presence"] == Presence.OFFLINE and me["capacity"] == 5
    changed = as_agent.patch(
        "/api/agent/me/", {"display_name": "客服小李", "capacity": 3}, format="json"
    ).json()
    assert (changed["display_name"], changed["capacity"]) == ("客服小李", 3)
    _error(as_agent.patch("/api/agent/me/", {"capacity": 99}, format="json"), 400, "invalid")
    _error(as_agent.post("/api/agent/me/presence/", {"status": "busy"}, "json"), 400, "invalid")
    away = as_agent.post("/api/agent/me/presence/", {"status": "away"}, format="json").json()
    assert away["presence"] == Presence.AWAY
    agents = as_agent.get("/api/agent/agents/").json()["results"]
    by_id = {row["id"]: row for row in agents}
    assert by_id[agent.pk]["display_name"] == "客服小李"
    assert by_id[agent2.pk]["presence"] == Presence.OFFLINE
    assert {"load", "capacity"} <= set(by_id[agent2.pk])


def test_phrases_for_the_console(as_agent):
    body = as_agent.get("/api/agent/phrases/", {"q": "退款"}).json()
    codes = [row["short_code"] for row in body["results"]]
    assert "refund" in codes
    row = body["results"][codes.index("refund")]
    assert row["preview_url"] == f"/api/agent/phrases/{row['id']}/preview/"
    _error(as_agent.get(row["preview_url"], {"emotion": "nope"}), 400, "invalid")
    _error(as_agent.get("/api/agent/phrases/999999/preview/"), 404, "not_found")


def test_the_schema_documents_the_workflow(api_client):
    schema = api_client.get("/api/schema/", {"format": "json"}).json()
    paths = schema["paths"]
    for path in (
        "/api/conversations/{conversation_id}/handoff/",
        "/api/conversations/{conversation_id}/csat/",
        "/api/agent/conversations/{conversation_id}/claim/",
        "/api/agent/conversations/{conversation_id}/transfer/",
        "/api/agent/conversations/{conversation_id}/reopen/",
        "/api/agent/conversations/{conversation_id}/customer/",
        "/api/agent/agents/",
        "/api/agent/me/",
        "/api/agent/me/presence/",
        "/api/agent/phrases/",
    ):
        assert path in paths, path
    conversation = schema["components"]["schemas"]["Conversation"]["properties"]
    assert {"queue_position", "assigned_agent", "sla", "csat", "service"} <= set(conversation)


def test_scroll_back_with_before(as_customer, customer, agent, conversation):
    conversation.assigned_agent = agent  # served: no acknowledgements in between
    conversation.save()
    from dialogs.services.messages import customer_message_create

    ids = [
        customer_message_create(conversation=conversation, author=customer, text=f"消息{i}").pk
        for i in range(5)
    ]
    url = conv_url(conversation.pk, "messages")
    page = as_customer.get(url, {"before": ids[4], "page_size": 2}).json()
    assert [m["id"] for m in page["results"]] == ids[2:4]  # just before, oldest first
    assert page["has_more"] is True
    older = as_customer.get(url, {"before": ids[2], "page_size": 2}).json()
    assert [m["id"] for m in older["results"]] == ids[:2]
    assert older["has_more"] is False
    first_load = as_customer.get(url, {"before": ids[4] + 1, "page_size": 30}).json()
    assert [m["id"] for m in first_load["results"]] == ids
    _error(as_customer.get(url, {"before": "x"}), 400, "invalid")
    _error(as_customer.get(url, {"before": -1}), 400, "invalid")
    assert as_customer.get(url).json()["has_more"] is False
