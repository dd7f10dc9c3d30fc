"""API keys: created once (raw shown once, hash stored), used on /v1/audio/speech, revoked, IP
allowlist, per-key rate limit, audit."""

import hashlib
import re

import pytest
from django.core.exceptions import ValidationError

from accounts.models import ApiKey, Role
from accounts.services import api_key_create, api_key_revoke, staff_user_create
from accounts.tests.factories import CustomerFactory
from tts.models import SynthesisRecord, SynthesisSource

SPEECH_URL = "/v1/audio/speech"
BODY = {"model": "tts-1", "input": "您好，欢迎致电。", "voice": "alloy"}


def _create(name="crm", **fields):
    options = {"scopes": ["tts"], "allowed_ips": "", "rate_limit": "60/m", "created_by": None}
    return api_key_create(name=name, **{**options, **fields})


def _speak(client, raw, body=BODY, **extra):
    return client.post(SPEECH_URL, body, format="json", HTTP_AUTHORIZATION=f"Bearer {raw}", **extra)


@pytest.mark.django_db
def test_it_stores_only_the_hash_and_a_visible_prefix():
    api_key, raw = _create()

    stored = ApiKey.objects.get(pk=api_key.pk)
    assert re.fullmatch(r"csk_[A-Za-z0-9_-]{43}", raw)
    assert stored.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert stored.prefix == raw[:12]
    assert not any(raw in str(value) for value in stored.__dict__.values())
    other_key, other_raw = _create(name="other")
    assert other_raw != raw and other_key.prefix != stored.prefix


@pytest.mark.django_db
def test_it_rejects_bad_rate_limits_ips_and_scopes():
    with pytest.raises(ValidationError) as excinfo:
        _create(rate_limit="lots", allowed_ips="10.0.0.0/33", scopes=["admin"])
    assert set(excinfo.value.message_dict) == {"rate_limit", "allowed_ips", "scopes"}
    assert not ApiKey.objects.exists()


@pytest.mark.django_db
def test_it_shows_the_raw_key_once_in_the_admin_and_audits_changes(client):
    admin = staff_user_create(username="boss", password="pw-123456!", role=Role.ADMIN)
    client.force_login(admin)

    response = client.post(
        "/admin/accounts/apikey/add/",
        {"name": "erp", "scopes": ["tts"], "allowed_ips": "10.0.0.0/8", "rate_limit": "30/m"},
        follow=True,
    )
    assert response.status_code == 200
    raw = re.search(r"csk_[A-Za-z0-9_-]{43}", response.content.decode()).group(0)
    api_key = ApiKey.objects.get(name="erp")
    assert api_key.key_hash == hashlib.sha256(raw.encode()).hexdigest()
    assert api_key.created_by == admin and api_key.scopes == ["tts"]

    # The message was consumed: no later page shows the key again.
    change_page = client.get(f"/admin/accounts/apikey/{api_key.pk}/change/").content.decode()
    assert raw not in change_page and api_key.prefix in change_page

    client.post(
        "/admin/accounts/apikey/",
        {"action": "revoke_selected", "_selected_action": [api_key.pk]},
    )
    api_key.refresh_from_db()
    assert api_key.revoked_at is not None
    history = list(api_key.history.order_by("history_date"))
    assert [h.history_type for h in history] == ["+", "~"]
    assert all(h.history_user == admin for h in history)
    assert history[-1].revoked_at is not None


@pytest.mark.django_db
def test_it_speaks_with_a_key_and_records_the_key_in_the_audit(api_client, engine):
    api_key, raw = _create(name="crm-prod")

    response = _speak(api_client, raw)

    assert response.status_code == 200
    assert response["Content-Type"] == "audio/mpeg"
    assert len(response.content) > 1000
    record = SynthesisRecord.objects.get()
    assert record.api_key_name == "crm-prod"
    assert record.source == SynthesisSource.API
    assert record.user is None and record.status == "ok"
    api_key.refresh_from_db()
    assert api_key.last_used_at is not None


@pytest.mark.django_db
def test_it_refuses_revoked_unknown_and_missing_keys_with_401(api_client):
    api_key, raw = _create()
    api_key_revoke(api_key=api_key)

    revoked = _speak(api_client, raw)
    unknown = _speak(api_client, raw[:-4] + "AAAA")
    missing = api_client.post(SPEECH_URL, BODY, format="json")

    for response in (revoked, unknown, missing):
        assert response.status_code == 401
        # OpenAI's error keys on /v1/, plus our envelope's
        assert set(response.json()["error"]) == {"code", "message", "fields", "type", "param"}
    assert revoked.json()["error"]["code"] == "invalid_key"
    assert revoked.json() == unknown.json()  # a revoked key is indistinguishable from a guess
    assert not SynthesisRecord.objects.exists()


@pytest.mark.django_db
def test_it_refuses_a_user_jwt_on_the_key_only_api(api_client):
    from accounts.services import tokens_for_user

    access = tokens_for_user(user=CustomerFactory())["access"]
    response = _speak(api_client, access)
    assert response.status_code == 401


@pytest.mark.django_db
def test_it_refuses_a_caller_outside_the_ip_allowlist_with_403(api_client, engine):
    _, raw = _create(allowed_ips="10.0.0.0/8\n192.0.2.7")

    outside = _speak(api_client, raw, REMOTE_ADDR="203.0.113.9")
    # X-Forwarded-For from a peer that is not a trusted proxy is ignored.
    spoofed = _speak(api_client, raw, REMOTE_ADDR="203.0.113.9", HTTP_X_FORWARDED_FOR="10.1.1.1")
    inside = _speak(api_client, raw, REMOTE_ADDR="10.20.30.40")
    via_proxy = _speak(api_client, raw, REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR="192.0.2.7")

    assert outside.status_code == 403
    assert outside.json()["error"]["code"] == "ip_not_allowed"
    assert spoofed.status_code == 403
    assert inside.status_code == 200
    assert via_proxy.status_code == 200


@pytest.mark.django_db
def test_it_refuses_a_key_without_the_tts_scope(api_client):
    _, raw = _create(scopes=[])
    response = _speak(api_client, raw)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "scope_missing"


@pytest.mark.django_db
def test_it_limits_each_key_by_its_own_rate(api_client, engine):
    from conftest import ratelimit_headroom

    slow, slow_raw = _create(name="slow", rate_limit="2/m")
    other, other_raw = _create(name="other", rate_limit="60/m")
    ratelimit_headroom(f"api-key:{slow.pk}", f"api-key:{other.pk}")

    answers = [_speak(api_client, slow_raw).status_code for _ in range(3)]
    limited = _speak(api_client, slow_raw)

    assert answers == [200, 200, 429]
    assert limited.status_code == 429
    assert int(limited["Retry-After"]) > 0
    assert limited.json()["error"]["code"] == "rate_limited"
    assert _speak(api_client, other_raw).status_code == 200
    assert SynthesisRecord.objects.filter(api_key_name="slow").count() == 2
