import pytest
from django.urls import reverse

from accounts.models import CustomerProfile, Role

pytestmark = pytest.mark.django_db
URL = reverse("auth-wechat")


def test_it_logs_in_a_new_customer_and_returns_tokens(api_client, wechat_server):
    response = api_client.post(URL, {"code": "ok-openid-alice"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    assert body["access"] and body["refresh"]
    assert body["user"]["role"] == Role.CUSTOMER
    profile = CustomerProfile.objects.get(openid="openid-alice")
    assert profile.unionid == "u-openid-alice"
    _path, query = wechat_server.requests[-1]
    assert query == {
        "appid": "wx-test-appid",
        "secret": "wx-test-secret",
        "js_code": "ok-openid-alice",
        "grant_type": "authorization_code",
    }


def test_it_returns_the_same_customer_for_the_same_openid(api_client, wechat_server):
    first = api_client.post(URL, {"code": "ok-openid-bob"}, format="json").json()
    second = api_client.post(URL, {"code": "ok-openid-bob"}, format="json").json()

    assert first["user"]["id"] == second["user"]["id"]
    assert CustomerProfile.objects.filter(openid="openid-bob").count() == 1


def test_the_token_works_on_me(api_client, wechat_server):
    tokens = api_client.post(URL, {"code": "ok-openid-carol"}, format="json").json()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {tokens['access']}")

    me = api_client.get(reverse("me"))

    assert me.status_code == 200
    assert me.json()["id"] == tokens["user"]["id"]


@pytest.mark.parametrize(
    ("errcode", "status", "code"),
    [
        (40029, 400, "wechat_invalid_code"),
        (40163, 400, "wechat_code_used"),
        (40226, 400, "wechat_user_blocked"),
        (45011, 503, "wechat_rate_limited"),
        (-1, 503, "wechat_busy"),
        (99999, 503, "wechat_error"),
    ],
)
def test_it_maps_wechat_errcodes(api_client, wechat_server, errcode, status, code):
    response = api_client.post(URL, {"code": f"err{errcode}"}, format="json")

    assert response.status_code == status
    error = response.json()["error"]
    if status == 400:
        assert error["code"] == "invalid"
        assert error["fields"]["code"]
    else:
        assert error["code"] == code
        assert response["Retry-After"] == "5"
    assert not CustomerProfile.objects.exists()


def test_a_wechat_timeout_is_a_503(api_client, wechat_server):
    response = api_client.post(URL, {"code": "slow"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wechat_timeout"


def test_a_garbage_wechat_answer_is_a_503(api_client, wechat_server):
    response = api_client.post(URL, {"code": "html"}, format="json")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wechat_unavailable"


def test_wechat_unreachable_is_a_503(api_client, settings):
    settings.WECHAT_API_BASE = "http://127.0.0.1:9"  # discard port: connection refused

    response = api_client.post(URL, {"code": "ok-x"}, format="json")

    assert response.status_code == 503


def test_a_missing_code_is_a_validation_error(api_client, wechat_server):
    response = api_client.post(URL, {}, format="json")

    assert response.status_code == 400
    assert response.json()["error"]["fields"]["code"]
    assert wechat_server.requests == []


@pytest.mark.parametrize(
    ("debug", "flag", "expected"),
    [(False, False, 404), (True, False, 404), (False, True, 404), (True, True, 200)],
)
def test_dev_login_needs_both_debug_and_the_flag(api_client, settings, debug, flag, expected):
    settings.DEBUG = debug
    settings.WECHAT_DEV_LOGIN = flag

    response = api_client.post(reverse("auth-dev-login"), {"code": "anything"}, format="json")

    assert response.status_code == expected
    if expected == 200:
        assert response.json()["user"]["role"] == Role.CUSTOMER
    else:
        assert response.json()["error"]["code"] == "not_found"


# --- issue 13, item 10 -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code",
    ["json-list", "errcode-text", "errcode-float", "errcode-list", "openid-number", "json-null"],
)
def test_a_malformed_wechat_answer_is_a_503_not_a_500(api_client, wechat_server, code):
    response = api_client.post(URL, {"code": code}, format="json")

    assert response.status_code == 503, response.content
    assert response.json()["error"]["code"] in ("wechat_unavailable", "wechat_error")
    assert not CustomerProfile.objects.exists()


@pytest.mark.parametrize("appid, secret", [("", "s"), ("wx1", ""), ("  ", "s")])
def test_an_unconfigured_wechat_is_a_configuration_error_without_calling_out(
    api_client, wechat_server, settings, appid, secret
):
    settings.WECHAT_APPID = appid
    settings.WECHAT_SECRET = secret

    response = api_client.post(URL, {"code": "ok-openid-dave"}, format="json")
    ready = api_client.get("/readyz")

    assert response.status_code == 503
    assert response.json()["error"]["code"] == "wechat_not_configured"
    assert response.json()["error"]["message"] == "本服务器未配置微信登录。"
    assert wechat_server.requests == []  # no call out with an empty appid
    assert ready.status_code == 503
    assert ready.json()["checks"]["wechat"]["ok"] is False


def test_an_unconfigured_wechat_fails_check_deploy(settings):
    from django.core import checks

    settings.WECHAT_APPID = ""
    errors = checks.run_checks(include_deployment_checks=True, tags=[checks.Tags.security])

    assert "accounts.E001" in {e.id for e in errors}


def test_a_deactivated_customer_gets_no_tokens(api_client, wechat_server):
    first = api_client.post(URL, {"code": "ok-openid-erin"}, format="json")
    assert first.status_code == 200
    user = CustomerProfile.objects.get(openid="openid-erin").user
    user.is_active = False
    user.save(update_fields=["is_active"])

    again = api_client.post(URL, {"code": "ok-openid-erin"}, format="json")
    refreshed = api_client.post(
        reverse("auth-token-refresh"), {"refresh": first.json()["refresh"]}, format="json"
    )

    assert again.status_code == 403, again.content
    assert again.json()["error"]["code"] == "account_disabled"
    assert "access" not in again.content.decode()
    assert refreshed.status_code == 401
