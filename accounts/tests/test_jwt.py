from datetime import timedelta

import pytest
from django.urls import reverse
from rest_framework_simplejwt.tokens import AccessToken

from .factories import AgentFactory, CustomerFactory

pytestmark = pytest.mark.django_db


def _staff_login(api_client, user):
    response = api_client.post(
        reverse("auth-token"), {"username": user.username, "password": "pw-123456!"}, format="json"
    )
    assert response.status_code == 200, response.content
    return response.json()


def test_staff_login_returns_tokens_with_the_role_claim(api_client):
    agent = AgentFactory()

    tokens = _staff_login(api_client, agent)

    assert AccessToken(tokens["access"])["role"] == "agent"
    assert tokens["user"]["role"] == "agent"


def test_customers_cannot_log_in_with_a_password(api_client):
    customer = CustomerFactory()

    response = api_client.post(
        reverse("auth-token"),
        {"username": customer.username, "password": "pw-123456!"},
        format="json",
    )

    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid"


def test_wrong_password_is_a_401_envelope(api_client):
    agent = AgentFactory()

    response = api_client.post(
        reverse("auth-token"), {"username": agent.username, "password": "nope"}, format="json"
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "no_active_account"


def test_refresh_rotates_and_the_old_refresh_is_refused(api_client):
    tokens = _staff_login(api_client, AgentFactory())

    first = api_client.post(
        reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json"
    )
    again = api_client.post(
        reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json"
    )

    assert first.status_code == 200
    assert first.json()["refresh"] != tokens["refresh"]
    assert AccessToken(first.json()["access"])["role"] == "agent"
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "token_not_valid"


def test_logout_blacklists_the_refresh_token(api_client):
    tokens = _staff_login(api_client, AgentFactory())
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    logout = api_client.post(reverse("auth-logout"), {"refresh": tokens["refresh"]}, format="json")
    refresh = api_client.post(
        reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json"
    )

    assert logout.status_code == 204
    assert refresh.status_code == 401


def test_an_expired_access_token_is_a_401_envelope(api_client):
    token = AccessToken.for_user(AgentFactory())
    token.set_exp(lifetime=-timedelta(seconds=1))
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")

    response = api_client.get(reverse("me"))

    assert response.status_code == 401
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == "token_not_valid"
    assert body["error"]["message"]


def test_an_alg_none_token_is_refused(api_client):
    import jwt

    user = AgentFactory()
    forged = jwt.encode(
        {"user_id": str(user.pk), "token_type": "access", "exp": 9999999999}, None, algorithm="none"
    )
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {forged}")

    response = api_client.get(reverse("me"))

    assert response.status_code == 401


def test_no_token_is_a_401_envelope(api_client):
    response = api_client.get(reverse("me"))

    assert response.status_code == 401
    assert response.json()["error"]["code"] == "not_authenticated"


# --- issue 13, item 11 (and the access lifetime claimed in SECURITY.md, item 12) --------------


def test_logout_refuses_someone_elses_refresh_token(api_client):
    victim = _staff_login(api_client, AgentFactory())
    attacker = _staff_login(api_client, AgentFactory())
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {attacker['access']}")

    logout = api_client.post(reverse("auth-logout"), {"refresh": victim["refresh"]}, format="json")
    api_client.credentials()
    still_works = api_client.post(
        reverse("auth-token-refresh"), {"refresh": victim["refresh"]}, format="json"
    )

    assert logout.status_code == 400
    assert logout.json()["error"]["fields"]["refresh"]
    assert still_works.status_code == 200  # the victim was not logged out


def test_a_demoted_agents_refreshed_token_carries_the_current_role(api_client):
    from accounts.models import Role
    from accounts.services import staff_user_set_role

    agent = AgentFactory()
    tokens = _staff_login(api_client, agent)
    staff_user_set_role(user=agent, role=Role.CUSTOMER)

    refreshed = api_client.post(
        reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json"
    )

    assert refreshed.status_code == 200
    assert AccessToken(refreshed.json()["access"])["role"] == "customer"
    from rest_framework_simplejwt.tokens import RefreshToken

    assert RefreshToken(refreshed.json()["refresh"])["role"] == "customer"


def test_a_deleted_users_refresh_token_is_a_401_not_a_500(api_client):
    agent = AgentFactory()
    tokens = _staff_login(api_client, agent)
    agent.delete()

    response = api_client.post(
        reverse("auth-token-refresh"), {"refresh": tokens["refresh"]}, format="json"
    )

    assert response.status_code == 401


def test_access_tokens_live_fifteen_minutes(api_client):
    tokens = _staff_login(api_client, AgentFactory())
    access = AccessToken(tokens["access"])

    assert 15 * 60 - 1 <= access["exp"] - access["iat"] <= 15 * 60  # whole seconds


def test_logins_are_limited_per_ip(api_client, settings):
    # Item 12: RATELIMIT_LOGIN_PER_IP was claimed in SECURITY.md and never tested.
    from conftest import ratelimit_headroom

    settings.RATELIMIT_LOGIN_PER_IP = "3/m"
    ratelimit_headroom("198.51.100.7", "198.51.100.8")
    agent = AgentFactory()
    wrong = {"username": agent.username, "password": "wrong"}
    right = {"username": agent.username, "password": "pw-123456!"}

    guesses = [
        api_client.post(reverse("auth-token"), wrong, format="json", REMOTE_ADDR="198.51.100.7")
        for _ in range(3)
    ]
    blocked = api_client.post(
        reverse("auth-token"), right, format="json", REMOTE_ADDR="198.51.100.7"
    )
    elsewhere = api_client.post(
        reverse("auth-token"), right, format="json", REMOTE_ADDR="198.51.100.8"
    )

    assert [g.status_code for g in guesses] == [401, 401, 401]
    assert blocked.status_code == 429  # even the right password, from that address
    assert blocked.json()["error"]["code"] == "rate_limited"
    assert elsewhere.status_code == 200
