"""common.precompiled: a hot read compiled once gives what the ORM gives, with new values."""

import pytest
from django.db import transaction
from django.db.transaction import TransactionManagementError

from accounts.models import User
from accounts.tests.factories import CustomerFactory
from common.precompiled import PrecompiledQuery, model_insert
from dialogs.models import Conversation, CsatResponse
from dialogs.services.conversations import conversation_create

pytestmark = pytest.mark.django_db

RELATIONS = ("customer__customer_profile", "assigned_agent", "csat")


def _orm(pk: int, customer_id: int):
    return Conversation.objects.select_related(*RELATIONS).filter(pk=pk, customer_id=customer_id)


LOCKED = PrecompiledQuery(
    Conversation,
    lambda pk, customer_id: _orm(pk, customer_id).select_for_update(of=("self",)),
    pk=int,
    customer_id=int,
)
PLAIN = PrecompiledQuery(Conversation, _orm, pk=int, customer_id=int)


def _fields(obj) -> dict:
    return {k: v for k, v in vars(obj).items() if k != "_state"}


def _same(got, expected, depth: int = 0) -> None:
    assert type(got) is type(expected) and _fields(got) == _fields(expected)
    assert got._state.adding is False and got._state.db == expected._state.db
    assert set(got._state.fields_cache) == set(expected._state.fields_cache)
    for name, related in expected._state.fields_cache.items():
        if related is None:
            assert got._state.fields_cache[name] is None
        elif depth < 3:  # the related objects point back (csat.conversation)
            _same(got._state.fields_cache[name], related, depth + 1)


def test_it_builds_the_same_objects_as_the_orm_with_the_values_of_each_call(
    agent, django_assert_num_queries
):
    served = conversation_create(customer=CustomerFactory())
    served.assigned_agent = agent
    served.save()
    CsatResponse.objects.create(conversation=served, agent=agent, rating=5, comment="好")
    bare = conversation_create(customer=CustomerFactory())
    for conversation in (served, bare, served):  # new values each call, cached SQL
        expected = _orm(conversation.pk, conversation.customer_id).get()
        with django_assert_num_queries(1):
            got = PLAIN.get(pk=conversation.pk, customer_id=conversation.customer_id)
        _same(got, expected)
    got = PLAIN.get(pk=served.pk, customer_id=served.customer_id)
    assert got.csat.rating == 5 and got.assigned_agent == agent
    assert got.customer.customer_profile.pk == served.customer.customer_profile.pk
    with pytest.raises(CsatResponse.DoesNotExist):
        PLAIN.get(pk=bare.pk, customer_id=bare.customer_id).csat  # noqa: B018


def test_no_row_is_the_models_does_not_exist(conversation):
    with pytest.raises(Conversation.DoesNotExist):
        PLAIN.get(pk=conversation.pk, customer_id=CustomerFactory().pk)  # not the owner
    with pytest.raises(Conversation.DoesNotExist):
        PLAIN.get(pk=10**9, customer_id=conversation.customer_id)
    assert PLAIN.all(pk=10**9, customer_id=1) == []


def test_a_locking_read_locks_and_needs_a_transaction(conversation):
    with transaction.atomic():
        got = LOCKED.get(pk=conversation.pk, customer_id=conversation.customer_id)
    assert got.pk == conversation.pk
    sql = LOCKED._compiled("default").sql
    assert "FOR UPDATE" in sql and sql.count("%s") == 2


def test_values_django_transforms_are_refused_when_compiled():
    wrapped = PrecompiledQuery(
        User, lambda name: User.objects.filter(username__contains=name), name=str
    )
    with pytest.raises(ValueError, match="not found verbatim"):
        wrapped.all(name="wx")
    with pytest.raises(TypeError):
        PrecompiledQuery(User, lambda when: User.objects.filter(date_joined=when), when=object)


@pytest.mark.django_db(transaction=True)
def test_a_locking_read_outside_a_transaction_is_refused_like_the_orms(customer):
    conversation = conversation_create(customer=customer)
    with pytest.raises(TransactionManagementError):
        list(_orm(conversation.pk, customer.pk).select_for_update())
    with pytest.raises(TransactionManagementError):
        LOCKED.get(pk=conversation.pk, customer_id=customer.pk)


def _row(model, pk) -> dict:
    return model.objects.filter(pk=pk).values().get()


def test_an_insert_written_once_stores_what_save_stores(customer, conversation):
    """Same row as Django's save() (auto_now_add, JSON, keys, NULLs), the key set on the
    object, one statement each."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from dialogs.models import Message, SenderKind
    from tts.models import SynthesisRecord

    def record(**extra):
        return SynthesisRecord(
            user=customer,
            source="api",
            text_excerpt="您好",
            text_digest="d" * 64,
            text_length=2,
            voice="baker",
            controls={"speed": 1.1, "note": "慢一点"},
            status="ok",
            latency_ms=3,
            **extra,
        )

    saved = record()
    saved.save()
    with CaptureQueriesContext(connection) as queries:
        inserted = model_insert(record())
        again = model_insert(record(client_ip="10.0.0.1"))
    assert len(queries) == 2 and all(q["sql"].startswith("INSERT INTO") for q in queries)
    assert inserted.pk and again.pk == inserted.pk + 1 and not inserted._state.adding
    stored, reference = _row(SynthesisRecord, inserted.pk), _row(SynthesisRecord, saved.pk)
    assert stored["created_at"] >= reference["created_at"] and inserted.created_at
    ignore = {"id", "created_at"}
    assert {k: v for k, v in stored.items() if k not in ignore} == {
        k: v for k, v in reference.items() if k not in ignore
    }
    assert _row(SynthesisRecord, again.pk)["client_ip"] == "10.0.0.1"
    message = model_insert(
        Message(conversation=conversation, sender_kind=SenderKind.CUSTOMER, text="在吗")
    )
    assert Message.objects.get(pk=message.pk).text == "在吗"
    assert message.created_at == Message.objects.get(pk=message.pk).created_at
