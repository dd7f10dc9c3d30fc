"""The login audit trail: staff session logins, JWT token requests and WeChat customer logins,
successful or not, recorded without passwords and visible read-only in the admin."""

import logging

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuthChannel, AuthEvent, AuthEventKind, Role
from accounts.services import staff_user_create

from .factories import CustomerFactory

pytestmark = pytest.mark.django_db

PASSWORD = "Correct-horse-battery-9"
WRONG = "Wrong-password-Secret-7"


@pytest.fixture
def staff():
    return staff_user_create(username="agent.li", password=PASSWORD, role=Role.AGENT)


@pytest.fixture
def superuser():
    return staff_user_create(username="boss", password=PASSWORD, role=Role.ADMIN)


def _no_password_stored(*passwords: str) -> None:
    for event in AuthEvent.objects.all():
        values = " ".join(str(getattr(event, f.attname)) for f in AuthEvent._meta.fields)
        for password in passwords:
            assert password not in values


def test_an_admin_login_is_recorded_with_user_ip_and_agent(staff):
    client = Client(HTTP_USER_AGENT="Mozilla/5.0 test")
    response = client.post(
        "/admin/login/?next=/console/",
        {"username": "agent.li", "password": PASSWORD},
        REMOTE_ADDR="198.51.100.4",
    )
    assert response.status_code == 302
    event = AuthEvent.objects.get()
    assert (event.kind, event.channel) == (AuthEventKind.LOGIN, AuthChannel.ADMIN)
    assert event.user == staff and event.username == "agent.li"
    assert event.ip == "198.51.100.4" and event.user_agent == "Mozilla/5.0 test"


def test_a_failed_admin_login_keeps_the_username_never_the_password(staff, caplog):
    caplog.set_level(logging.DEBUG)
    Client().post("/admin/login/", {"username": "agent.li", "password": WRONG})
    Client().post("/admin/login/", {"username": "nobody", "password": WRONG})
    events = list(AuthEvent.objects.order_by("pk"))
    assert [(e.kind, e.username, e.user_id) for e in events] == [
        (AuthEventKind.LOGIN_FAILED, "agent.li", None),
        (AuthEventKind.LOGIN_FAILED, "nobody", None),
    ]
    assert all(e.channel == AuthChannel.ADMIN for e in events)
    _no_password_stored(WRONG)
    assert WRONG not in caplog.text


def test_logout_is_recorded(staff):
    client = Client()
    client.post("/admin/login/", {"username": "agent.li", "password": PASSWORD})
    client.post("/admin/logout/")
    assert list(AuthEvent.objects.order_by("pk").values_list("kind", flat=True)) == [
        AuthEventKind.LOGIN,
        AuthEventKind.LOGOUT,
    ]


def test_staff_token_requests_are_recorded(staff, api_client):
    ok = api_client.post(
        reverse("auth-token"), {"username": "agent.li", "password": PASSWORD}, format="json"
    )
    bad = api_client.post(
        reverse("auth-token"), {"username": "agent.li", "password": WRONG}, format="json"
    )
    assert ok.status_code == 200 and bad.status_code == 401
    events = list(AuthEvent.objects.order_by("pk"))
    assert [(e.kind, e.channel, e.username) for e in events] == [
        (AuthEventKind.LOGIN, AuthChannel.JWT, "agent.li"),
        (AuthEventKind.LOGIN_FAILED, AuthChannel.JWT, "agent.li"),
    ]
    assert events[0].user == staff
    _no_password_stored(PASSWORD, WRONG)


def test_a_customer_trying_the_staff_token_endpoint_is_a_failed_login(api_client):
    customer = CustomerFactory(username="cust1")  # password "pw-123456!"
    response = api_client.post(
        reverse("auth-token"), {"username": "cust1", "password": "pw-123456!"}, format="json"
    )
    assert response.status_code == 400
    event = AuthEvent.objects.get()
    assert (event.kind, event.reason, event.user) == (
        AuthEventKind.LOGIN_FAILED,
        "not_staff",
        customer,
    )


def test_wechat_customer_logins_are_recorded(api_client, wechat_server):
    ok = api_client.post(reverse("auth-wechat"), {"code": "ok-openid-zoe"}, format="json")
    bad = api_client.post(reverse("auth-wechat"), {"code": "err40029"}, format="json")
    assert ok.status_code == 200 and bad.status_code == 400
    login, failed = AuthEvent.objects.order_by("pk")
    assert (login.kind, login.channel) == (AuthEventKind.LOGIN, AuthChannel.WECHAT)
    assert login.user_id == ok.json()["user"]["id"]
    assert (failed.kind, failed.reason) == (AuthEventKind.LOGIN_FAILED, "wechat_invalid_code")
    # The WeChat secret and the login codes are not audit data.
    _no_password_stored("wx-test-secret", "ok-openid-zoe", "err40029")


def test_x_forwarded_for_is_believed_only_from_a_trusted_proxy(staff, settings):
    settings.TRUSTED_PROXIES = ["10.0.0.1"]
    creds = {"username": "agent.li", "password": WRONG}
    Client().post("/admin/login/", creds, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="1.2.3.4")
    Client().post("/admin/login/", creds, REMOTE_ADDR="5.6.7.8", HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert list(AuthEvent.objects.order_by("pk").values_list("ip", flat=True)) == [
        "1.2.3.4",
        "5.6.7.8",
    ]


def test_the_admin_shows_the_trail_filterable_and_read_only(superuser, staff):
    Client().post("/admin/login/", {"username": "agent.li", "password": WRONG})
    admin = Client()
    admin.force_login(superuser)
    listing = admin.get("/admin/accounts/authevent/", {"kind__exact": "login_failed"})
    assert listing.status_code == 200
    html = listing.content.decode()
    assert "agent.li" in html
    assert "?kind__exact=login" in html and "?channel__exact=jwt" in html  # the filters
    failed = AuthEvent.objects.get(kind=AuthEventKind.LOGIN_FAILED)
    assert admin.get("/admin/accounts/authevent/add/").status_code == 403
    detail = admin.get(f"/admin/accounts/authevent/{failed.pk}/change/")
    assert detail.status_code == 200 and 'name="_save"' not in detail.content.decode()
    assert (
        admin.post(f"/admin/accounts/authevent/{failed.pk}/delete/", {"post": "yes"}).status_code
        == 403
    )
    assert (
        admin.post(
            f"/admin/accounts/authevent/{failed.pk}/change/", {"username": "someone-else"}
        ).status_code
        == 403
    )
    failed.refresh_from_db()
    assert failed.username == "agent.li"
