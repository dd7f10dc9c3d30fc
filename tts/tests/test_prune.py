"""Clip retention in set-based batches: rows first, files after the rows are committed."""

import io

import pytest
from django.core.files.base import ContentFile
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tts import services
from tts.adapters import engine_version
from tts.engine.frontend import lexicon_fingerprint
from tts.models import AudioClip, Voice

pytestmark = pytest.mark.django_db


def _clip(i: int, *, version: str) -> AudioClip:
    clip = AudioClip(
        cache_key=f"{version[:8]}-{i:040d}",
        text=f"您好 {i}",
        voice=Voice.objects.get(is_default=True),
        controls={},
        lexicon_fingerprint=lexicon_fingerprint({}),
        engine_version=version,
        format="mp3",
        duration_ms=1000,
        size_bytes=3,
    )
    clip.file.save(f"prune-{version[:8]}-{i}.mp3", ContentFile(b"ID3"), save=False)
    clip.save()
    return clip


def test_stale_clips_go_in_batches_with_their_files_and_current_ones_stay(monkeypatch):
    monkeypatch.setattr(services, "CLIP_PRUNE_BATCH", 3)
    stale = [_clip(i, version="an-older-engine") for i in range(7)]
    current = [_clip(i, version=engine_version()) for i in range(2)]
    seen = []

    deleted = services.clip_stale_delete(progress=seen.append)

    assert deleted == 7 and seen == [3, 6, 7]
    assert set(AudioClip.objects.values_list("pk", flat=True)) == {c.pk for c in current}
    storage = AudioClip._meta.get_field("file").storage
    assert not any(storage.exists(c.file.name) for c in stale)
    assert all(storage.exists(c.file.name) for c in current)


def test_finding_stale_clips_does_not_cost_a_query_per_clip(monkeypatch):
    monkeypatch.setattr(services, "CLIP_PRUNE_BATCH", 1000)
    for i in range(3):
        _clip(i, version="old")
    with CaptureQueriesContext(connection) as few:
        assert services.clip_stale_delete() == 3
    for i in range(30):
        _clip(i, version="old")
    with CaptureQueriesContext(connection) as many:
        assert services.clip_stale_delete() == 30

    assert len(many.captured_queries) == len(few.captured_queries)


def test_the_command_reports_progress_and_the_total():
    for i in range(2):
        _clip(i, version="old")
    out, err = io.StringIO(), io.StringIO()

    call_command("tts_prune_clips", stdout=out, stderr=err)

    assert "deleted 2 clip(s)" in out.getvalue()
    assert "deleted 2 clip(s)…" in err.getvalue()
