"""Admin pages, role permissions, the read-only audit log, CSV export and retention."""

import io
from datetime import timedelta

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from dialogs.models import CannedPhrase, Intent
from dialogs.services.messages import agent_reply_create, customer_message_create
from tts.models import EmotionPreset, SynthesisRecord

pytestmark = pytest.mark.django_db

MY_APPS = {"dialogs", "tts"}


@pytest.fixture
def superuser(db):
    return UserFactory(is_staff=True, is_superuser=True, role="admin")


@pytest.fixture
def some_data(conversation, customer, agent):
    customer_message_create(conversation=conversation, author=customer, text="请问怎么退款")
    agent_reply_create(conversation=conversation, agent=agent, short_code="refund")
    SynthesisRecord.objects.create(
        source="reply", text_excerpt="好的", text_digest="d" * 64, status="ok", user=agent
    )


def _registered():
    return [
        (model, model_admin)
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in MY_APPS
    ]


def test_every_admin_page_renders(client, superuser, some_data):
    client.force_login(superuser)
    assert client.get(reverse("admin:index")).status_code == 200
    for model, _model_admin in _registered():
        opts = model._meta
        changelist = reverse(f"admin:{opts.app_label}_{opts.model_name}_changelist")
        response = client.get(changelist)
        assert response.status_code == 200, changelist
        obj = model._default_manager.first()
        if obj is not None:
            change = reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk])
            assert client.get(change).status_code == 200, change
        add = client.get(reverse(f"admin:{opts.app_label}_{opts.model_name}_add"))
        assert add.status_code in (200, 403), opts.model_name


def test_the_conversation_page_shows_messages_and_the_history_page_renders(
    client, superuser, some_data, conversation
):
    client.force_login(superuser)
    page = client.get(reverse("admin:dialogs_conversation_change", args=[conversation.pk]))
    assert "请问怎么退款" in page.content.decode()
    phrase = CannedPhrase.objects.get(short_code="refund")
    history = client.get(reverse("admin:dialogs_cannedphrase_history", args=[phrase.pk]))
    assert history.status_code == 200


def test_an_agent_can_view_but_not_edit_phrases(client, agent):
    client.force_login(agent)
    phrase = CannedPhrase.objects.get(short_code="hello")
    assert client.get(reverse("admin:dialogs_cannedphrase_changelist")).status_code == 200
    change_url = reverse("admin:dialogs_cannedphrase_change", args=[phrase.pk])
    response = client.post(change_url, {"short_code": "hello", "title": "x", "text": "改掉"})
    phrase.refresh_from_db()
    assert phrase.text != "改掉"
    assert response.status_code in (200, 403)  # a read-only page, never a save
    assert client.get(reverse("admin:dialogs_cannedphrase_add")).status_code == 403
    assert client.get(reverse("admin:dialogs_intent_add")).status_code == 403
    delete_url = reverse("admin:dialogs_cannedphrase_delete", args=[phrase.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert CannedPhrase.objects.filter(pk=phrase.pk).exists()
    assert client.get(reverse("admin:tts_synthesisrecord_changelist")).status_code == 403


def test_a_supervisor_manages_intents(client, supervisor):
    client.force_login(supervisor)
    response = client.post(
        reverse("admin:dialogs_intent_add"),
        {
            "name": "shipping",
            "label": "物流",
            "keywords": "快递\n物流",
            "patterns": "",
            "priority": 60,
            "is_active": "on",
        },
    )
    assert response.status_code == 302
    intent = Intent.objects.get(name="shipping")
    assert intent.history.latest().history_user == supervisor
    # The change history is readable by supervisors.
    assert client.get(reverse("admin:dialogs_historicalintent_changelist")).status_code == 200


def test_audit_rows_cannot_be_added_changed_or_deleted_even_by_a_superuser(
    client, superuser, some_data
):
    client.force_login(superuser)
    record = SynthesisRecord.objects.first()
    change_url = reverse("admin:tts_synthesisrecord_change", args=[record.pk])
    assert client.get(change_url).status_code == 200  # read-only view
    assert client.post(change_url, {"status": "failed"}).status_code == 403
    record.refresh_from_db()
    assert record.status == "ok"
    delete_url = reverse("admin:tts_synthesisrecord_delete", args=[record.pk])
    assert client.post(delete_url, {"post": "yes"}).status_code == 403
    assert client.get(reverse("admin:tts_synthesisrecord_add")).status_code == 403
    Intent.objects.first().save()  # seeded rows have no history yet
    history = Intent.history.first()
    hist_delete = reverse("admin:dialogs_historicalintent_delete", args=[history.pk])
    assert client.post(hist_delete, {"post": "yes"}).status_code == 403
    assert Intent.history.filter(pk=history.pk).exists()


def test_audit_filters_and_csv_export(client, superuser, some_data, agent):
    client.force_login(superuser)
    changelist = reverse("admin:tts_synthesisrecord_changelist")
    assert (
        client.get(changelist, {"status__exact": "ok", "user__id__exact": agent.pk}).status_code
        == 200
    )
    ids = list(SynthesisRecord.objects.values_list("pk", flat=True))
    response = client.post(changelist, {"action": "export_csv", "_selected_action": ids})
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    # Column titles in the admin's language, times in local time without an offset.
    assert body.splitlines()[0].startswith("时间,来源,状态,用户")
    assert "+00:00" not in body and "+08:00" not in body
    assert "好的" in body
    phrase = CannedPhrase.objects.get(short_code="hello")
    for title in ("问候语", "问候二"):  # seeded rows have no history: two edits make a diff
        phrase.title = title
        phrase.save()
    history = reverse("admin:dialogs_historicalcannedphrase_changelist")
    hist_ids = list(CannedPhrase.history.values_list("pk", flat=True))
    response = client.post(history, {"action": "export_history_csv", "_selected_action": hist_ids})
    body = b"".join(response.streaming_content).decode("utf-8-sig")
    assert body.startswith("时间,变更类型,修改人")
    assert "标题: '问候语' -> '问候二'" in body


def test_audit_prune_deletes_only_old_rows(some_data):
    old = SynthesisRecord.objects.first()
    SynthesisRecord.objects.filter(pk=old.pk).update(
        created_at=timezone.now() - timedelta(days=100)
    )
    fresh = SynthesisRecord.objects.create(
        source="api", text_excerpt="新", text_digest="e" * 64, status="ok"
    )
    Intent.objects.first().save()
    Intent.history.update(history_date=timezone.now() - timedelta(days=100))
    preset = EmotionPreset.objects.get(name="calm")
    preset.description = "edited"
    preset.save()  # a fresh history row
    out = io.StringIO()
    call_command("audit_prune", "--older-than", "90", stdout=out)
    assert not SynthesisRecord.objects.filter(pk=old.pk).exists()
    assert SynthesisRecord.objects.filter(pk=fresh.pk).exists()
    assert not Intent.history.exists()
    assert preset.history.filter(description="edited").exists()
    assert "Deleted" in out.getvalue()


@pytest.mark.slow
def test_preset_preview_returns_audio(client, supervisor):
    client.force_login(supervisor)
    preset = EmotionPreset.objects.get(name="warm")
    response = client.get(
        reverse("admin:tts_emotionpreset_preview", args=[preset.pk]), {"text": "您好。"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert len(b"".join(response.streaming_content)) > 1000
    assert SynthesisRecord.objects.filter(source="preview", user=supervisor).exists()


FORMULAS = ['=HYPERLINK("http://evil","x")', "+cmd|' /C calc'!A0", "-2+3", "@SUM(1,1)"]


def _csv_cells(response) -> list[str]:
    import csv

    body = b"".join(response.streaming_content).decode("utf-8-sig")
    return [cell for row in csv.reader(io.StringIO(body)) for cell in row]


def test_csv_exports_neutralise_formulas_in_every_cell(client, superuser, tmp_path, settings):
    # Issue 13, item 8: text customers typed must not run as a spreadsheet formula.
    from django.core.files.base import ContentFile

    from tts.models import AudioClip, Voice

    settings.MEDIA_ROOT = str(tmp_path)
    voice = Voice.objects.get(engine_voice_id="baker")
    for n, formula in enumerate(FORMULAS):
        SynthesisRecord.objects.create(
            source="api", text_excerpt=formula, text_digest=f"{n}" * 64, status="ok"
        )
        clip = AudioClip(
            cache_key=f"{n}" * 64,
            text=formula,
            emotion="",
            voice=voice,
            engine_version="=1+1",
            format="wav",
            duration_ms=1,
            size_bytes=1,
        )
        clip.file.save(f"{n}.wav", ContentFile(b"RIFF"), save=False)
        clip.save()
    client.force_login(superuser)
    for model in (SynthesisRecord, AudioClip):
        changelist = reverse(f"admin:tts_{model._meta.model_name}_changelist")
        ids = list(model.objects.values_list("pk", flat=True))
        cells = _csv_cells(
            client.post(changelist, {"action": "export_csv", "_selected_action": ids})
        )
        for formula in FORMULAS:
            assert "'" + formula in cells, model  # still there, as text
        assert not [c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], model


# --- issue 13, item 1: messages are facts, a conversation's customer never changes --------------


def _message_form(conversation, author, text="我是另一个客户，请把我的卡号发给我"):
    return {
        "conversation": conversation.pk,
        "sender_kind": "customer",
        "author": author.pk,
        "text": text,
        "audio_status": "none",
    }


def test_no_role_can_forge_a_message_in_the_admin(client, agent, supervisor, superuser, customer):
    from accounts.tests.factories import CustomerFactory
    from dialogs.models import Message
    from dialogs.services.conversations import conversation_create

    other = CustomerFactory()
    victims_chat = conversation_create(customer=other)
    for user in (agent, supervisor, superuser):
        client.force_login(user)
        before = Message.objects.count()
        response = client.post(
            reverse("admin:dialogs_message_add"), _message_form(victims_chat, other)
        )
        assert response.status_code == 403, user.role
        assert Message.objects.count() == before


def test_no_role_can_edit_a_message_in_the_admin(client, agent, supervisor, superuser, some_data):
    from dialogs.models import Message

    message = Message.objects.filter(sender_kind="customer").first()
    url = reverse("admin:dialogs_message_change", args=[message.pk])
    for user in (agent, supervisor, superuser):
        client.force_login(user)
        client.post(url, _message_form(message.conversation, message.author, "改过的内容"))
        message.refresh_from_db()
        assert message.text == "请问怎么退款", user.role
    client.force_login(superuser)
    assert client.get(url).status_code == 200  # still readable


def test_no_role_can_move_a_conversation_to_another_customer(
    client, agent, supervisor, superuser, conversation, customer, some_data
):
    from accounts.tests.factories import CustomerFactory

    intruder = CustomerFactory()
    url = reverse("admin:dialogs_conversation_change", args=[conversation.pk])
    form = {
        "customer": intruder.pk,
        "status": "open",
        "priority": conversation.priority,
        "messages-TOTAL_FORMS": "0",
        "messages-INITIAL_FORMS": "0",
    }
    for user in (agent, supervisor, superuser):
        client.force_login(user)
        client.post(url, form)
        conversation.refresh_from_db()
        assert conversation.customer_id == customer.pk, user.role
    client.force_login(agent)
    assert client.post(url, form).status_code == 403  # agents only look, in the admin
    assert client.get(reverse("admin:dialogs_conversation_add")).status_code == 403


def test_admin_grants_per_role():
    from django.contrib.auth.models import Group

    def grants(name):
        return set(Group.objects.get(name=name).permissions.values_list("codename", flat=True))

    agents, supervisors = grants("agents"), grants("supervisors")
    for action in ("add", "change", "delete"):
        assert f"{action}_message" not in agents | supervisors
        assert f"{action}_conversation" not in agents
    assert "change_conversation" in supervisors
    assert {"add_conversation", "delete_conversation"}.isdisjoint(supervisors)
    assert {"view_conversation", "view_message"} <= agents
    # Neither role touches accounts, API keys or login events.
    assert not {c for c in agents | supervisors if c.endswith(("_user", "_apikey", "_authevent"))}


def test_the_migration_takes_back_old_grants():
    import importlib

    from django.apps import apps
    from django.contrib.auth.models import Group, Permission

    migration = importlib.import_module("dialogs.migrations.0007_staff_groups_messages_are_facts")
    agents = Group.objects.get(name="agents")
    supervisors = Group.objects.get(name="supervisors")
    old = Permission.objects.filter(
        content_type__app_label="dialogs",
        codename__in=["add_message", "change_conversation", "delete_conversation"],
    )
    agents.permissions.add(*old)
    supervisors.permissions.add(*old)

    migration.revoke(apps, None)
    migration.grant_supervisors_change(apps, None)

    assert not agents.permissions.filter(pk__in=old).exists()
    assert set(supervisors.permissions.filter(pk__in=old).values_list("codename", flat=True)) == {
        "change_conversation"
    }
