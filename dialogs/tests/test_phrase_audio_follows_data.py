"""Canned phrase audio follows the data, whoever writes it: not only admin saves re-render.

tts announces preset and lexicon changes with signals (it never imports dialogs); dialogs
subscribes and queues the affected phrases after commit.
"""

import pytest

from dialogs.models import CannedPhrase
from dialogs.rules_version import rules_version_bump
from dialogs.services.phrases import phrase_rendering_paused
from tts.engine.frontend import lexicon_fingerprint, normalise_text
from tts.models import AudioClip, PronunciationEntry

pytestmark = pytest.mark.django_db


@pytest.fixture
def only_new_phrases(db):
    # Seeded phrases would be re-rendered by preset edits too; keep each test's work small.
    CannedPhrase.objects.update(is_active=False)


@pytest.fixture
def phrase(presets, only_new_phrases, django_capture_on_commit_callbacks):
    with phrase_rendering_paused():
        phrase = CannedPhrase.objects.create(short_code="cq", title="重庆", text="重庆仓发货。")
        phrase.emotions.set([presets["neutral"]])
    return phrase


def _queued(capture, write) -> int:
    """How many renderings `write()` queued or announced for after commit (the rules-cache
    version bump that any phrase or preset save also leaves is not one)."""
    with capture(execute=False) as callbacks:
        write()
    return sum(1 for callback in callbacks if callback is not rules_version_bump)


def test_adding_an_emotion_outside_the_admin_queues_rendering(
    phrase, presets, django_capture_on_commit_callbacks
):
    assert _queued(django_capture_on_commit_callbacks, lambda: phrase.emotions.add(presets["calm"]))


def test_a_text_edit_queues_rendering_and_a_title_edit_does_not(
    phrase, django_capture_on_commit_callbacks
):
    def retitle():
        phrase.title = "重庆发货"
        phrase.save()

    def reword():
        phrase.text = "重庆仓今天发货。"
        phrase.save()

    assert _queued(django_capture_on_commit_callbacks, retitle) == 0
    assert _queued(django_capture_on_commit_callbacks, reword) == 1


def test_a_preset_saved_without_control_changes_announces_nothing(
    presets, django_capture_on_commit_callbacks
):
    calm = presets["calm"]

    def relabel():
        calm.description = "安抚"
        calm.save()

    def slow_down():
        calm.speed = 0.7 if calm.speed != 0.7 else 0.8
        calm.save()

    assert _queued(django_capture_on_commit_callbacks, relabel) == 0
    assert _queued(django_capture_on_commit_callbacks, slow_down) == 1


def test_a_bulk_paused_load_queues_nothing(presets, django_capture_on_commit_callbacks):
    def load():
        with phrase_rendering_paused():
            for i in range(3):
                p = CannedPhrase.objects.create(short_code=f"bulk{i}", title="t", text=f"第{i}句。")
                p.emotions.set([presets["warm"]])

    assert _queued(django_capture_on_commit_callbacks, load) == 0


@pytest.mark.slow
def test_a_lexicon_entry_created_by_a_script_re_renders_the_phrase(
    phrase, engine, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        PronunciationEntry.objects.create(word="重庆", pinyin="chong2 qing4")

    clips = AudioClip.objects.filter(text=normalise_text("重庆仓发货。").strip(), emotion="neutral")
    assert clips.exclude(lexicon_fingerprint=lexicon_fingerprint({})).exists()
