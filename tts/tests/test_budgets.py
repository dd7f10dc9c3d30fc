"""Issue 13, item 2: one account cannot exhaust the synthesis workers or the disk. Budgets in
characters actually synthesised, one synthesis at a time per account, a size sanity check before
any CPU is spent, per-user and total clip storage caps with LRU eviction, and fair queuing."""

import threading
import time

import pytest

from accounts.services import tokens_for_user
from accounts.tests.factories import CustomerFactory
from tts.budgets import speech_slot
from tts.engine.synthesizer import FairLock
from tts.models import AudioClip, SynthesisRecord

pytestmark = pytest.mark.django_db


def _tts(client, user, text, **body):
    return client.post(
        "/api/tts/",
        {"text": text, **body},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {tokens_for_user(user=user)['access']}",
    )


def test_the_budget_counts_characters_synthesised_not_requests(api_client, engine, settings):
    settings.TTS_CHAR_BUDGET = "12/h"
    abuser, other = CustomerFactory(), CustomerFactory()

    first = _tts(api_client, abuser, "您好，欢迎。")  # 6 characters
    second = _tts(api_client, abuser, "谢谢，再见。")  # 12 in all
    third = _tts(api_client, abuser, "请稍等。")  # over
    repeat = _tts(api_client, abuser, "您好，欢迎。")  # a cache hit: no work, no charge
    bystander = _tts(api_client, other, "请稍等。")

    assert first.status_code == second.status_code == 200
    assert third.status_code == 429, third.content
    assert third.json()["error"]["code"] == "tts_budget_exceeded"
    assert 0 < int(third["Retry-After"]) <= 3600
    assert repeat.status_code == 200
    assert bystander.status_code == 200  # budgets are per account


def test_one_synthesis_at_a_time_per_account(api_client, engine):
    customer, other = CustomerFactory(), CustomerFactory()

    # Another process is synthesising for this customer right now (the slot is shared in Redis).
    with speech_slot(subject=f"user:{customer.pk}"):
        busy = _tts(api_client, customer, "您好。")
        free = _tts(api_client, other, "您好。")
    after = _tts(api_client, customer, "您好。")

    assert busy.status_code == 429 and busy.json()["error"]["code"] == "tts_busy"
    assert free.status_code == 200
    assert after.status_code == 200  # the slot came back


def test_an_oversized_wav_is_refused_before_any_work(api_client, engine):
    customer = CustomerFactory()
    started = time.monotonic()

    response = _tts(api_client, customer, "1" * 2000, format="wav")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["text"]  # a field error: shorten it, or use mp3
    assert time.monotonic() - started < 5  # nothing was synthesised (19 s of CPU before)
    assert not AudioClip.objects.exists()
    record = SynthesisRecord.objects.get()
    assert (record.status, record.error) == ("rejected", "audio_too_large")
    # The same text as MP3 is within the size cap (the budget still applies to it).
    assert _tts(api_client, customer, "1" * 10, format="mp3").status_code == 200


def test_clip_storage_is_capped_per_user_and_in_total_least_recently_used_first(
    api_client, engine, settings, tmp_path
):
    settings.MEDIA_ROOT = str(tmp_path)
    customer = CustomerFactory()
    texts = ["您好。", "谢谢。", "再见。"]
    _tts(api_client, customer, texts[0])
    one_clip = AudioClip.objects.get().size_bytes
    settings.TTS_USER_CLIP_STORAGE_BYTES = int(one_clip * 2.5)

    for text in texts[1:]:
        _tts(api_client, customer, text)

    kept = AudioClip.objects.filter(scope=f"user:{customer.pk}")
    assert kept.count() == 2
    assert sum(kept.values_list("size_bytes", flat=True)) <= settings.TTS_USER_CLIP_STORAGE_BYTES
    assert "您好" not in "".join(kept.values_list("text", flat=True))  # the oldest went
    assert len(list(tmp_path.rglob("*.mp3"))) == 2  # and its file with it

    settings.TTS_CLIP_STORAGE_BYTES = int(one_clip * 1.5)
    _tts(api_client, CustomerFactory(), "请稍等。")
    assert AudioClip.objects.count() == 1  # the whole cache is capped too


def test_the_engine_lock_serves_waiters_in_arrival_order():
    lock = FairLock()
    order = []
    lock.__enter__()  # held: everyone below queues
    threads = []
    for n in range(5):
        thread = threading.Thread(
            target=lambda n=n: (lock.__enter__(), order.append(n), lock.__exit__())
        )
        thread.start()
        threads.append(thread)
        time.sleep(0.05)  # arrive in order 0..4
    # The holder releases and asks again at once: it must queue behind the five.
    lock.__exit__()
    lock.__enter__()
    order.append("holder")
    lock.__exit__()
    for thread in threads:
        thread.join(5)

    assert order == [0, 1, 2, 3, 4, "holder"]
