"""The sensitive-word filter in the product: customers' words, replies, speech endpoints, reload."""

import io

import pytest
from django.core.cache import cache
from django.core.management import call_command

from accounts.services import api_key_create, tokens_for_user
from dialogs.models import Message, SenderKind
from dialogs.services.messages import agent_reply_create, customer_message_create
from dialogs.services.moderation import SensitiveTextRefused
from tts.models import ModerationWord
from tts.selectors import MODERATION_VERSION_KEY, moderation_matcher

pytestmark = pytest.mark.django_db


@pytest.fixture
def words(django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        ModerationWord.objects.create(word="傻瓜", category="insult", action="mask")
        ModerationWord.objects.create(word="代开发票", category="fraud", action="block")
        ModerationWord.objects.create(word="微信号", category="ads", action="flag")


def test_customer_text_is_flagged_and_masked_for_display_original_kept(
    api_client, customer, conversation, words
):
    message = customer_message_create(
        conversation=conversation, author=customer, text="你们是傻 瓜吗"
    )
    message.refresh_from_db()
    conversation.refresh_from_db()
    assert message.text == "你们是傻 瓜吗"  # the original, for supervisors
    assert message.masked_text == "你们是* *吗"
    assert message.moderation_flagged and conversation.moderation_flagged
    assert message.moderation_hits == [{"word": "傻瓜", "category": "insult", "action": "mask"}]

    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=customer)['access']}")
    payload = api_client.get(f"/api/conversations/{conversation.pk}/messages/").json()["results"][0]
    assert payload["text"] == "你们是* *吗"
    assert payload["moderation"] == {"flagged": True, "masked": True}


def test_a_blocked_agent_reply_is_refused_and_not_stored(api_client, agent, conversation, words):
    with pytest.raises(SensitiveTextRefused) as exc:
        agent_reply_create(conversation=conversation, agent=agent, text="可以帮您代开发票")
    assert exc.value.categories == ["fraud"]
    api_client.force_authenticate(agent)
    response = api_client.post(
        f"/api/agent/conversations/{conversation.pk}/reply/",
        {"text": "可以帮您代-开-发-票"},
        format="json",
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "sensitive_text" and error["fields"]["categories"] == ["fraud"]
    assert not Message.objects.filter(sender_kind=SenderKind.AGENT).exists()


def test_the_console_can_check_a_reply_before_sending(api_client, agent, customer, words):
    api_client.force_authenticate(agent)
    body = api_client.post(
        "/api/agent/moderation/check/", {"text": "加我微信号，代开发票"}, format="json"
    ).json()
    assert body["blocked"] is True and body["categories"] == ["ads", "fraud"]
    assert {hit["word"] for hit in body["hits"]} == {"微信号", "代开发票"}
    api_client.force_authenticate(customer)
    assert (
        api_client.post("/api/agent/moderation/check/", {"text": "x"}, format="json").status_code
        == 403
    )


def test_speech_endpoints_refuse_blocked_text(api_client, customer, words):
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=customer)['access']}")
    response = api_client.post("/api/tts/", {"text": "我们代开发票"}, format="json")
    assert response.status_code == 400 and response.json()["error"]["code"] == "sensitive_text"

    _, raw = api_key_create(
        name="openai-client", scopes=["tts"], allowed_ips="", rate_limit="100/m", created_by=None
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    response = api_client.post(
        "/v1/audio/speech", {"model": "tts-1", "input": "代开发票", "voice": "alloy"}, format="json"
    )
    assert response.status_code == 400
    assert "sensitive_text" in response.content.decode()


def test_the_word_list_reloads_through_the_shared_version_key(django_capture_on_commit_callbacks):
    assert not moderation_matcher().check("退款太慢了，垃圾").flagged
    before = cache.get(MODERATION_VERSION_KEY) or 0
    with django_capture_on_commit_callbacks(execute=True):
        ModerationWord.objects.create(word="垃圾", category="insult", action="mask")
    # Another process sees the bumped key on its next check and rebuilds its automaton.
    assert int(cache.get(MODERATION_VERSION_KEY)) > int(before)
    assert moderation_matcher().check("退款太慢了，垃圾").masked_text == "退款太慢了，**"
    word = ModerationWord.objects.get(word="垃圾")
    with django_capture_on_commit_callbacks(execute=True):
        word.is_active = False
        word.save()
    assert not moderation_matcher().check("垃圾").flagged


def test_moderation_import_command(tmp_path, django_capture_on_commit_callbacks):
    source = tmp_path / "words.txt"
    source.write_text(
        "# list\n赌博\tgambling\tblock\n傻瓜\n\nＶＰＮ\tpolitics\tflag\n", encoding="utf-8"
    )
    out = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("moderation_import", str(source), "--category", "insult", stdout=out)
    assert "3 words added" in out.getvalue()
    assert ModerationWord.objects.get(word="傻瓜").category == "insult"
    assert ModerationWord.objects.get(word="赌博").action == "block"
    assert moderation_matcher().check("用vpn赌 博").blocked
    bad = tmp_path / "bad.txt"
    bad.write_text("词\tc\tdelete\n", encoding="utf-8")
    with pytest.raises(Exception, match="line 1"):
        call_command("moderation_import", str(bad), stdout=io.StringIO())
