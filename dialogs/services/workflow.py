"""Writes of the customer-service workflow: handoff, the queue, assignment, presence, business
hours, SLA timers and CSAT.

Invariants: a `waiting` conversation has no agent; a conversation with an agent is `open` or
`pending`; an agent's load is the number of open/pending conversations assigned to them.
Every staff move is written to `ConversationEvent` (the audit trail). Events leave after commit.
"""

import datetime
import logging
import re

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User

from ..events import console_event_publish, conversation_event_publish
from ..models import (
    MAX_AGENT_CAPACITY,
    AgentProfile,
    Conversation,
    ConversationAction,
    ConversationEvent,
    ConversationStatus,
    CsatResponse,
    HandoffReason,
    Intent,
    Message,
    Presence,
)
from ..payloads import conversation_payload, message_payload
from ..selectors import workflow as reads
from ..selectors.phrases import phrase_get_by_code

logger = logging.getLogger(__name__)

HANDOFF_PHRASE_CODE = "handoff"
OUT_OF_HOURS_PHRASE_CODE = "offhours"
SERVED_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)
DISPLAY_NAME_MAX = 32
CSAT_COMMENT_MAX = 500
# How many waiting conversations one assignment round looks at: bounds the work of a request.
ASSIGN_BATCH = 50

# "转人工" and friends: a message that is only one of these, or contains one of the longer ones.
_HANDOFF_EXACT = {"人工", "转人工", "人工客服", "找人工", "真人", "客服", "转客服", "人工服务"}
_HANDOFF_CONTAINS = ("转人工", "人工客服", "找人工", "转接人工", "人工服务", "真人客服")
_PUNCTUATION = re.compile(r"[\s\W_]+", re.UNICODE)


class WorkflowError(Exception):
    """A refused workflow move. `status` is the HTTP status the API answers with (400 bad
    input, 403 not yours, 409 the conversation is not in a state that allows it)."""

    def __init__(self, code: str, message: str, *, status: int = 409, field: str | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field


def handoff_requested(text: str) -> bool:
    folded = _PUNCTUATION.sub("", text or "")
    return folded in _HANDOFF_EXACT or any(word in folded for word in _HANDOFF_CONTAINS)


# --- audit and events -------------------------------------------------------------------------


def _audit(
    conversation: Conversation,
    action: str,
    *,
    actor: User | None = None,
    from_agent: User | None = None,
    to_agent: User | None = None,
    note: str = "",
) -> ConversationEvent:
    return ConversationEvent.objects.create(
        conversation=conversation,
        action=action,
        actor=actor,
        from_agent=from_agent,
        to_agent=to_agent,
        note=note[:200],
    )


def conversation_changed(conversation: Conversation, *, previous_agent_id: int | None = None):
    """Tell the conversation's watchers and the console what the conversation looks like now."""
    staff_view = conversation_payload(conversation)  # one shape for customers and staff
    conversation_event_publish(
        conversation_id=conversation.pk,
        event={"type": "conversation.updated", "conversation": staff_view},
    )
    if conversation.status == ConversationStatus.RESOLVED:
        console_event_publish(event={"type": "queue.removed", "id": conversation.pk})
    else:
        console_event_publish(event={"type": "queue.updated", "conversation": staff_view})
    if conversation.assigned_agent_id and conversation.assigned_agent_id != previous_agent_id:
        console_event_publish(
            agent_id=conversation.assigned_agent_id,
            event={"type": "conversation.assigned", "conversation": staff_view},
        )


# --- agents: profile, presence, load ----------------------------------------------------------


def agent_profile_get(*, user: User) -> AgentProfile:
    profile, _created = AgentProfile.objects.get_or_create(user=user)
    return profile


@transaction.atomic
def agent_profile_update(
    *, user: User, display_name: str | None = None, capacity: int | None = None
) -> AgentProfile:
    profile = AgentProfile.objects.select_for_update().get(pk=agent_profile_get(user=user).pk)
    if display_name is not None:
        display_name = display_name.strip()
        if not display_name or len(display_name) > DISPLAY_NAME_MAX:
            raise WorkflowError(
                "invalid",
                _("A display name has 1 to %(n)d characters.") % {"n": DISPLAY_NAME_MAX},
                status=400,
                field="display_name",
            )
        profile.display_name = display_name
    if capacity is not None:
        if not 0 <= capacity <= MAX_AGENT_CAPACITY:
            raise WorkflowError(
                "invalid",
                _("Capacity is between 0 and %(n)d.") % {"n": MAX_AGENT_CAPACITY},
                status=400,
                field="capacity",
            )
        profile.capacity = capacity
    profile.save()
    user.agent_profile = profile  # the caller's user object shows the new name at once
    _presence_changed(profile)
    if capacity is not None:
        transaction.on_commit(queue_assign_soon)
    return profile


def _presence_changed(profile: AgentProfile) -> None:
    console_event_publish(event={"type": "agent.updated", "agent": reads.agent_payload(profile)})


def agent_heartbeat(*, user: User, now: datetime.datetime | None = None) -> AgentProfile:
    """A console socket is alive. Comes back online after a lapse -> try to hand it work."""
    now = now or timezone.now()
    profile = agent_profile_get(user=user)
    was_present = reads.agent_presence(profile, now=now)
    AgentProfile.objects.filter(pk=profile.pk).update(last_seen_at=now)
    profile.last_seen_at = now
    if reads.agent_presence(profile, now=now) != was_present:
        _presence_changed(profile)
        if profile.status == Presence.ONLINE:
            transaction.on_commit(queue_assign_soon)
    return profile


def agent_disconnected(*, user: User) -> AgentProfile:
    """The last heartbeat stops counting at once (a closed tab). Another open tab of the same
    agent sends its next ping within 20 s and brings the agent back."""
    profile = agent_profile_get(user=user)
    AgentProfile.objects.filter(pk=profile.pk).update(last_seen_at=None)
    profile.last_seen_at = None
    _presence_changed(profile)
    return profile


@transaction.atomic
def agent_presence_set(
    *, user: User, status: str, now: datetime.datetime | None = None
) -> AgentProfile:
    if status not in Presence.values:
        raise WorkflowError(
            "invalid", _("Unknown status %(s)s.") % {"s": status}, status=400, field="status"
        )
    now = now or timezone.now()
    profile = AgentProfile.objects.select_for_update().get(pk=agent_profile_get(user=user).pk)
    profile.status = status
    # Choosing a status from the console is itself a sign of life.
    profile.last_seen_at = now if status != Presence.OFFLINE else profile.last_seen_at
    profile.save(update_fields=["status", "last_seen_at", "updated_at"])
    _presence_changed(profile)
    if status == Presence.ONLINE:
        transaction.on_commit(queue_assign_soon)
    return profile


def _check_assignable(agent: User, *, conversation: Conversation) -> AgentProfile:
    if not (agent.is_active and (agent.is_superuser or agent.is_agent_or_above)):
        raise WorkflowError(
            "not_agent", _("Only an active agent can be assigned."), status=400, field="agent_id"
        )
    profile = AgentProfile.objects.select_for_update().get(pk=agent_profile_get(user=agent).pk)
    if conversation.assigned_agent_id == agent.pk:
        return profile
    if reads.agent_load(agent) >= profile.capacity:
        raise WorkflowError(
            "agent_at_capacity",
            _("%(name)s is serving %(n)d conversations, the most allowed.")
            % {"name": reads.agent_public_name(agent), "n": profile.capacity},
            status=409,
            field="agent_id",
        )
    return profile


def _check_not_resolved(conversation: Conversation) -> None:
    if conversation.status == ConversationStatus.RESOLVED:
        raise WorkflowError(
            "already_resolved", _("The conversation is resolved; reopen it first."), status=409
        )


def _check_may_act(conversation: Conversation, actor: User) -> None:
    """Agents act on their own conversations and the queue; supervisors on any."""
    if actor.is_superuser or actor.role in ("supervisor", "admin"):
        return
    if conversation.assigned_agent_id not in (None, actor.pk):
        raise WorkflowError(
            "not_your_conversation",
            _("This conversation is served by %(name)s.")
            % {"name": reads.agent_public_name(conversation.assigned_agent)},
            status=403,
        )


def _lock(conversation: Conversation) -> Conversation:
    return (
        Conversation.objects.select_for_update(of=("self",))
        .select_related("customer", "assigned_agent")
        .get(pk=conversation.pk)
    )


# --- handoff and the queue --------------------------------------------------------------------


def _sla_first_due(conversation: Conversation, now: datetime.datetime):
    policy = reads.sla_policy(conversation.priority)
    if policy is None or conversation.first_responded_at is not None:
        return None
    return now + datetime.timedelta(minutes=policy.first_response_minutes)


def _notice(conversation: Conversation, phrase_code: str, intent: Intent | None) -> Message | None:
    """Send one of the workflow's canned notices (voiced) as a bot message."""
    from .messages import bot_reply_create  # messages calls into this module too

    phrase = phrase_get_by_code(short_code=phrase_code)
    if phrase is None:
        logger.warning("canned phrase /%s is missing or inactive: notice not sent", phrase_code)
        return None
    return bot_reply_create(conversation=conversation, phrase=phrase, intent=intent)


@transaction.atomic
def conversation_handoff(
    *,
    conversation: Conversation,
    reason: str,
    priority: int | None = None,
    intent: Intent | None = None,
    actor: User | None = None,
    now: datetime.datetime | None = None,
) -> Conversation:
    """Queue the conversation for a human and acknowledge it (voiced). Already queued or served
    by an agent: only the priority may rise. Outside business hours the customer is told once
    per conversation, and the conversation waits for the next shift."""
    now = now or timezone.now()
    conversation = _lock(conversation)
    _check_not_resolved(conversation)
    raised = priority is not None and priority > conversation.priority
    if raised:
        conversation.priority = priority
    if conversation.status == ConversationStatus.WAITING or conversation.assigned_agent_id:
        if raised:
            conversation.save(update_fields=["priority", "updated_at"])
            conversation_changed(conversation)
        return conversation
    conversation.status = ConversationStatus.WAITING
    conversation.handoff_reason = reason
    conversation.waiting_since = now
    conversation.first_response_due_at = _sla_first_due(conversation, now)
    conversation.save()
    _audit(conversation, ConversationAction.HANDOFF, actor=actor, note=reason)
    open_now = reads.business_hours_open(at=now)
    if open_now:
        _notice(conversation, HANDOFF_PHRASE_CODE, intent)
    elif conversation.out_of_hours_notified_at is None:
        conversation.out_of_hours_notified_at = now
        conversation.save(update_fields=["out_of_hours_notified_at"])
        _audit(conversation, ConversationAction.OUT_OF_HOURS)
        _notice(conversation, OUT_OF_HOURS_PHRASE_CODE, intent)
    conversation_changed(conversation)
    if open_now:
        transaction.on_commit(queue_assign_soon)
    return conversation


def queue_assign_soon() -> None:
    """Run an assignment round now (after commit); a failure must not break the caller."""
    try:
        queue_assign()
    except Exception:
        logger.exception("auto-assignment round failed; the next event or sweep retries")


@transaction.atomic
def queue_assign(*, now: datetime.datetime | None = None) -> list[Conversation]:
    """Give waiting conversations (highest priority, then longest waiting, first) to online
    agents with room, least loaded first (ties: the one assigned longest ago). Outside business
    hours nothing is auto-assigned; agents may still claim."""
    now = now or timezone.now()
    if not reads.business_hours_open(at=now):
        return []
    # Agent rows are locked in a fixed order, so two rounds at once serialise, not deadlock.
    agents = list(reads.agents_online(now=now).select_for_update(of=("self",)).order_by("pk"))
    if not agents:
        return []
    loads = reads.agent_loads([profile.user_id for profile in agents])
    waiting = list(
        Conversation.objects.select_for_update(of=("self",), skip_locked=True)
        .filter(status=ConversationStatus.WAITING, assigned_agent__isnull=True)
        .select_related("customer")
        .order_by("-priority", "waiting_since", "pk")[:ASSIGN_BATCH]
    )
    epoch = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    assigned = []
    for conversation in waiting:
        room = [p for p in agents if loads.get(p.user_id, 0) < p.capacity]
        if not room:
            break
        profile = min(
            room, key=lambda p: (loads.get(p.user_id, 0), p.last_assigned_at or epoch, p.pk)
        )
        _assign(conversation, profile.user, action=ConversationAction.AUTO_ASSIGNED, now=now)
        loads[profile.user_id] = loads.get(profile.user_id, 0) + 1
        profile.last_assigned_at = now
        AgentProfile.objects.filter(pk=profile.pk).update(last_assigned_at=now)
        assigned.append(conversation)
    return assigned


def _assign(
    conversation: Conversation,
    agent: User,
    *,
    action: str,
    now: datetime.datetime,
    actor: User | None = None,
    note: str = "",
) -> Conversation:
    previous = conversation.assigned_agent
    conversation.assigned_agent = agent
    conversation.assigned_at = now
    if conversation.status == ConversationStatus.WAITING:
        conversation.status = ConversationStatus.OPEN
    conversation.save()
    _audit(conversation, action, actor=actor, from_agent=previous, to_agent=agent, note=note)
    conversation_changed(conversation, previous_agent_id=previous.pk if previous else None)
    return conversation


@transaction.atomic
def conversation_claim(
    *, conversation: Conversation, agent: User, now: datetime.datetime | None = None
) -> Conversation:
    now = now or timezone.now()
    conversation = _lock(conversation)
    _check_not_resolved(conversation)
    if conversation.assigned_agent_id == agent.pk:
        return conversation
    if conversation.assigned_agent_id is not None:
        raise WorkflowError(
            "already_assigned",
            _("%(name)s already serves this conversation.")
            % {"name": reads.agent_public_name(conversation.assigned_agent)},
            status=409,
        )
    _check_assignable(agent, conversation=conversation)
    return _assign(conversation, agent, action=ConversationAction.CLAIMED, now=now, actor=agent)


@transaction.atomic
def conversation_assign(
    *,
    conversation: Conversation,
    agent: User,
    actor: User,
    note: str = "",
    now: datetime.datetime | None = None,
) -> Conversation:
    """Assign (or transfer) to `agent`; refused for a non-agent or an agent at capacity."""
    now = now or timezone.now()
    conversation = _lock(conversation)
    _check_not_resolved(conversation)
    _check_may_act(conversation, actor)
    _check_assignable(agent, conversation=conversation)
    if conversation.assigned_agent_id == agent.pk:
        return conversation
    action = (
        ConversationAction.TRANSFERRED
        if conversation.assigned_agent_id
        else ConversationAction.ASSIGNED
    )
    return _assign(conversation, agent, action=action, now=now, actor=actor, note=note)


@transaction.atomic
def conversation_requeue(
    *,
    conversation: Conversation,
    actor: User,
    note: str = "",
    now: datetime.datetime | None = None,
) -> Conversation:
    """Transfer back to the queue: waiting again, first in line among its priority's peers
    that waited as long (its original waiting time is kept when it has one)."""
    now = now or timezone.now()
    conversation = _lock(conversation)
    _check_not_resolved(conversation)
    _check_may_act(conversation, actor)
    previous = conversation.assigned_agent
    if previous is None and conversation.status == ConversationStatus.WAITING:
        return conversation
    conversation.assigned_agent = None
    conversation.assigned_at = None
    conversation.status = ConversationStatus.WAITING
    conversation.handoff_reason = HandoffReason.TRANSFERRED
    conversation.waiting_since = conversation.waiting_since or now
    if conversation.first_responded_at is None and conversation.first_response_due_at is None:
        conversation.first_response_due_at = _sla_first_due(conversation, now)
    conversation.save()
    _audit(conversation, ConversationAction.REQUEUED, actor=actor, from_agent=previous, note=note)
    conversation_changed(conversation)
    transaction.on_commit(queue_assign_soon)
    return conversation


@transaction.atomic
def conversation_resolve(
    *, conversation: Conversation, actor: User, now: datetime.datetime | None = None
) -> Conversation:
    now = now or timezone.now()
    conversation = _lock(conversation)
    _check_not_resolved(conversation)
    _check_may_act(conversation, actor)
    conversation.status = ConversationStatus.RESOLVED
    conversation.resolved_at = now
    conversation.first_response_due_at = None
    conversation.next_response_due_at = None
    conversation.save()
    _audit(conversation, ConversationAction.RESOLVED, actor=actor)
    conversation_changed(conversation)
    if not CsatResponse.objects.filter(conversation=conversation).exists():
        conversation_event_publish(
            conversation_id=conversation.pk,
            event={"type": "csat.requested", "conversation_id": conversation.pk},
        )
    transaction.on_commit(queue_assign_soon)  # the agent has room again
    return conversation


@transaction.atomic
def conversation_reopen(
    *, conversation: Conversation, actor: User, now: datetime.datetime | None = None
) -> Conversation:
    """Back to open, served by the agent who had it (or the one reopening it)."""
    now = now or timezone.now()
    conversation = _lock(conversation)
    if conversation.status != ConversationStatus.RESOLVED:
        raise WorkflowError("not_resolved", _("Only a resolved conversation can be reopened."))
    if conversation.assigned_agent_id is None or not conversation.assigned_agent.is_active:
        conversation.assigned_agent = actor
        conversation.assigned_at = now
    conversation.status = ConversationStatus.OPEN
    conversation.resolved_at = None
    conversation.save()
    _audit(conversation, ConversationAction.REOPENED, actor=actor, to_agent=actor)
    conversation_changed(conversation)
    return conversation


# --- the message flow -------------------------------------------------------------------------


def customer_message_received(
    *,
    conversation: Conversation,
    message: Message,
    now: datetime.datetime | None = None,
    touched: bool = False,
) -> bool:
    """Route a stored customer message. True: a human handles it (queued or served), so the bot
    stays quiet; False: the bot may answer (and `message_unanswered` follows if it cannot).
    `touched`: the caller saved the conversation (`updated_at` included) in this transaction,
    so nothing is written when only that timestamp would move."""
    now = now or timezone.now()
    intent = message.intent
    priority = intent.handoff_priority if intent is not None else None
    with_human = conversation.assigned_agent_id is not None or (
        conversation.status == ConversationStatus.WAITING
    )
    if with_human:
        fields = ["updated_at"]
        if priority is not None and priority > conversation.priority:
            conversation.priority = priority
            fields.append("priority")
        if conversation.assigned_agent_id and conversation.next_response_due_at is None:
            policy = reads.sla_policy(conversation.priority)
            if policy is not None and conversation.first_responded_at is not None:
                conversation.next_response_due_at = now + datetime.timedelta(
                    minutes=policy.next_response_minutes
                )
                fields.append("next_response_due_at")
        if len(fields) > 1 or not touched:
            Conversation.objects.filter(pk=conversation.pk).update(
                **{
                    field: getattr(conversation, field) for field in fields if field != "updated_at"
                },
                updated_at=now,
            )
        if conversation.assigned_agent_id:
            console_event_publish(
                agent_id=conversation.assigned_agent_id,
                event={"type": "message.created", "message": message_payload(message)},
            )
        return True
    if handoff_requested(message.text):
        reason = HandoffReason.REQUESTED
    elif intent is not None and intent.needs_human:
        reason = HandoffReason.INTENT
    else:
        return False
    conversation_handoff(
        conversation=conversation, reason=reason, priority=priority, intent=intent, now=now
    )
    conversation.refresh_from_db()  # the caller's copy must not save stale workflow fields
    return True


def message_unanswered(
    *, conversation: Conversation, message: Message, now: datetime.datetime | None = None
) -> None:
    """No rule answered the customer: a human will."""
    conversation_handoff(
        conversation=conversation,
        reason=HandoffReason.UNANSWERED,
        intent=message.intent,
        now=now,
    )
    conversation.refresh_from_db()


def check_may_reply(*, conversation: Conversation, agent: User) -> None:
    """Agents answer their own conversations and the queue's; supervisors any."""
    _check_may_act(conversation, agent)


def agent_replied(
    *, conversation: Conversation, agent: User, now: datetime.datetime | None = None
) -> None:
    """An agent answered: stop the response timers; replying from the queue claims it."""
    now = now or timezone.now()
    updates: dict = {"next_response_due_at": None}
    if conversation.first_responded_at is None:
        updates["first_responded_at"] = now
        updates["first_response_due_at"] = None
    claimed = conversation.status == ConversationStatus.WAITING
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
    for field, value in updates.items():
        setattr(conversation, field, value)
    if claimed:
        _audit(conversation, ConversationAction.CLAIMED, actor=agent, to_agent=agent)


# --- CSAT -------------------------------------------------------------------------------------


@transaction.atomic
def csat_submit(
    *, conversation: Conversation, customer: User, rating: int, comment: str = ""
) -> CsatResponse:
    conversation = _lock(conversation)
    if conversation.customer_id != customer.pk:
        raise WorkflowError("not_found", _("Not found."), status=404)
    if not isinstance(rating, int) or not 1 <= rating <= 5:
        raise WorkflowError(
            "invalid", _("A rating is a whole number from 1 to 5."), status=400, field="rating"
        )
    comment = (comment or "").strip()
    if len(comment) > CSAT_COMMENT_MAX:
        raise WorkflowError(
            "invalid",
            _("At most %(limit)d characters.") % {"limit": CSAT_COMMENT_MAX},
            status=400,
            field="comment",
        )
    if conversation.status != ConversationStatus.RESOLVED:
        raise WorkflowError(
            "not_resolved", _("You can rate the service once the conversation is resolved.")
        )
    if CsatResponse.objects.filter(conversation=conversation).exists():
        raise WorkflowError("already_rated", _("This conversation has already been rated."))
    csat = CsatResponse.objects.create(
        conversation=conversation,
        agent=conversation.assigned_agent,
        rating=rating,
        comment=comment,
    )
    _audit(conversation, ConversationAction.CSAT, actor=customer, note=f"{rating}")
    conversation_changed(conversation)
    return csat
