"""Admin changelists whose cost must not grow with the tables (bench/scale.py measures the rest)."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import CustomerFactory, UserFactory
from dialogs import admin as dialogs_admin
from dialogs.models import Conversation, Message
from tts.admin import EstimatedCountPaginator
from tts.models import SynthesisRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, role="admin")


def _messages(conversation, n: int, text: str = "普通消息"):
    Message.objects.bulk_create(
        Message(conversation=conversation, sender_kind="customer", text=f"{text} {i}")
        for i in range(n)
    )


def _queries(client, url, **params) -> tuple[int, bytes]:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url, params)
    assert response.status_code == 200
    return len(ctx.captured_queries), response.content


@pytest.mark.parametrize(
    ("changelist", "grow"),
    [
        ("admin:dialogs_message_changelist", "messages"),
        ("admin:dialogs_conversation_changelist", "conversations"),
        ("admin:tts_synthesisrecord_changelist", "records"),
    ],
)
def test_a_changelist_costs_the_same_number_of_queries_for_5_or_40_rows(
    client, superuser, conversation, changelist, grow
):
    client.force_login(superuser)

    def add(n):
        if grow == "messages":
            _messages(conversation, n)
        elif grow == "conversations":
            for _ in range(n):
                Conversation.objects.create(customer=CustomerFactory())
        else:
            SynthesisRecord.objects.bulk_create(
                SynthesisRecord(
                    source="api",
                    text_excerpt="好的",
                    text_digest=f"{i:064d}",
                    status="ok",
                    user=CustomerFactory(),
                )
                for i in range(n)
            )

    add(5)
    few, _ = _queries(client, reverse(changelist))
    add(35)
    many, _ = _queries(client, reverse(changelist))

    assert many == few


def test_the_synthesis_record_list_does_not_list_every_user_in_its_filters(client, superuser):
    users = [CustomerFactory() for _ in range(3)]
    SynthesisRecord.objects.bulk_create(
        SynthesisRecord(source="api", text_excerpt="好", text_digest="a" * 64, status="ok", user=u)
        for u in users
    )
    client.force_login(superuser)

    _, page = _queries(client, reverse("admin:tts_synthesisrecord_changelist"))

    assert f"user__id__exact={users[0].pk}".encode() not in page


def test_an_unfiltered_list_uses_the_planner_estimate_and_a_filtered_one_a_capped_count(
    conversation, monkeypatch
):
    monkeypatch.setattr(EstimatedCountPaginator, "COUNT_CAP", 10)
    _messages(conversation, 25)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE dialogs_message")

    unfiltered = EstimatedCountPaginator(Message.objects.all(), 5)
    with CaptureQueriesContext(connection) as ctx:
        assert unfiltered.count == 25  # reltuples after ANALYZE: exact on a small table
    assert "pg_class" in ctx.captured_queries[0]["sql"]
    assert "COUNT(" not in ctx.captured_queries[0]["sql"].upper()

    filtered = EstimatedCountPaginator(Message.objects.filter(sender_kind="customer"), 5)
    assert filtered.count == 11  # at most COUNT_CAP + 1 rows counted


def test_conversation_search_finds_message_text_long_terms_everywhere_short_terms_recently(
    client, superuser, customer, monkeypatch
):
    old = Conversation.objects.create(customer=customer)
    _messages(old, 1, text="我要退款，东西坏了")
    recent = Conversation.objects.create(customer=CustomerFactory())
    _messages(recent, 30)
    _messages(recent, 1, text="退款什么时候到账")
    monkeypatch.setattr(dialogs_admin, "SHORT_SEARCH_WINDOW", 20)
    client.force_login(superuser)
    url = reverse("admin:dialogs_conversation_changelist")

    _, two_chars = _queries(client, url, q="退款")
    _, three_chars = _queries(client, url, q="要退款")
    _, nickname = _queries(client, url, q="王先生")

    change = "/admin/dialogs/conversation/{}/change/"
    assert change.format(recent.pk).encode() in two_chars
    assert change.format(old.pk).encode() not in two_chars  # outside the newest-20 window
    assert change.format(old.pk).encode() in three_chars  # trigram index: the whole history
    assert change.format(recent.pk).encode() not in three_chars
    assert change.format(old.pk).encode() in nickname


def test_the_message_text_trigram_index_exists():
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'dialogs_message_text_trgm'"
        )
        row = cursor.fetchone()
    assert row and "gin_trgm_ops" in row[0]


def test_audit_prune_deletes_old_rows_in_batches_and_keeps_recent_ones(monkeypatch):
    from datetime import timedelta

    from django.utils import timezone

    from dialogs.services import audit

    monkeypatch.setattr(audit, "AUDIT_PRUNE_BATCH", 4)
    SynthesisRecord.objects.bulk_create(
        SynthesisRecord(source="api", text_excerpt="好", text_digest="b" * 64, status="ok")
        for _ in range(13)
    )
    old = timezone.now() - timedelta(days=100)
    keep = SynthesisRecord.objects.order_by("pk")[:3].values_list("pk", flat=True)
    SynthesisRecord.objects.exclude(pk__in=list(keep)).update(created_at=old)
    seen = []

    deleted = audit.audit_prune(
        before=timezone.now() - timedelta(days=90),
        progress=lambda label, n: seen.append((label, n)),
    )

    assert deleted["synthesis records"] == 10
    assert [n for label, n in seen if label == "synthesis records"] == [4, 8, 10]
    assert set(SynthesisRecord.objects.values_list("pk", flat=True)) == set(keep)


def test_a_csv_export_joins_the_users_it_prints_instead_of_a_query_per_row(client, superuser):
    def export() -> int:
        with CaptureQueriesContext(connection) as ctx:
            response = client.post(
                reverse("admin:tts_synthesisrecord_changelist"),
                {
                    "action": "export_csv",
                    "select_across": "1",
                    "index": "0",
                    "_selected_action": "0",
                },
            )
            body = b"".join(response.streaming_content)
        assert response.status_code == 200 and body
        return len(ctx.captured_queries)

    client.force_login(superuser)
    for n in (3, 30):
        SynthesisRecord.objects.bulk_create(
            SynthesisRecord(
                source="api",
                text_excerpt="好",
                text_digest="c" * 64,
                status="ok",
                user=CustomerFactory(),
            )
            for _ in range(n)
        )
        if n == 3:
            few = export()
    assert export() == few
