"""Signed clip URLs: the token must name one clip completely (item 3 of issue 13)."""

import time

import pytest
from django.core import signing

from tts import selectors
from tts.models import AudioClip, Voice


@pytest.fixture
def clip(db, tmp_path, settings):
    settings.MEDIA_ROOT = str(tmp_path)
    from django.core.files.base import ContentFile

    clip = AudioClip(
        cache_key="ab" * 32,
        text="测试",
        voice=Voice.objects.get(engine_voice_id="baker"),
        engine_version="v",
        format="wav",
        duration_ms=10,
        size_bytes=4,
    )
    clip.file.save("t.wav", ContentFile(b"RIFF"), save=False)
    clip.save()
    return clip


def _forge(payload: dict) -> str:
    return signing.dumps(payload, salt=selectors._CLIP_SALT)


def test_a_real_token_names_its_clip(clip):
    assert selectors.clip_from_token(selectors.clip_token(clip)) == clip


@pytest.mark.parametrize("key", ["", "ab", None, 0, "ab" * 8 + "x", "cd" * 8])
def test_a_token_with_an_empty_short_or_wrong_clip_key_does_not_pass(clip, key):
    token = _forge({"c": clip.pk, "k": key, "x": int(time.time()) + 60})

    assert selectors.clip_from_token(token) is None


def test_a_token_with_a_non_integer_expiry_or_id_does_not_pass(clip):
    future = int(time.time()) + 60
    assert selectors.clip_from_token(_forge({"c": clip.pk, "k": "ab" * 8, "x": "9" * 12})) is None
    assert (
        selectors.clip_from_token(_forge({"c": str(clip.pk), "k": "ab" * 8, "x": future})) is None
    )
