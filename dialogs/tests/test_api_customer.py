"""The customer HTTP API (mini-program): conversations, messages, idempotency, limits."""

import pytest
from django.urls import reverse

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory
from dialogs.models import AudioStatus, ConversationStatus, Message, SenderKind
from dialogs.services.messages import agent_reply_create, customer_message_create

pytestmark = pytest.mark.django_db

CONVERSATIONS = "/api/conversations/"


def messages_url(conversation_id: int) -> str:
    return f"/api/conversations/{conversation_id}/messages/"


@pytest.fixture
def as_customer(api_client, customer):
    # A real JWT, as the mini-program sends it (not force_authenticate).
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=customer)['access']}")
    return api_client


def test_it_starts_a_conversation_then_resumes_it(as_customer, customer):
    first = as_customer.post(CONVERSATIONS)
    assert first.status_code == 201
    assert first.json()["status"] == ConversationStatus.OPEN
    again = as_customer.post(CONVERSATIONS)
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_it_starts_a_new_conversation_after_the_last_was_resolved(as_customer, conversation):
    conversation.status = ConversationStatus.RESOLVED
    conversation.save()
    response = as_customer.post(CONVERSATIONS)
    assert response.status_code == 201
    assert response.json()["id"] != conversation.pk


def test_it_lists_only_own_conversations(as_customer, conversation):
    from dialogs.services.conversations import conversation_create

    conversation_create(customer=CustomerFactory())
    body = as_customer.get(CONVERSATIONS).json()
    assert [c["id"] for c in body["results"]] == [conversation.pk]
    assert set(body) == {"next", "previous", "results"}


def test_it_hides_other_customers_conversations_with_404(api_client, conversation):
    stranger = CustomerFactory()
    api_client.force_authenticate(stranger)
    assert api_client.get(f"{CONVERSATIONS}{conversation.pk}/").status_code == 404
    assert api_client.get(messages_url(conversation.pk)).status_code == 404
    response = api_client.post(messages_url(conversation.pk), {"text": "hi"}, format="json")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert not conversation.messages.exists()


def test_the_message_list_checks_access_in_its_page_query_and_404s_as_before(
    api_client, customer, conversation, django_assert_num_queries
):
    """A page with rows proves access (its query joins the owner); an empty page, a refused
    parameter or someone else's conversation costs the separate check, which answers 404
    before any 400."""
    customer_message_create(conversation=conversation, author=customer, text="你好")
    last = conversation.messages.order_by("-pk").first().pk
    api_client.force_authenticate(customer)
    with django_assert_num_queries(1):  # the page; the test client authenticates by force
        assert len(api_client.get(messages_url(conversation.pk)).json()["results"]) >= 1
    with django_assert_num_queries(2):  # an empty page: the check says it is ours
        empty = api_client.get(f"{messages_url(conversation.pk)}?after={last}")
    assert empty.status_code == 200 and empty.json()["results"] == []
    assert api_client.get(f"{messages_url(conversation.pk)}?after=x").status_code == 400
    assert api_client.get(messages_url(10**9)).status_code == 404
    api_client.force_authenticate(CustomerFactory())
    for query in ("", f"?after={last}", "?after=x", "?before=x", f"?before={last}"):
        assert api_client.get(f"{messages_url(conversation.pk)}{query}").status_code == 404


def test_a_post_reads_the_conversation_once_and_answers_404_before_400(
    api_client, customer, conversation, django_assert_num_queries
):
    """The post's locked read is its permission check too; a refused body for someone else's
    (or a missing) conversation still gets the 404, and nothing is stored."""
    api_client.force_authenticate(customer)
    url = messages_url(conversation.pk)
    api_client.post(url, {"text": "我的订单还没到", "client_id": "c1"}, format="json")
    conversation.refresh_from_db()
    assert conversation.status == ConversationStatus.WAITING
    # savepoint, the locked read, the client_id lookup, INSERT, UPDATE, the queue/unread
    # counts of the conversation.updated event, release: no separate permission read.
    with django_assert_num_queries(7):
        again = api_client.post(url, {"text": "在吗", "client_id": "c2"}, format="json")
    assert again.status_code == 201
    assert again.json()["message"]["text"] == "在吗"
    stored = conversation.messages.count()
    api_client.force_authenticate(CustomerFactory())
    for body in (
        {"text": "hi"},
        {"text": ""},
        {"client_id": "x"},
        ["a list"],
        {"text": "x" * 9000},
    ):
        refused = api_client.post(url, body, format="json")
        assert refused.status_code == 404, body
        assert refused.json()["error"]["code"] == "not_found"
    api_client.force_authenticate(customer)
    missing = api_client.post(messages_url(10**9), {"text": "hi"}, format="json")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    assert api_client.post(url, {"text": ""}, format="json").status_code == 400
    assert conversation.messages.count() == stored


def test_message_pages_walked_both_ways_match_the_table(
    api_client, customer, agent, conversation, django_assert_num_queries
):
    """The list's pages come from a statement compiled once (`MessageRows`); DRF's cursor
    walks forward and back over them, for the customer and for staff, as over a queryset."""
    from dialogs.selectors.messages import _page_query, conversation_message_rows

    for i in range(7):
        customer_message_create(conversation=conversation, author=customer, text=f"第{i}条")
    ids = list(conversation.messages.order_by("pk").values_list("pk", flat=True))
    for user in (customer, agent):
        api_client.force_authenticate(user)
        url, seen, pages = f"{messages_url(conversation.pk)}?page_size=3", [], []
        while url:
            with django_assert_num_queries(1):  # one statement per page, compiled or not
                body = api_client.get(url).json()
            pages.append([m["id"] for m in body["results"]])
            seen += pages[-1]
            url = body["next"]
        assert seen == ids and all(len(page) <= 3 for page in pages) and len(pages) > 2
        back = api_client.get(body["previous"]).json()  # a reversed cursor: the queryset path
        assert [m["id"] for m in back["results"]] == pages[-2]
        after = api_client.get(f"{messages_url(conversation.pk)}?after={ids[3]}").json()
        assert [m["id"] for m in after["results"]] == ids[4:]
    rows = conversation_message_rows(conversation_id=conversation.pk, customer_id=customer.pk)
    page = rows.order_by("pk").filter(pk__gt=ids[1])[0:3]
    assert page == list(rows.queryset().order_by("pk").filter(pk__gt=ids[1])[0:3])
    assert [r["pk"] for r in page] == ids[2:5]
    stranger = conversation_message_rows(conversation_id=conversation.pk, customer_id=agent.pk)
    assert stranger.order_by("pk")[0:5] == []
    # The pages above came from the compiled statements (page size 3 + 1), not the fallback.
    assert _page_query(4, True)._by_alias and _page_query(4, False)._by_alias


@pytest.mark.parametrize("forged", ["p=abc", "p=1e3", "p=99999999999999999999999", "p=", "o=x"])
def test_a_forged_cursor_is_a_404_not_a_500(api_client, customer, conversation, forged):
    import base64

    customer_message_create(conversation=conversation, author=customer, text="你好")
    api_client.force_authenticate(customer)
    cursor = base64.b64encode(forged.encode()).decode()
    response = api_client.get(f"{messages_url(conversation.pk)}?cursor={cursor}")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_it_requires_authentication(api_client, conversation):
    response = api_client.get(CONVERSATIONS)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


def test_a_message_no_phrase_answers_is_handed_to_a_human(as_customer, conversation):
    response = as_customer.post(
        messages_url(conversation.pk), {"text": "我的订单还没到"}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert body["bot_reply"]["text"] == "已为您转接人工客服，请稍候。"  # voiced acknowledgement
    assert body["bot_reply"]["audio"]["status"] == AudioStatus.PENDING
    detail = as_customer.get(f"{CONVERSATIONS}{conversation.pk}/").json()
    assert detail["status"] == "waiting" and detail["queue_position"] == 1
    assert body["message"]["text"] == "我的订单还没到"
    assert body["message"]["sender_kind"] == SenderKind.CUSTOMER
    assert body["message"]["audio"] == {
        "status": AudioStatus.NONE,
        "url": None,
        "duration_ms": None,
        "format": None,
        "emotion": None,
        "error": None,
    }
    assert Message.objects.get(pk=body["message"]["id"]).author_id == conversation.customer_id


def test_it_returns_the_bot_reply_when_a_canned_phrase_answers(as_customer, conversation):
    response = as_customer.post(messages_url(conversation.pk), {"text": "你好"}, format="json")
    assert response.status_code == 201
    bot = response.json()["bot_reply"]
    assert bot["sender_kind"] == SenderKind.BOT
    assert bot["text"].startswith("您好")
    assert bot["audio"]["status"] == AudioStatus.PENDING  # voiced after commit
    assert bot["audio"]["emotion"]["name"] == "warm"  # greeting -> warm, by the seeded policy


def test_a_retry_with_the_same_client_id_is_stored_once(as_customer, conversation):
    payload = {"text": "你好", "client_id": "c-7f3a"}
    first = as_customer.post(messages_url(conversation.pk), payload, format="json")
    retry = as_customer.post(messages_url(conversation.pk), payload, format="json")
    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["message"]["id"] == first.json()["message"]["id"]
    assert retry.json()["bot_reply"]["id"] == first.json()["bot_reply"]["id"]
    assert first.json()["message"]["client_id"] == "c-7f3a"
    assert conversation.messages.filter(sender_kind=SenderKind.CUSTOMER).count() == 1
    assert conversation.messages.filter(sender_kind=SenderKind.BOT).count() == 1


def test_the_same_client_id_in_another_conversation_is_a_new_message(
    as_customer, customer, conversation
):
    from dialogs.services.conversations import conversation_create

    other = conversation_create(customer=customer)
    for target in (conversation, other):
        response = as_customer.post(
            messages_url(target.pk), {"text": "在线等", "client_id": "same"}, format="json"
        )
        assert response.status_code == 201


@pytest.mark.parametrize("text", ["", "   "])
def test_it_rejects_an_empty_message(as_customer, conversation, text):
    response = as_customer.post(messages_url(conversation.pk), {"text": text}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"
    assert "text" in response.json()["error"]["fields"]


def test_it_rejects_a_message_over_the_configured_length(as_customer, conversation, settings):
    settings.CHAT_MAX_MESSAGE_CHARS = 10
    ok = as_customer.post(messages_url(conversation.pk), {"text": "字" * 10}, format="json")
    too_long = as_customer.post(messages_url(conversation.pk), {"text": "字" * 11}, format="json")
    assert ok.status_code == 201
    assert too_long.status_code == 400
    assert "10" in too_long.json()["error"]["fields"]["text"][0]  # "最多 10 个字符。"


def test_it_rate_limits_message_posts_per_user(as_customer, conversation, settings):
    from conftest import ratelimit_headroom

    settings.CHAT_RATE_LIMIT = "2/m"
    ratelimit_headroom(str(conversation.customer_id))
    codes = [
        as_customer.post(messages_url(conversation.pk), {"text": f"第{i}条"}, format="json")
        for i in range(3)
    ]
    assert [r.status_code for r in codes] == [201, 201, 429]
    assert codes[-1]["Retry-After"] == "60"
    assert codes[-1].json()["error"]["code"] == "rate_limited"
    assert conversation.messages.filter(sender_kind=SenderKind.CUSTOMER).count() == 2


def test_staff_cannot_post_as_a_customer(api_client, agent, conversation):
    api_client.force_authenticate(agent)
    response = api_client.post(messages_url(conversation.pk), {"text": "hi"}, format="json")
    assert response.status_code == 403
    assert api_client.post(CONVERSATIONS).status_code == 403


def test_messages_are_ascending_paginated_and_pollable_with_after(
    as_customer, customer, conversation
):
    stored = [
        customer_message_create(conversation=conversation, author=customer, text=f"消息{i}")
        for i in range(5)
    ]
    # The first one is acknowledged (handed to a human): compare with every message in order.
    stored = list(conversation.messages.order_by("pk"))
    page = as_customer.get(messages_url(conversation.pk), {"page_size": 2}).json()
    assert [m["id"] for m in page["results"]] == [m.pk for m in stored[:2]]
    rest = as_customer.get(page["next"]).json()
    assert [m["id"] for m in rest["results"]] == [m.pk for m in stored[2:4]]
    newer = as_customer.get(messages_url(conversation.pk), {"after": stored[2].pk}).json()
    assert [m["id"] for m in newer["results"]] == [m.pk for m in stored[3:]]
    assert as_customer.get(messages_url(conversation.pk), {"after": "x"}).status_code == 400


@pytest.mark.slow
def test_a_voiced_reply_carries_a_signed_playable_audio_url(
    as_customer, conversation, agent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        reply = agent_reply_create(conversation=conversation, agent=agent, text="好的。")
    body = as_customer.get(messages_url(conversation.pk)).json()
    audio = next(m for m in body["results"] if m["id"] == reply.pk)["audio"]
    assert audio["status"] == AudioStatus.READY
    assert audio["url"].startswith("/media/audio/")
    assert audio["format"] == "mp3" and audio["duration_ms"] > 100
    assert audio["emotion"]["name"] == "neutral"
    clip = as_customer.get(audio["url"])
    assert clip.status_code == 200
    assert clip["Content-Type"] == "audio/mpeg"


def test_every_chat_endpoint_is_in_the_schema(api_client):
    schema = api_client.get(reverse("schema"), {"format": "json"}).json()
    for path in (
        "/api/conversations/",
        "/api/conversations/{conversation_id}/",
        "/api/conversations/{conversation_id}/messages/",
        "/api/agent/conversations/",
        "/api/agent/conversations/{conversation_id}/assign/",
        "/api/agent/conversations/{conversation_id}/resolve/",
        "/api/agent/conversations/{conversation_id}/reply/",
    ):
        assert path in schema["paths"]
