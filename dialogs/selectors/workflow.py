"""Reads of the workflow: presence, load, business hours, SLA state, queue position, payloads."""

import datetime
import functools
import time
from typing import Any

from django.db import connection
from django.db.models import Avg, Case, Count, F, IntegerField, Q, QuerySet, Value, When
from django.db.models.functions import TruncWeek
from django.shortcuts import get_object_or_404
from django.utils import timezone

from accounts.models import STAFF_ROLES, User

from ..models import (
    AgentProfile,
    BusinessHours,
    Conversation,
    ConversationStatus,
    CsatResponse,
    Holiday,
    Message,
    Presence,
    SenderKind,
    SlaPolicy,
)

# A console pings every 20 s; three missed pings and the agent is offline.
PRESENCE_TIMEOUT = datetime.timedelta(seconds=60)
SERVED_STATUSES = (ConversationStatus.OPEN, ConversationStatus.PENDING)
_NEXT_OPEN_HORIZON_DAYS = 14


def _iso(value: datetime.datetime | None) -> str | None:
    return timezone.localtime(value).isoformat() if value else None


# --- agents -----------------------------------------------------------------------------------


def agent_public_name(user: User | None) -> str:
    return user.display_name if user is not None else ""


def agent_presence(profile: AgentProfile, *, now: datetime.datetime | None = None) -> str:
    now = now or timezone.now()
    if profile.last_seen_at is None or now - profile.last_seen_at > PRESENCE_TIMEOUT:
        return Presence.OFFLINE
    return profile.status


def agents_online(*, now: datetime.datetime | None = None) -> QuerySet[AgentProfile]:
    now = now or timezone.now()
    return AgentProfile.objects.filter(
        Q(user__is_superuser=True) | Q(user__role__in=STAFF_ROLES),
        status=Presence.ONLINE,
        last_seen_at__gte=now - PRESENCE_TIMEOUT,
        user__is_active=True,
    ).select_related("user")


def agent_load(user: User) -> int:
    return Conversation.objects.filter(assigned_agent=user, status__in=SERVED_STATUSES).count()


def agent_loads(user_ids: list[int]) -> dict[int, int]:
    rows = (
        Conversation.objects.filter(assigned_agent_id__in=user_ids, status__in=SERVED_STATUSES)
        .values("assigned_agent_id")
        .annotate(n=Count("pk"))
    )
    return {row["assigned_agent_id"]: row["n"] for row in rows}


def agent_payload(
    profile: AgentProfile, *, load: int | None = None, now: datetime.datetime | None = None
) -> dict[str, Any]:
    return {
        "id": profile.user_id,
        "display_name": agent_public_name(profile.user),
        "presence": agent_presence(profile, now=now),
        "status": profile.status,
        "load": agent_load(profile.user) if load is None else load,
        "capacity": profile.capacity,
    }


def agents_list(*, now: datetime.datetime | None = None) -> list[dict[str, Any]]:
    """Every active staff member with presence and load (the transfer picker)."""
    now = now or timezone.now()
    staff = User.objects.filter(
        Q(is_superuser=True) | Q(role__in=STAFF_ROLES), is_active=True
    ).order_by("pk")
    existing = set(AgentProfile.objects.filter(user__in=staff).values_list("user_id", flat=True))
    AgentProfile.objects.bulk_create(
        [AgentProfile(user=user) for user in staff if user.pk not in existing],
        ignore_conflicts=True,
    )
    profiles = list(
        AgentProfile.objects.filter(user__in=staff).select_related("user").order_by("user_id")
    )
    loads = agent_loads([p.user_id for p in profiles])
    return [agent_payload(p, load=loads.get(p.user_id, 0), now=now) for p in profiles]


# --- business hours and SLA -------------------------------------------------------------------


# Every conversation payload says whether we are open: the schedule (a few rows) is read once
# per SCHEDULE_TTL per process, and saving hours or holidays clears it (dialogs/apps.py).
SCHEDULE_TTL = 30.0
_schedule: dict[str, Any] = {}


def schedule_forget(**kwargs) -> None:
    _schedule.clear()


def _load_schedule() -> tuple[list[BusinessHours], set[datetime.date]]:
    now = time.monotonic()
    if _schedule.get("expires", 0) < now:
        today = timezone.localdate()
        _schedule.update(
            periods=list(BusinessHours.objects.all()),
            holidays=set(
                Holiday.objects.filter(
                    date__gte=today - datetime.timedelta(days=1),
                    date__lte=today + datetime.timedelta(days=_NEXT_OPEN_HORIZON_DAYS + 1),
                ).values_list("date", flat=True)
            ),
            expires=now + SCHEDULE_TTL,
        )
    return _schedule["periods"], _schedule["holidays"]


def _is_holiday(day: datetime.date, holidays: set[datetime.date]) -> bool:
    today = timezone.localdate()
    if (
        today - datetime.timedelta(days=1)
        <= day
        <= today + datetime.timedelta(days=_NEXT_OPEN_HORIZON_DAYS + 1)
    ):
        return day in holidays
    return Holiday.objects.filter(date=day).exists()  # far from today (tests, reports)


def business_hours_open(*, at: datetime.datetime | None = None) -> bool:
    """Open at `at` (local time): not a holiday and inside a period of the weekly schedule.
    An empty schedule means always open."""
    local = timezone.localtime(at or timezone.now())
    periods, holidays = _load_schedule()
    if not periods:
        return True
    if _is_holiday(local.date(), holidays):
        return False
    now_time = local.time()
    return any(
        p.weekday == local.weekday() and p.opens_at <= now_time < p.closes_at for p in periods
    )


def business_hours_next_open(*, at: datetime.datetime | None = None) -> datetime.datetime | None:
    """When the service opens next (now if open); None without a schedule in two weeks."""
    local = timezone.localtime(at or timezone.now())
    periods, holidays = _load_schedule()
    if not periods:
        return local
    for offset in range(_NEXT_OPEN_HORIZON_DAYS + 1):
        day = local.date() + datetime.timedelta(days=offset)
        if _is_holiday(day, holidays):
            continue
        for period in sorted(
            (p for p in periods if p.weekday == day.weekday()), key=lambda p: p.opens_at
        ):
            start = timezone.make_aware(datetime.datetime.combine(day, period.opens_at))
            end = timezone.make_aware(datetime.datetime.combine(day, period.closes_at))
            if end <= local:
                continue
            return max(start, local)
    return None


def service_hours() -> dict[str, Any]:
    now = timezone.now()
    return {
        "open_now": business_hours_open(at=now),
        "next_open_at": _iso(business_hours_next_open(at=now)),
    }


def sla_policy(priority: int) -> SlaPolicy | None:
    return SlaPolicy.objects.filter(priority=priority).first()


def conversation_sla(
    conversation: Conversation, *, now: datetime.datetime | None = None
) -> dict[str, Any]:
    now = now or timezone.now()
    first_due = conversation.first_response_due_at
    next_due = conversation.next_response_due_at
    overdue = bool(
        (first_due and conversation.first_responded_at is None and first_due < now)
        or (next_due and next_due < now)
    )
    return {
        "first_response_due_at": _iso(first_due),
        "next_response_due_at": _iso(next_due),
        "overdue": overdue,
    }


# --- the queue --------------------------------------------------------------------------------


def _in_queue(conversation: Conversation) -> bool:
    return conversation.status == ConversationStatus.WAITING and (
        conversation.waiting_since is not None
    )


def _queue_ahead(conversation: Conversation) -> QuerySet | None:
    """The waiting conversations ahead of this one; None when it is not waiting."""
    if not _in_queue(conversation):
        return None
    return Conversation.objects.filter(
        status=ConversationStatus.WAITING, assigned_agent__isnull=True
    ).filter(
        Q(priority__gt=conversation.priority)
        | Q(priority=conversation.priority, waiting_since__lt=conversation.waiting_since)
        | Q(
            priority=conversation.priority,
            waiting_since=conversation.waiting_since,
            pk__lt=conversation.pk,
        )
    )


def queue_position(conversation: Conversation) -> int | None:
    """1 = next in line. Ahead: higher priority, or same priority and waiting longer."""
    ahead = _queue_ahead(conversation)
    return None if ahead is None else ahead.count() + 1


def _unread(conversation: Conversation) -> QuerySet:
    messages = conversation.messages.filter(sender_kind=SenderKind.CUSTOMER)
    if conversation.agent_read_at is not None:
        messages = messages.filter(created_at__gt=conversation.agent_read_at)
    return messages


def conversation_unread_count(conversation: Conversation) -> int:
    if hasattr(conversation, "unread_count"):
        return conversation.unread_count  # annotated by the list query
    return _unread(conversation).count()


def _column(model, field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)


@functools.cache
def _queue_and_unread_sql(read_before: bool) -> str:
    """The two counts as one statement, written once per process. It runs on every customer
    message in a waiting conversation, and building the same two filtered subqueries through
    the ORM cost more CPU than the rest of the post's reads together (profiled, bench/README)."""
    conversations = connection.ops.quote_name(Conversation._meta.db_table)
    messages = connection.ops.quote_name(Message._meta.db_table)
    c = {name: _column(Conversation, name) for name in ("id", "status", "assigned_agent")}
    c |= {name: _column(Conversation, name) for name in ("priority", "waiting_since")}
    m = {name: _column(Message, name) for name in ("conversation", "sender_kind", "created_at")}
    read = f" AND {m['created_at']} > %s" if read_before else ""
    # Only quoted identifiers from the models are formatted in; every value is a parameter.
    return (
        f"SELECT (SELECT COUNT(*) FROM {conversations} WHERE {c['status']} = %s"  # noqa: S608
        f" AND {c['assigned_agent']} IS NULL AND ({c['priority']} > %s"
        f" OR ({c['priority']} = %s AND {c['waiting_since']} < %s)"
        f" OR ({c['priority']} = %s AND {c['waiting_since']} = %s AND {c['id']} < %s))),"
        f" (SELECT COUNT(*) FROM {messages} WHERE {m['conversation']} = %s"
        f" AND {m['sender_kind']} = %s{read})"
    )


def conversation_queue_position_and_unread(conversation: Conversation) -> tuple[int | None, int]:
    """`queue_position` and `conversation_unread_count`, in one query when both need counting
    (a waiting conversation's payload, sent on every customer message). Same filters as
    `_queue_ahead` and `_unread` (a test compares the two)."""
    if not _in_queue(conversation) or hasattr(conversation, "unread_count"):
        return queue_position(conversation), conversation_unread_count(conversation)
    adapt = connection.ops.adapt_datetimefield_value
    waiting_since = adapt(conversation.waiting_since)
    priority = conversation.priority
    params = [ConversationStatus.WAITING, priority, priority, waiting_since, priority]
    params += [waiting_since, conversation.pk, conversation.pk, SenderKind.CUSTOMER]
    read_at = conversation.agent_read_at
    if read_at is not None:
        params.append(adapt(read_at))
    with connection.cursor() as cursor:
        cursor.execute(_queue_and_unread_sql(read_at is not None), params)
        ahead, unread = cursor.fetchone()
    return ahead + 1, unread


def conversation_csat(conversation: Conversation) -> dict[str, Any] | None:
    try:
        csat = conversation.csat
    except CsatResponse.DoesNotExist:
        return None
    return {"rating": csat.rating, "comment": csat.comment, "created_at": _iso(csat.created_at)}


# --- customer panel and CSAT reports ----------------------------------------------------------


def customer_panel(*, conversation: Conversation) -> dict[str, Any]:
    customer = conversation.customer
    profile = getattr(customer, "customer_profile", None)
    earlier = (
        Conversation.objects.filter(customer=customer)
        .exclude(pk=conversation.pk)
        .select_related("assigned_agent__agent_profile", "csat")
        .order_by("-created_at")[:20]
    )
    intents = (
        Message.objects.filter(
            conversation__customer=customer, sender_kind=SenderKind.CUSTOMER, intent__isnull=False
        )
        .values("intent__name", "intent__label")
        .annotate(count=Count("pk"))
        .order_by("-count", "intent__name")
    )
    csats = CsatResponse.objects.filter(conversation__customer=customer).select_related(
        "agent__agent_profile"
    )
    return {
        "profile": {
            "id": customer.pk,
            "nickname": customer.display_name,
            "customer_since": _iso(profile.created_at if profile else customer.date_joined),
            "conversations": Conversation.objects.filter(customer=customer).count(),
        },
        "earlier_conversations": [
            {
                "id": c.pk,
                "status": c.status,
                "created_at": _iso(c.created_at),
                "last_message_at": _iso(c.last_message_at),
                "assigned_agent": agent_public_name(c.assigned_agent) or None,
                "csat_rating": conversation_csat(c)["rating"] if conversation_csat(c) else None,
            }
            for c in earlier
        ],
        "intents_seen": [
            {"name": row["intent__name"], "label": row["intent__label"], "count": row["count"]}
            for row in intents
        ],
        "csat_given": [
            {
                "conversation_id": c.conversation_id,
                "rating": c.rating,
                "comment": c.comment,
                "agent": agent_public_name(c.agent) or None,
                "created_at": _iso(c.created_at),
            }
            for c in csats
        ],
    }


def csat_report_by_agent() -> list[dict[str, Any]]:
    rows = (
        CsatResponse.objects.values("agent_id")
        .annotate(responses=Count("pk"), average=Avg("rating"))
        .order_by("agent_id")
    )
    names = {
        user.pk: agent_public_name(user)
        for user in User.objects.filter(pk__in=[r["agent_id"] for r in rows if r["agent_id"]])
    }
    return [
        {
            "agent": names.get(row["agent_id"], "-"),
            "responses": row["responses"],
            "average": round(row["average"], 2),
        }
        for row in rows
    ]


def csat_report_by_week() -> list[dict[str, Any]]:
    rows = (
        CsatResponse.objects.annotate(week=TruncWeek("created_at"))
        .values("week")
        .annotate(responses=Count("pk"), average=Avg("rating"))
        .order_by("-week")
    )
    return [
        {
            "week": row["week"].date() if hasattr(row["week"], "date") else row["week"],
            "responses": row["responses"],
            "average": round(row["average"], 2),
        }
        for row in rows
    ]


def conversations_for_agents(
    *,
    user: User,
    view: str = "all",
    status: str | None = None,
    priority: int | None = None,
) -> QuerySet[Conversation]:
    """The console's queue: `mine`, `unassigned` (the waiting queue) or `all`; without a status
    the unresolved ones. Waiting first (priority, then longest waiting), then the latest."""
    unread = Count(
        "messages",
        filter=Q(messages__sender_kind=SenderKind.CUSTOMER)
        & (Q(agent_read_at__isnull=True) | Q(messages__created_at__gt=F("agent_read_at"))),
    )
    conversations = Conversation.objects.select_related(
        "customer__customer_profile",
        "assigned_agent__agent_profile",
        "last_message",
        "csat",
    ).annotate(
        unread_count=unread,
        is_waiting=Case(
            When(status=ConversationStatus.WAITING, then=Value(0)),
            default=Value(1),
            output_field=IntegerField(),
        ),
    )
    if status:
        conversations = conversations.filter(status=status)
    else:
        conversations = conversations.exclude(status=ConversationStatus.RESOLVED)
    if view == "mine":
        conversations = conversations.filter(assigned_agent=user)
    elif view == "unassigned":
        conversations = conversations.filter(assigned_agent__isnull=True)
    if priority is not None:
        conversations = conversations.filter(priority=priority)
    return conversations.order_by(
        "is_waiting",
        "-priority",
        F("waiting_since").asc(nulls_last=True),
        F("last_message_at").desc(nulls_last=True),
        "-pk",
    )


def conversation_get_for_agent(*, conversation_id: int) -> Conversation:
    return get_object_or_404(
        Conversation.objects.select_related(
            "customer__customer_profile", "assigned_agent__agent_profile", "last_message"
        ),
        pk=conversation_id,
    )
