"""HTTP API: /api/tts/ (binary, base64, cache, validation, rate limit), signed clip URLs,
/v1/audio/speech request mapping, and a bounded schemathesis run against /api/schema/."""

import base64
import time

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings

from accounts.services import api_key_create, tokens_for_user
from accounts.tests.factories import CustomerFactory
from tts import selectors
from tts.engine import audio
from tts.models import AudioClip, SynthesisRecord, Voice

pytestmark = pytest.mark.django_db
TEXT = "您好，欢迎致电。"


def _bearer(user) -> dict:
    return {"HTTP_AUTHORIZATION": f"Bearer {tokens_for_user(user=user)['access']}"}


def _tts(client, user, **body):
    return client.post("/api/tts/", body, format="json", **_bearer(user))


def _assert_envelope(response, status: int, code: str) -> dict:
    assert response.status_code == status
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


def test_it_answers_binary_audio_and_a_second_call_is_a_cache_hit(api_client, customer, engine):
    first = _tts(api_client, customer, text=TEXT)
    second = _tts(api_client, customer, text=TEXT)

    assert first.status_code == second.status_code == 200
    assert first["Content-Type"] == "audio/mpeg"
    assert "X-Cache" not in first and "X-Cache" not in second  # staff and API keys only
    assert first.content == second.content and len(first.content) > 1000
    records = SynthesisRecord.objects.order_by("created_at")
    assert [r.cache_hit for r in records] == [False, True]
    assert all(r.user == customer and r.source == "api" for r in records)
    samples, rate = audio.decode(first.content, "mp3")
    assert (
        rate == 24000 and abs(len(samples) / rate * 1000 - int(first["X-Audio-Duration-Ms"])) < 30
    )


def test_it_answers_base64_json(api_client, customer, engine):
    response = _tts(api_client, customer, text=TEXT, format="wav", encoding="base64")

    assert response.status_code == 200
    body = response.json()
    wav = base64.b64decode(body["audio_base64"])
    assert wav[:4] == b"RIFF" and wav[8:12] == b"WAVE"
    assert body["format"] == "wav" and body["content_type"] == "audio/wav"
    assert body["sample_rate"] == 24000 and "cache_hit" not in body  # customers: not said
    samples, _ = audio.decode(wav, "wav")
    assert abs(len(samples) / 24 - body["duration_ms"]) <= 1


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"text": TEXT, "speed": 2.5}, "speed"),
        ({"text": TEXT, "speed": 0.4}, "speed"),
        ({"text": TEXT, "pitch": -6.5}, "pitch"),
        ({"text": TEXT, "pitch": 7}, "pitch"),
        ({"text": TEXT, "emotion": "furious"}, "emotion"),
        ({"text": TEXT, "emotion": ["calm"]}, "emotion"),
        ({"text": TEXT, "voice": "nobody"}, "voice"),
        ({"text": TEXT, "voice": "retired"}, "voice"),  # exists, but not active
        ({"text": TEXT, "voice": "b" * 65}, "voice"),
        ({"text": TEXT, "voice": {"id": "baker"}}, "voice"),
        ({"text": ""}, "text"),
        ({"text": "   "}, "text"),
        ({"text": TEXT, "format": "ogg"}, "format"),
    ],
)
def test_it_rejects_bad_input_with_the_envelope(api_client, customer, engine, body, field):
    Voice.objects.create(engine_voice_id="retired", display_name="停用", is_active=False)
    error = _assert_envelope(_tts(api_client, customer, **body), 400, "invalid")
    assert list(error["fields"]) == [field]
    assert not AudioClip.objects.exists()


def test_a_named_voice_and_preset_are_honoured(api_client, customer, engine):
    calm = _tts(api_client, customer, text=TEXT, voice="baker", emotion="calm", encoding="base64")
    plain = _tts(api_client, customer, text=TEXT, voice="baker", encoding="base64")
    assert calm.status_code == plain.status_code == 200
    records = SynthesisRecord.objects.order_by("pk")
    assert [(r.voice, r.emotion) for r in records] == [("baker", "calm"), ("baker", "")]


def test_the_11th_call_in_a_minute_is_refused_per_user(api_client, customer, engine, settings):
    from conftest import ratelimit_headroom

    settings.TTS_RATE_LIMIT = "10/m"
    ratelimit_headroom(str(customer.pk))
    answers = [_tts(api_client, customer, text=TEXT) for _ in range(11)]

    assert [a.status_code for a in answers] == [200] * 10 + [429]
    _assert_envelope(answers[-1], 429, "rate_limited")
    assert 0 < int(answers[-1]["Retry-After"]) <= 60
    assert _tts(api_client, CustomerFactory(), text=TEXT).status_code == 200
    assert SynthesisRecord.objects.filter(user=customer).count() == 10


def test_a_signed_clip_url_serves_the_clip_until_it_expires(api_client, customer, engine):
    audio_bytes = _tts(api_client, customer, text=TEXT).content
    clip = AudioClip.objects.get()
    url = selectors.clip_url(clip)

    served = api_client.get(url)
    assert served.status_code == 200 and served["Content-Type"] == "audio/mpeg"
    assert b"".join(served.streaming_content) == audio_bytes

    token = url.rsplit("/", 1)[1]
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    _assert_envelope(api_client.get(url.replace(token, tampered)), 404, "not_found")
    expired = selectors.clip_url(clip, ttl_seconds=-1)
    _assert_envelope(api_client.get(expired), 404, "not_found")


def test_a_signed_url_stops_working_when_its_time_is_up(api_client, customer, engine, monkeypatch):
    _tts(api_client, customer, text=TEXT)
    url = selectors.clip_url(AudioClip.objects.get(), ttl_seconds=60)
    later = time.time() + 61
    monkeypatch.setattr(selectors.time, "time", lambda: later)
    assert api_client.get(url).status_code == 404


# -- /v1/audio/speech: the OpenAI request shape ---------------------------------------------


@pytest.fixture
def key_header(db):
    _, raw = api_key_create(
        name="openai-client", scopes=["tts"], allowed_ips="", rate_limit="100/m", created_by=None
    )
    return {"HTTP_AUTHORIZATION": f"Bearer {raw}"}


def _openai(client, headers, **body):
    return client.post("/v1/audio/speech", {"model": "tts-1", **body}, format="json", **headers)


@pytest.mark.parametrize(
    ("response_format", "content_type", "magic"),
    [("wav", "audio/wav", b"RIFF"), ("pcm", "audio/L16;rate=24000", b"")],
)
def test_openai_formats_map_to_our_encodings(
    api_client, key_header, engine, response_format, content_type, magic
):
    response = _openai(
        api_client, key_header, input=TEXT, voice="nova", response_format=response_format
    )
    assert response.status_code == 200
    assert response["Content-Type"].startswith(content_type)
    assert response.content.startswith(magic) and len(response.content) > 10000


def test_openai_speed_and_our_voice_id_are_honoured(api_client, key_header, engine):
    normal = _openai(api_client, key_header, input=TEXT, voice="baker", response_format="pcm")
    fast = _openai(
        api_client, key_header, input=TEXT, voice="baker", response_format="pcm", speed=1.5
    )
    assert normal.status_code == fast.status_code == 200
    assert 0.5 < len(fast.content) / len(normal.content) < 0.8


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"input": TEXT, "response_format": "ogg"}, "response_format"),
        ({"input": TEXT, "voice": "nobody"}, "voice"),
        ({"input": TEXT, "model": "gpt-9"}, "model"),
        ({"input": TEXT, "speed": 4.0}, "speed"),
        ({"input": ""}, "input"),
    ],
)
def test_openai_bad_requests_get_openai_error_shape(api_client, key_header, body, field):
    response = _openai(api_client, key_header, **body)
    assert response.status_code == 400
    error = response.json()["error"]
    # OpenAI's keys, plus our envelope's fields
    assert set(error) == {"message", "type", "param", "code", "fields"}
    assert (error["type"], error["param"], error["code"]) == (
        "invalid_request_error",
        field,
        "invalid",
    )
    assert list(error["fields"]) == [field]
    if field == "response_format":
        # The message is translated (zh-hans by default); the formats it lists are not.
        message = error["fields"][field][0]
        assert all(f in message for f in ("mp3", "opus", "aac", "flac", "wav", "pcm"))


# -- schemathesis: generated requests against the published schema ----------------------------


@pytest.fixture
def wsgi_app(settings):
    """Django as a WSGI app in this thread, inside the test transaction."""
    from django.core.handlers.wsgi import WSGIHandler

    settings.TTS_RATE_LIMIT = "10000/m"
    # Like Django's test client: per-request connection recycling would close the test's
    # transaction (and its uncommitted user) under the request.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield WSGIHandler()
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


FUZZED = [("GET", "/api/me/"), ("GET", "/api/voices/"), ("GET", "/api/emotions/")]
FUZZED += [("POST", "/api/tts/")]


def _fuzz(operation, headers: dict, checks: list) -> set[int]:
    """Run a few generated requests against one operation; the status codes seen."""
    statuses: set[int] = set()

    @given(case=operation.as_strategy())
    @hypothesis_settings(
        max_examples=6,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    def check(case):
        statuses.add(case.call_and_validate(headers=headers, checks=checks).status_code)

    check()
    return statuses


def test_generated_requests_get_no_500_and_match_the_schema(wsgi_app, customer, engine):
    import schemathesis
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import response_schema_conformance

    schema = schemathesis.openapi.from_wsgi("/api/schema/", wsgi_app)
    headers = {"Authorization": _bearer(customer)["HTTP_AUTHORIZATION"]}
    checks = [not_a_server_error, response_schema_conformance]

    @schema.hook("map_body")
    def short_text(context, body):
        # Keep synthesis cheap: at most a sentence, whatever the generator came up with.
        if isinstance(body, dict) and isinstance(body.get("text"), str):
            body["text"] = body["text"][:12]
        return body

    calls = {}
    for result in schema.include(path=[p for _, p in FUZZED]).get_all_operations():
        operation = result.ok()
        if (operation.method.upper(), operation.path) in FUZZED:
            key = f"{operation.method.upper()} {operation.path}"
            calls[key] = _fuzz(operation, headers, checks)
    # Every chosen operation was exercised, and with valid requests among the generated ones.
    assert sorted(calls) == sorted(f"{m} {p}" for m, p in FUZZED)
    assert all(200 in codes for codes in calls.values()), calls


# --- issue 13, item 4: the clip cache is not an oracle across customers -------------------------


def test_a_customer_cannot_probe_what_an_agent_said_to_someone_else(api_client, engine):
    from accounts.models import Role
    from accounts.services import staff_user_set_role
    from accounts.tests.factories import AgentFactory
    from tts.services import speech_clip_get_or_create

    secret = "您的银行卡号是六二二二零二一八八八。"
    # An agent's reply to customer A, voiced through the shared cache.
    spoken = speech_clip_get_or_create(text=secret, source="reply")
    intruder = CustomerFactory()

    probe = _tts(api_client, intruder, text=secret)
    records = SynthesisRecord.objects.filter(user=intruder)

    assert probe.status_code == 200
    assert "X-Cache" not in probe
    # Not served from the shared clip: rendered afresh into the intruder's own cache, so
    # neither a header nor the answer time can say that someone else heard this text.
    assert records.get().cache_hit is False
    assert AudioClip.objects.filter(text=spoken.clip.text).count() == 2
    # Staff (and API keys) still share the cache and see the header.
    agent = staff_user_set_role(user=AgentFactory(), role=Role.AGENT)
    staff = _tts(api_client, agent, text=secret)
    assert staff["X-Cache"] == "hit"


def test_a_customers_own_repeat_is_still_served_from_their_cache(api_client, customer, engine):
    _tts(api_client, customer, text=TEXT)
    _tts(api_client, customer, text=TEXT)
    other = CustomerFactory()
    _tts(api_client, other, text=TEXT)

    hits = list(SynthesisRecord.objects.order_by("created_at").values_list("cache_hit", flat=True))
    assert hits == [False, True, False]
