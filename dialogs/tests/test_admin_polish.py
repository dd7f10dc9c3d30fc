"""The admin in Chinese, readable and complete: site link, icon, labels, CSV, lexicon checks."""

import pytest
from django.urls import reverse
from rest_framework_simplejwt.tokens import RefreshToken

from accounts.tests.factories import CustomerFactory, UserFactory
from dialogs.models import CsatResponse, Intent
from dialogs.services.conversations import conversation_create
from dialogs.services.messages import customer_message_create
from tts.models import EmotionPreset, PronunciationEntry, SynthesisRecord

pytestmark = pytest.mark.django_db


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, role="admin")


def _text(response) -> str:
    return response.content.decode()


def test_the_site_root_and_view_site_link_lead_to_the_console(client, superuser):
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == "/console/"
    client.force_login(superuser)
    index = _text(client.get(reverse("admin:index")))
    assert 'href="/console/"' in index  # 查看站点
    assert "客服语音平台" in index


def test_the_favicon_is_served_as_png_and_svg(client):
    ico = client.get("/favicon.ico")
    assert ico.status_code == 200
    assert ico["Content-Type"] == "image/png"
    assert ico.content.startswith(b"\x89PNG\r\n\x1a\n")
    svg = client.get("/favicon.svg")
    assert svg["Content-Type"] == "image/svg+xml"
    assert b"<svg" in svg.content


def test_the_admin_index_and_history_lists_have_no_english_labels(client, superuser):
    client.force_login(superuser)
    index = _text(client.get(reverse("admin:index")))
    for english in ("Token Blacklist", ">historical", "Historical", "Outstanding Token"):
        assert english not in index, english
    assert "令牌黑名单" in index
    assert "意图变更记录" in index
    Intent.objects.first().save()  # one history row, so the list has columns
    history = _text(client.get(reverse("admin:dialogs_historicalintent_changelist")))
    for english in ("History date", "History type", "History user", ">historical"):
        assert english not in history, english
    assert "变更类型" in history and "修改人" in history
    RefreshToken.for_user(superuser)  # an outstanding token, so the list has columns
    tokens = _text(client.get(reverse("admin:token_blacklist_outstandingtoken_changelist")))
    assert "Jti" not in tokens and "Expires at" not in tokens
    assert "过期时间" in tokens


def test_the_phrase_widget_strings_are_translated(client, superuser):
    client.force_login(superuser)
    catalog = _text(client.get(reverse("admin:jsi18n")))
    assert "\\u5168\\u9009%s" in catalog or "全选%s" in catalog  # "Choose all %s"


def test_seeded_preset_descriptions_are_chinese():
    calm = EmotionPreset.objects.get(name="calm")
    assert calm.description == "更慢、更低、更柔和：用于投诉。"


def test_synthesis_records_show_the_emotion_label_and_export_local_times(client, superuser):
    SynthesisRecord.objects.create(
        source="reply", text_excerpt="好的", text_digest="d" * 64, status="ok", emotion="calm"
    )
    client.force_login(superuser)
    changelist = reverse("admin:tts_synthesisrecord_changelist")
    page = _text(client.get(changelist))
    assert "平和安抚" in page
    assert ">calm<" not in page
    ids = list(SynthesisRecord.objects.values_list("pk", flat=True))
    response = client.post(changelist, {"action": "export_csv", "_selected_action": ids})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    row = body.splitlines()[1]
    assert "平和安抚" in row and ",calm," not in row
    assert "+00:00" not in row and "T" not in row.split(",")[0]


def test_the_conversation_page_shows_names_not_the_openid(client, superuser):
    customer = CustomerFactory(username="wx_oAbCdEf123456")
    customer.customer_profile.openid = "oAbCdEf123456"
    customer.customer_profile.nickname = "张女士"
    customer.customer_profile.save()
    conversation = conversation_create(customer=customer)
    customer_message_create(conversation=conversation, author=customer, text="请问营业时间")
    client.force_login(superuser)
    page = _text(client.get(reverse("admin:dialogs_conversation_change", args=[conversation.pk])))
    assert "oAbCdEf123456" not in page
    assert "张女士" in page
    assert "min-width:18em" in page  # the text column keeps a readable width
    listing = _text(client.get(reverse("admin:dialogs_conversation_changelist")))
    assert "oAbCdEf123456" not in listing


def test_workflow_audit_and_csat_filter_name_people_not_usernames(client, superuser, agent):
    from dialogs.models import AgentProfile, ConversationAction, ConversationEvent

    AgentProfile.objects.create(user=agent, display_name="客服小李")
    customer = CustomerFactory(username="wx_oAbCdEf123456")
    customer.customer_profile.nickname = "张女士"
    customer.customer_profile.save()
    conversation = conversation_create(customer=customer)
    ConversationEvent.objects.create(
        conversation=conversation, action=ConversationAction.AUTO_ASSIGNED, to_agent=agent
    )
    ConversationEvent.objects.create(
        conversation=conversation, action=ConversationAction.CSAT, actor=customer, note="5"
    )
    CsatResponse.objects.create(conversation=conversation, agent=agent, rating=5)
    client.force_login(superuser)
    events = _text(client.get(reverse("admin:dialogs_conversationevent_changelist")))
    assert "oAbCdEf123456" not in events
    assert "张女士" in events and "客服小李" in events and "系统" in events
    csat = _text(client.get(reverse("admin:dialogs_csatresponse_changelist")))
    filter_box = csat[csat.index('id="changelist-filter"') :]
    assert "客服小李" in filter_box and agent.username not in filter_box


def test_lexicon_pinyin_needs_tone_numbers(client, superuser):
    client.force_login(superuser)
    add = reverse("admin:tts_pronunciationentry_add")
    response = client.post(add, {"word": "重庆", "pinyin": "chong qing", "note": ""})
    assert response.status_code == 200
    assert "声调数字" in _text(response)
    assert not PronunciationEntry.objects.filter(word="重庆").exists()
    response = client.post(add, {"word": "重庆", "pinyin": "chong2", "note": ""})
    assert "每个字一个音节" in _text(response)
    response = client.post(add, {"word": "重庆", "pinyin": "Chong2  Qing4", "note": ""})
    assert response.status_code == 302
    entry = PronunciationEntry.objects.get(word="重庆")
    assert entry.pinyin == "chong2 qing4"
    change = _text(client.get(reverse("admin:tts_pronunciationentry_change", args=[entry.pk])))
    assert reverse("admin:tts_pronunciationentry_preview", args=[entry.pk]) in change


def test_csat_admin_summarises_per_agent_and_week_and_exports(client, superuser, agent, customer):
    conversation = conversation_create(customer=customer)
    CsatResponse.objects.create(conversation=conversation, agent=agent, rating=4, comment="不错")
    client.force_login(superuser)
    page = _text(client.get(reverse("admin:dialogs_csatresponse_changelist")))
    assert "按客服" in page and "按周" in page
    assert agent.display_name in page and "4.0" in page
    report = client.get(reverse("admin:dialogs_csatresponse_report_csv"))
    body = b"".join(report.streaming_content).decode("utf-8-sig")
    assert body.splitlines()[0].startswith("组,")
    assert agent.display_name in body
    assert agent.username not in body or agent.username in agent.display_name


def test_every_admin_label_of_our_apps_is_translated():
    """Model names, field labels, help texts and choices the admin shows for our apps have a
    Chinese translation: an English word left in the Chinese admin is a missing msgid."""
    import re

    from django.contrib import admin
    from django.utils import translation

    def texts(model):
        meta = model._meta
        yield f"{meta.label} name", meta.verbose_name
        yield f"{meta.label} plural", meta.verbose_name_plural
        for field in meta.get_fields():
            if field.auto_created and not field.concrete:
                continue  # reverse relations: named by the other side
            yield f"{meta.label}.{field.name}", getattr(field, "verbose_name", "")
            yield f"{meta.label}.{field.name} help", getattr(field, "help_text", "")
            for _value, label in getattr(field, "flatchoices", None) or []:
                yield f"{meta.label}.{field.name} choice", label

    untranslated = []
    for model in admin.site._registry:
        if model._meta.app_label not in ("accounts", "dialogs", "tts"):
            continue
        if model.__name__.startswith("Historical"):
            continue  # simple_history's own columns: the history admin names them (above)
        for where, text in texts(model):
            with translation.override("en"):
                english = str(text)
            with translation.override("zh-hans"):
                chinese = str(text)
            # Names (Baker, IndexTTS2), codes and units stay as they are; words do not.
            if re.search(r"\b[a-z]{3,}\b", english) and chinese == english:
                untranslated.append(f"{where}: {english}")
    assert not untranslated, untranslated


def test_the_user_add_page_and_emotion_rules_read_in_chinese(client, superuser):
    client.force_login(superuser)
    add = _text(client.get(reverse("admin:accounts_user_add")))
    assert "After you" not in add
    assert "创建用户后，您可以编辑更多用户选项。" in add
    rules = _text(client.get(reverse("admin:dialogs_emotionrule_changelist")))
    assert "投诉 → 平和安抚" in rules  # labels, not "complaint → calm"
    assert "complaint → calm" not in rules
