"""Precompute on save, the management command, and re-rendering after edits (staleness)."""

import io

import pytest
from django.core.management import call_command
from django.urls import reverse

from dialogs.models import CannedPhrase
from dialogs.services.phrases import phrase_precompute_items
from tts.engine.frontend import normalise_text
from tts.models import AudioClip, EmotionPreset, SynthesisRecord

pytestmark = [pytest.mark.django_db, pytest.mark.slow]


@pytest.fixture
def only_new_phrases(db):
    # Seeded phrases would be re-rendered by preset edits too; keep each test's synthesis small.
    CannedPhrase.objects.update(is_active=False)


def _clips(text: str, emotion: str):
    return AudioClip.objects.filter(text=normalise_text(text).strip(), emotion=emotion)


def _phrase_form(phrase_code: str, text: str, emotions: list[EmotionPreset]) -> dict:
    return {
        "short_code": phrase_code,
        "title": "稍候",
        "text": text,
        "category": "测试",
        "is_active": "on",
        "emotions": [e.pk for e in emotions],
        "trigger_keywords": "",
    }


def test_saving_a_phrase_in_the_admin_renders_it_and_an_edit_renders_the_new_text(
    client, supervisor, presets, only_new_phrases, django_capture_on_commit_callbacks
):
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:dialogs_cannedphrase_add"),
            _phrase_form("wait", "请稍候。", [presets["calm"]]),
        )
    assert response.status_code == 302, response.content[:2000]
    phrase = CannedPhrase.objects.get(short_code="wait")
    assert _clips("请稍候。", "calm").exists()

    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:dialogs_cannedphrase_change", args=[phrase.pk]),
            _phrase_form("wait", "请您稍候。", [presets["calm"]]),
        )
    assert response.status_code == 302
    assert _clips("请您稍候。", "calm").exists()
    # The change is in the audit history, attributed to the supervisor.
    latest = phrase.history.latest()
    assert latest.history_user == supervisor and latest.text == "请您稍候。"


def test_a_preset_edit_re_renders_its_phrases_with_the_new_controls(
    client, supervisor, presets, only_new_phrases, django_capture_on_commit_callbacks
):
    phrase = CannedPhrase.objects.create(short_code="wait", title="稍候", text="请稍候。")
    phrase.emotions.set([presets["calm"]])
    calm = presets["calm"]
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:tts_emotionpreset_change", args=[calm.pk]),
            {
                "name": calm.name,
                "label": calm.label,
                "speed": "0.85",
                "pitch": calm.pitch,
                "energy": calm.energy,
                "pause": calm.pause,
                "description": calm.description,
            },
        )
    assert response.status_code == 302, response.content[:2000]
    speeds = {round(c.controls["speed"], 2) for c in _clips("请稍候。", "calm")}
    assert 0.85 in speeds


def test_phrases_with_variables_are_not_precomputed(presets):
    phrase = CannedPhrase.objects.create(
        short_code="hi", title="称呼", text="{{customer.nickname}}您好"
    )
    phrase.emotions.set([presets["warm"]])
    assert phrase_precompute_items(phrase=phrase) == []


def test_the_command_renders_all_active_phrases_with_progress(presets, only_new_phrases):
    phrase = CannedPhrase.objects.create(short_code="wait", title="稍候", text="请稍候。")
    phrase.emotions.set([presets["calm"], presets["neutral"]])
    CannedPhrase.objects.create(
        short_code="off", title="停用", text="不要渲染我。", is_active=False
    )
    out = io.StringIO()
    call_command("tts_precompute", "--batch-size", "1", stdout=out)
    output = out.getvalue()
    assert "1/2" in output and "2/2" in output
    assert _clips("请稍候。", "calm").exists() and _clips("请稍候。", "neutral").exists()
    assert not SynthesisRecord.objects.filter(text_excerpt__startswith="不要渲染").exists()


def test_the_admin_bulk_action_queues_precompute(
    client, supervisor, presets, only_new_phrases, django_capture_on_commit_callbacks
):
    phrase = CannedPhrase.objects.create(short_code="wait", title="稍候", text="请稍候。")
    phrase.emotions.set([presets["neutral"]])
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:dialogs_cannedphrase_changelist"),
            {"action": "precompute_selected", "_selected_action": [phrase.pk]},
        )
    assert response.status_code == 302
    assert len(callbacks) >= 1
    assert _clips("请稍候。", "neutral").exists()


def test_a_lexicon_edit_re_renders_the_phrases_that_use_the_word(
    client, supervisor, presets, only_new_phrases, django_capture_on_commit_callbacks
):
    phrase = CannedPhrase.objects.create(short_code="cq", title="重庆", text="重庆仓发货。")
    phrase.emotions.set([presets["neutral"]])
    client.force_login(supervisor)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:tts_pronunciationentry_add"),
            {"word": "重庆", "pinyin": "chong2 qing4", "note": ""},
        )
    assert response.status_code == 302, response.content[:2000]
    clips = _clips("重庆仓发货。", "neutral")
    # Rendered with the entry in its cache key (the lexicon fingerprint is no longer empty).
    assert clips.exclude(lexicon_fingerprint=_clip_fingerprint_without_lexicon()).exists()


def _clip_fingerprint_without_lexicon() -> str:
    from tts.engine.frontend import lexicon_fingerprint

    return lexicon_fingerprint({})
