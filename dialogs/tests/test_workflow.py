"""The workflow services without a browser: handoff, hours, presence, assignment, SLA, CSAT."""

import datetime

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import staff_user_set_role
from accounts.tests.factories import AgentFactory, CustomerFactory
from dialogs.models import (
    BusinessHours,
    Conversation,
    ConversationAction,
    ConversationPriority,
    ConversationStatus,
    CsatResponse,
    HandoffReason,
    Holiday,
    Message,
    Presence,
    SenderKind,
)
from dialogs.payloads import conversation_payload
from dialogs.selectors import workflow as reads
from dialogs.services import workflow
from dialogs.services.conversations import conversation_create
from dialogs.services.workflow import WorkflowError

pytestmark = pytest.mark.django_db

SHANGHAI = datetime.timezone(datetime.timedelta(hours=8))
# A Wednesday, 10:00 and 23:00 in Shanghai.
WED_10 = datetime.datetime(2026, 12, 2, 10, 0, tzinfo=SHANGHAI)
WED_23 = datetime.datetime(2026, 12, 2, 23, 0, tzinfo=SHANGHAI)


@pytest.fixture
def now():
    return timezone.now()


@pytest.fixture
def always_open(db):
    BusinessHours.objects.all().delete()  # (conftest does it too; named for the reader)


@pytest.fixture
def agent2(db):
    return staff_user_set_role(user=AgentFactory(first_name="小王"), role=Role.AGENT)


def _online(*agents, now=None):
    for user in agents:
        workflow.agent_presence_set(user=user, status=Presence.ONLINE, now=now)
        workflow.agent_heartbeat(user=user, now=now)


def _waiting(customer=None, *, priority=ConversationPriority.NORMAL, now=None):
    conversation = conversation_create(customer=customer or CustomerFactory(), priority=priority)
    return workflow.conversation_handoff(
        conversation=conversation, reason=HandoffReason.REQUESTED, now=now
    )


def _actions(conversation) -> list[str]:
    return list(conversation.workflow_events.values_list("action", flat=True))


# --- recognising a request for a human ----------------------------------------------------------


@pytest.mark.parametrize("text", ["转人工", "人工", "人工！", "我要转人工客服", "请帮我找人工"])
def test_it_recognises_a_request_for_a_human(text):
    assert workflow.handoff_requested(text)


@pytest.mark.parametrize("text", ["人工智能是什么", "你好", "请问怎么退款"])
def test_it_does_not_mistake_other_text_for_a_request(text):
    assert not workflow.handoff_requested(text)


# --- business hours -----------------------------------------------------------------------------


def test_hours_are_read_in_shanghai_time(business_hours):
    assert reads.business_hours_open(at=WED_10)
    assert not reads.business_hours_open(at=WED_23)
    # 10:00 Shanghai is 02:00 UTC: the schedule is read in local time.
    assert reads.business_hours_open(at=WED_10.astimezone(datetime.UTC))
    nxt = reads.business_hours_next_open(at=WED_23)
    assert nxt == datetime.datetime(2026, 12, 3, 9, 0, tzinfo=SHANGHAI)


def test_a_holiday_closes_the_day_and_an_empty_schedule_is_always_open(business_hours):
    Holiday.objects.create(date=WED_10.date(), name="测试假日")
    assert not reads.business_hours_open(at=WED_10)
    assert reads.business_hours_next_open(at=WED_10).date() == datetime.date(2026, 12, 3)
    BusinessHours.objects.all().delete()
    assert reads.business_hours_open(at=WED_23)


# --- handoff ------------------------------------------------------------------------------------


def test_handoff_in_hours_queues_acknowledges_with_voice_and_audits(conversation, always_open):
    conversation = workflow.conversation_handoff(
        conversation=conversation,
        reason=HandoffReason.INTENT,
        priority=ConversationPriority.HIGH,
    )
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.priority == ConversationPriority.HIGH
    assert conversation.waiting_since is not None
    ack = Message.objects.get(conversation=conversation)
    assert ack.sender_kind == SenderKind.BOT
    assert ack.canned_phrase.short_code == "handoff"
    assert ack.text == "已为您转接人工客服，请稍候。"
    assert ack.audio_status == "pending"  # voiced after commit
    assert _actions(conversation) == [ConversationAction.HANDOFF]
    # High priority: first response due in 5 minutes (seeded SLA).
    due = conversation.first_response_due_at - conversation.waiting_since
    assert due == datetime.timedelta(minutes=5)
    assert reads.queue_position(conversation) == 1


def test_a_second_handoff_only_raises_the_priority(conversation, always_open):
    workflow.conversation_handoff(conversation=conversation, reason=HandoffReason.UNANSWERED)
    conversation = workflow.conversation_handoff(
        conversation=conversation, reason=HandoffReason.INTENT, priority=ConversationPriority.HIGH
    )
    assert conversation.priority == ConversationPriority.HIGH
    assert Message.objects.filter(conversation=conversation).count() == 1  # one acknowledgement
    assert _actions(conversation) == [ConversationAction.HANDOFF]


def test_out_of_hours_the_customer_is_told_once_and_nobody_is_assigned(
    conversation, agent, business_hours
):
    _online(agent, now=WED_23)
    workflow.conversation_handoff(
        conversation=conversation, reason=HandoffReason.REQUESTED, now=WED_23
    )
    notice = Message.objects.get(conversation=conversation)
    assert notice.canned_phrase.short_code == "offhours"
    assert workflow.queue_assign(now=WED_23) == []
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.assigned_agent is None
    # Sent back to the queue and handed off again the same night: no second notice.
    workflow.conversation_requeue(conversation=conversation, actor=agent, now=WED_23)
    Conversation.objects.filter(pk=conversation.pk).update(status=ConversationStatus.OPEN)
    workflow.conversation_handoff(
        conversation=conversation, reason=HandoffReason.REQUESTED, now=WED_23
    )
    assert Message.objects.filter(conversation=conversation).count() == 1
    # The next shift: the online agent gets it.
    morning = WED_23 + datetime.timedelta(hours=11)
    _online(agent, now=morning)
    assert [c.pk for c in workflow.queue_assign(now=morning)] == [conversation.pk]


# --- presence -----------------------------------------------------------------------------------


def test_presence_follows_heartbeats_and_the_chosen_status(agent, now):
    profile = workflow.agent_profile_get(user=agent)
    assert reads.agent_presence(profile, now=now) == Presence.OFFLINE  # never connected
    profile = workflow.agent_heartbeat(user=agent, now=now)
    assert reads.agent_presence(profile, now=now) == Presence.ONLINE
    later = now + reads.PRESENCE_TIMEOUT + datetime.timedelta(seconds=1)
    assert reads.agent_presence(profile, now=later) == Presence.OFFLINE  # a tab died silently
    profile = workflow.agent_presence_set(user=agent, status=Presence.AWAY, now=now)
    assert reads.agent_presence(profile, now=now) == Presence.AWAY
    profile = workflow.agent_disconnected(user=agent)
    assert reads.agent_presence(profile, now=now) == Presence.OFFLINE  # a closed tab


def test_presence_and_profile_refuse_bad_values(agent):
    with pytest.raises(WorkflowError) as exc:
        workflow.agent_presence_set(user=agent, status="busy")
    assert exc.value.status == 400
    with pytest.raises(WorkflowError):
        workflow.agent_profile_update(user=agent, capacity=-1)
    with pytest.raises(WorkflowError):
        workflow.agent_profile_update(user=agent, display_name="  ")
    profile = workflow.agent_profile_update(user=agent, display_name="客服小李", capacity=3)
    assert (profile.display_name, profile.capacity) == ("客服小李", 3)
    assert agent.__class__.objects.get(pk=agent.pk).display_name == "客服小李"


# --- auto-assignment ----------------------------------------------------------------------------


def test_auto_assignment_goes_to_the_least_loaded_online_agent(agent, agent2, always_open, now):
    _online(agent, agent2, now=now)
    busy = _waiting(now=now)
    workflow.conversation_claim(conversation=busy, agent=agent, now=now)
    conversation = _waiting(now=now)
    assigned = workflow.queue_assign(now=now)
    assert [c.pk for c in assigned] == [conversation.pk]
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent2  # agent already serves one
    assert conversation.status == ConversationStatus.OPEN
    assert ConversationAction.AUTO_ASSIGNED in _actions(conversation)


def test_auto_assignment_respects_capacity_and_serves_priority_then_age(agent, always_open, now):
    workflow.agent_profile_update(user=agent, capacity=2)
    first = _waiting(now=now - datetime.timedelta(minutes=10))
    urgent = _waiting(priority=ConversationPriority.URGENT, now=now)
    last = _waiting(now=now - datetime.timedelta(minutes=5))
    assert workflow.queue_assign(now=now) == []  # nobody online: they wait
    assert [reads.queue_position(c) for c in (urgent, first, last)] == [1, 2, 3]
    _online(agent, now=now)
    assigned = workflow.queue_assign(now=now)
    assert [c.pk for c in assigned] == [urgent.pk, first.pk]
    last.refresh_from_db()
    assert last.status == ConversationStatus.WAITING
    assert reads.queue_position(last) == 1


def test_queue_position_and_unread_come_in_one_query_with_the_same_values(
    always_open, now, django_assert_num_queries
):
    first = _waiting(now=now - datetime.timedelta(minutes=10))
    urgent = _waiting(priority=ConversationPriority.URGENT, now=now)
    last = _waiting(now=now - datetime.timedelta(minutes=5))
    for i in range(3):
        Message.objects.create(conversation=last, sender_kind=SenderKind.CUSTOMER, text=f"在吗{i}")
    Message.objects.create(conversation=last, sender_kind=SenderKind.BOT, text="请稍候")
    last.agent_read_at = Message.objects.filter(conversation=last).order_by("pk")[0].created_at
    for conversation in (urgent, first, last):
        expected = (
            reads.queue_position(conversation),
            reads.conversation_unread_count(conversation),
        )
        with django_assert_num_queries(1):
            got = reads.conversation_queue_position_and_unread(conversation)
        assert got == expected
    position, unread = reads.conversation_queue_position_and_unread(last)
    assert position == 3 and 0 < unread < Message.objects.filter(conversation=last).count()


def test_an_agent_coming_online_is_handed_the_queue(
    agent, always_open, now, django_capture_on_commit_callbacks
):
    conversation = _waiting(now=now)
    with django_capture_on_commit_callbacks(execute=True):
        workflow.agent_presence_set(user=agent, status=Presence.ONLINE, now=timezone.now())
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent


# --- manual moves and their refusals ------------------------------------------------------------


def test_claim_transfer_requeue_resolve_reopen_are_audited(agent, agent2, supervisor, now):
    conversation = _waiting(now=now)
    conversation = workflow.conversation_claim(conversation=conversation, agent=agent)
    assert conversation.assigned_agent == agent
    conversation = workflow.conversation_assign(
        conversation=conversation, agent=agent2, actor=agent, note="退款问题"
    )
    assert conversation.assigned_agent == agent2
    conversation = workflow.conversation_requeue(conversation=conversation, actor=agent2)
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.assigned_agent is None
    conversation = workflow.conversation_claim(conversation=conversation, agent=agent)
    conversation = workflow.conversation_resolve(conversation=conversation, actor=agent)
    assert conversation.status == ConversationStatus.RESOLVED
    conversation = workflow.conversation_reopen(conversation=conversation, actor=supervisor)
    assert conversation.status == ConversationStatus.OPEN
    assert conversation.assigned_agent == agent  # back with the agent who had it
    assert _actions(conversation) == [
        ConversationAction.HANDOFF,
        ConversationAction.CLAIMED,
        ConversationAction.TRANSFERRED,
        ConversationAction.REQUEUED,
        ConversationAction.CLAIMED,
        ConversationAction.RESOLVED,
        ConversationAction.REOPENED,
    ]
    transfer = conversation.workflow_events.get(action=ConversationAction.TRANSFERRED)
    assert (transfer.actor, transfer.from_agent, transfer.to_agent) == (agent, agent, agent2)
    assert transfer.note == "退款问题"


def _refused(call, code: str, status: int):
    with pytest.raises(WorkflowError) as exc:
        call()
    assert (exc.value.code, exc.value.status) == (code, status)


def test_bad_moves_are_refused_and_change_nothing(agent, agent2, customer, now):
    conversation = _waiting(now=now)
    workflow.conversation_claim(conversation=conversation, agent=agent)
    _refused(
        lambda: workflow.conversation_claim(conversation=conversation, agent=agent2),
        "already_assigned",
        409,
    )
    _refused(
        lambda: workflow.conversation_resolve(conversation=conversation, actor=agent2),
        "not_your_conversation",
        403,
    )
    _refused(
        lambda: workflow.conversation_assign(
            conversation=conversation, agent=customer, actor=agent
        ),
        "not_agent",
        400,
    )
    workflow.agent_profile_update(user=agent2, capacity=0)
    _refused(
        lambda: workflow.conversation_assign(conversation=conversation, agent=agent2, actor=agent),
        "agent_at_capacity",
        409,
    )
    conversation.refresh_from_db()
    assert conversation.assigned_agent == agent
    workflow.conversation_resolve(conversation=conversation, actor=agent)
    events = conversation.workflow_events.count()
    _refused(
        lambda: workflow.conversation_resolve(conversation=conversation, actor=agent),
        "already_resolved",
        409,
    )
    _refused(
        lambda: workflow.conversation_assign(conversation=conversation, agent=agent2, actor=agent),
        "already_resolved",
        409,
    )
    assert conversation.workflow_events.count() == events


# --- SLA ----------------------------------------------------------------------------------------


def test_sla_timers_run_and_stop(agent, customer, always_open, now):
    conversation = _waiting(customer, now=now - datetime.timedelta(minutes=11))
    assert reads.conversation_sla(conversation, now=now)["overdue"]  # normal: 10 minutes
    assert not reads.conversation_sla(conversation, now=now - datetime.timedelta(minutes=2))[
        "overdue"
    ]
    workflow.conversation_claim(conversation=conversation, agent=agent)
    workflow.agent_replied(conversation=conversation, agent=agent, now=now)
    conversation.refresh_from_db()
    assert conversation.first_responded_at == now
    assert not reads.conversation_sla(conversation, now=now)["overdue"]
    message = Message.objects.create(
        conversation=conversation, sender_kind=SenderKind.CUSTOMER, author=customer, text="还在吗"
    )
    assert workflow.customer_message_received(conversation=conversation, message=message, now=now)
    conversation.refresh_from_db()
    assert conversation.next_response_due_at == now + datetime.timedelta(minutes=15)
    later = now + datetime.timedelta(minutes=16)
    assert reads.conversation_sla(conversation, now=later)["overdue"]
    workflow.agent_replied(conversation=conversation, agent=agent, now=later)
    conversation.refresh_from_db()
    assert conversation.next_response_due_at is None


# --- CSAT ---------------------------------------------------------------------------------------


def test_csat_once_after_resolve_within_range(agent, customer, now):
    conversation = _waiting(customer, now=now)
    workflow.conversation_claim(conversation=conversation, agent=agent)

    def rate(rating, comment=""):
        return workflow.csat_submit(
            conversation=conversation, customer=customer, rating=rating, comment=comment
        )

    _refused(lambda: rate(5), "not_resolved", 409)
    workflow.conversation_resolve(conversation=conversation, actor=agent)
    _refused(lambda: rate(0), "invalid", 400)
    _refused(lambda: rate(6), "invalid", 400)
    _refused(
        lambda: workflow.csat_submit(
            conversation=conversation, customer=CustomerFactory(), rating=5
        ),
        "not_found",
        404,
    )
    assert not CsatResponse.objects.exists()
    csat = rate(4, "  很耐心  ")
    assert (csat.rating, csat.comment, csat.agent) == (4, "很耐心", agent)
    _refused(lambda: rate(5), "already_rated", 409)
    assert CsatResponse.objects.get().rating == 4
    payload = conversation_payload(Conversation.objects.get(pk=conversation.pk))
    assert payload["csat"]["rating"] == 4
