"""Audio on shared object storage (S3 API served by moto on loopback) and the delivery modes
of the signed audio URL: our token check first, then Nginx (X-Accel-Redirect) or a presigned
URL moves the bytes. Lost files are rendered again, never a 500."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest
from django.core.files.storage import default_storage
from django.test import override_settings

from tts import selectors, services
from tts.models import AudioClip, EmotionPreset

from .s3_server import S3Server

pytestmark = pytest.mark.django_db
TEXT = "您好。"  # short: every test synthesises


@pytest.fixture(scope="module")
def s3():
    with S3Server() as server:
        yield server


@pytest.fixture
def bucket(s3):
    name = f"audio-{uuid.uuid4().hex[:12]}"
    s3.client().create_bucket(Bucket=name)
    with override_settings(**s3.settings(name)):
        yield name


def _clip(engine) -> AudioClip:
    calm = EmotionPreset.objects.get(name="calm")
    return services.speech_clip_get_or_create(text=TEXT, preset=calm, source="api").clip


def _keys(s3, bucket: str) -> list[str]:
    listing = s3.client().list_objects_v2(Bucket=bucket)
    return [item["Key"] for item in listing.get("Contents", [])]


def test_clips_are_written_to_the_bucket_and_reused_from_it(engine, s3, bucket):
    first = services.speech_clip_get_or_create(text=TEXT, source="api")
    again = services.speech_clip_get_or_create(text=TEXT, source="api")

    assert (first.cache_hit, again.cache_hit) == (False, True)
    assert _keys(s3, bucket) == [first.clip.file.name]
    body = s3.client().get_object(Bucket=bucket, Key=first.clip.file.name)["Body"].read()
    assert body[0] == 0xFF and body[1] & 0xE0 == 0xE0  # an MP3 frame header
    assert len(body) == first.clip.size_bytes


def test_the_signed_url_redirects_to_a_short_lived_presigned_url(engine, client, s3, bucket):
    clip = _clip(engine)

    response = client.get(selectors.clip_url(clip))

    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(f"{s3.endpoint_url}/{bucket}/{clip.file.name}?")
    assert "X-Amz-Expires=60" in location and "X-Amz-Signature=" in location
    assert response["Cache-Control"] == "private, max-age=0"
    fetched = httpx.get(location)
    assert fetched.status_code == 200 and len(fetched.content) == clip.size_bytes
    # Without the signature the object store refuses: the bucket is not public.
    assert httpx.get(location.split("?")[0]).status_code == 403


def test_a_bad_token_never_reaches_the_object_store(engine, client, s3, bucket):
    clip = _clip(engine)
    token = selectors.clip_token(clip)

    response = client.get(f"/media/audio/{token[:-2]}xx")

    assert response.status_code == 404 and "Location" not in response
    assert response.json()["error"]["code"] == "not_found"


def test_accel_mode_hands_nginx_a_presigned_path_on_the_store(engine, client, s3, bucket):
    clip = _clip(engine)

    with override_settings(AUDIO_DELIVERY="accel"):
        response = client.get(selectors.clip_url(clip))

    assert response.status_code == 200 and response.content == b""
    target = response["X-Accel-Redirect"]
    assert target.startswith(f"/_protected/s3/{bucket}/{clip.file.name}?X-Amz-")
    # What Nginx's `location /_protected/s3/ { proxy_pass <endpoint>/; }` fetches:
    fetched = httpx.get(s3.endpoint_url + target.removeprefix("/_protected/s3"))
    assert fetched.status_code == 200 and len(fetched.content) == clip.size_bytes


def test_pruning_deletes_the_objects_of_stale_clips(engine, s3, bucket):
    clip = _clip(engine)
    keep = services.speech_clip_get_or_create(text="谢谢。", source="api").clip
    AudioClip.objects.filter(pk=clip.pk).update(engine_version="an-older-engine")

    deleted = services.clip_stale_delete()

    assert deleted == 1
    assert _keys(s3, bucket) == [keep.file.name]
    assert list(AudioClip.objects.values_list("pk", flat=True)) == [keep.pk]


def test_a_missing_object_is_rendered_again_not_a_500(engine, client, s3, bucket):
    clip = _clip(engine)
    url = selectors.clip_url(clip)
    s3.client().delete_object(Bucket=bucket, Key=clip.file.name)

    response = client.get(url)

    # The client is told to retry; the restore task (eager in tests) has put the object back.
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "audio_rendering"
    assert response["Retry-After"] == "3"
    assert _keys(s3, bucket) == [clip.file.name]
    again = client.get(url)
    assert again.status_code == 302 and httpx.get(again["Location"]).status_code == 200
    # The same row and name: messages and URLs that point at the clip keep working.
    assert AudioClip.objects.get().pk == clip.pk


def test_a_cache_hit_on_a_missing_object_synthesises_again(engine, s3, bucket):
    clip = _clip(engine)
    s3.client().delete_object(Bucket=bucket, Key=clip.file.name)

    result = services.speech_clip_get_or_create(
        text=TEXT, preset=EmotionPreset.objects.get(name="calm"), source="api"
    )

    assert result.cache_hit is False
    assert _keys(s3, bucket) == [result.clip.file.name]


# --- local disk (the default) -----------------------------------------------------------------


def test_local_accel_mode_names_the_file_under_the_internal_location(engine, client):
    clip = _clip(engine)

    with override_settings(AUDIO_DELIVERY="accel"):
        response = client.get(selectors.clip_url(clip))

    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == f"/_protected/media/{clip.file.name}"
    assert response["Content-Type"] == "audio/mpeg"
    assert Path(default_storage.path(clip.file.name)).is_file()


def test_local_accel_mode_renders_a_lost_file_again(engine, client):
    clip = _clip(engine)
    Path(default_storage.path(clip.file.name)).unlink()

    with override_settings(AUDIO_DELIVERY="accel"):
        first = client.get(selectors.clip_url(clip))
        second = client.get(selectors.clip_url(clip))

    assert first.status_code == 404 and first.json()["error"]["code"] == "audio_rendering"
    assert second.status_code == 200
    assert second["X-Accel-Redirect"] == f"/_protected/media/{clip.file.name}"
