"""Login audit: Django's auth signals plus the two logins that bypass them (JWT, WeChat)."""

from __future__ import annotations

import ipaddress
import logging

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from common.net import request_ip

from .models import AuthChannel, AuthEvent, AuthEventKind, User

logger = logging.getLogger(__name__)

USERNAME_MAX = 150
USER_AGENT_MAX = 256


def _channel(request) -> str:
    path = getattr(request, "path", "") or ""
    if path.startswith("/api/auth/wechat/") or path.startswith("/api/auth/dev-login/"):
        return AuthChannel.WECHAT
    if path.startswith("/api/auth/token/"):
        return AuthChannel.JWT
    if path.startswith(("/admin/", "/console/")):
        return AuthChannel.ADMIN
    return AuthChannel.OTHER


def _ip(request) -> str | None:
    if request is None or not hasattr(request, "META"):
        return None
    candidate = request_ip(request)
    try:
        return str(ipaddress.ip_address(candidate)) if candidate else None
    except ValueError:
        return None


def auth_event_record(
    *,
    kind: str,
    request=None,
    user: User | None = None,
    username: str = "",
    channel: str | None = None,
    reason: str = "",
) -> AuthEvent | None:
    """Store one event. An audit write never breaks a login: failures are logged and dropped."""
    meta = getattr(request, "META", {}) or {}
    try:
        return AuthEvent.objects.create(
            kind=kind,
            channel=channel or _channel(request),
            user=user if user is not None and user.pk else None,
            username=(username or (user.get_username() if user is not None else ""))[:USERNAME_MAX],
            ip=_ip(request),
            user_agent=str(meta.get("HTTP_USER_AGENT", ""))[:USER_AGENT_MAX],
            reason=reason[:64],
        )
    except Exception as exc:
        logger.error("auth event not recorded: %s", type(exc).__name__)
        return None


@receiver(user_logged_in, dispatch_uid="accounts.audit.logged_in")
def _on_logged_in(sender, request, user, **kwargs) -> None:
    auth_event_record(kind=AuthEventKind.LOGIN, request=request, user=user)


@receiver(user_logged_out, dispatch_uid="accounts.audit.logged_out")
def _on_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        auth_event_record(kind=AuthEventKind.LOGOUT, request=request, user=user)


@receiver(user_login_failed, dispatch_uid="accounts.audit.login_failed")
def _on_login_failed(sender, credentials, request=None, **kwargs) -> None:
    # `credentials` has the password masked by Django already; only the username is kept.
    username = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")
    auth_event_record(
        kind=AuthEventKind.LOGIN_FAILED,
        request=request,
        username=username,
        reason="bad_credentials",
    )
