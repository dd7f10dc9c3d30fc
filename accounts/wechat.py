"""Client for WeChat's `jscode2session` (mini-program login): code -> openid."""

import logging
from dataclasses import dataclass

import httpx
from django.conf import settings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class WeChatSession:
    openid: str
    unionid: str
    session_key: str


class WeChatError(Exception):
    """WeChat refused or failed; `retryable` separates user errors (400) from outages (503)."""

    def __init__(self, code: str, message: str, *, retryable: bool, errcode: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = retryable
        self.errcode = errcode


# errcode -> (our code, message, retryable). See WeChat's jscode2session docs.
_ERRCODES: dict[int, tuple[str, str, bool]] = {
    40029: ("wechat_invalid_code", "The login code is invalid.", False),
    40163: ("wechat_code_used", "The login code has already been used.", False),
    40226: ("wechat_user_blocked", "This WeChat user is blocked from logging in.", False),
    45011: ("wechat_rate_limited", "WeChat is rate limiting logins, please retry shortly.", True),
    -1: ("wechat_busy", "WeChat is busy, please retry shortly.", True),
}


class WeChatNotConfigured(Exception):
    """WECHAT_APPID / WECHAT_SECRET are not set: an operator's mistake, not a WeChat outage."""


def wechat_configured() -> bool:
    return bool(settings.WECHAT_APPID.strip() and settings.WECHAT_SECRET.strip())


def wechat_status() -> dict:
    """For /readyz: customers cannot log in without the app id and secret (the dev login, which
    needs DEBUG, stands in for WeChat on a developer's machine)."""
    from .services import dev_login_enabled

    if wechat_configured() or dev_login_enabled():
        return {"ok": True}
    return {"ok": False, "detail": "not configured: set WECHAT_APPID and WECHAT_SECRET"}


def _errcode(payload: dict) -> int | None:
    """WeChat's errcode as an int; 0/absent -> None. Anything else (a string, a float, a list)
    is a malformed answer, reported as an unknown error rather than a crash."""
    raw = payload.get("errcode")
    if raw in (None, 0, "0", ""):
        return None
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        return -999
    try:
        return int(raw) or None
    except ValueError:
        return -999


def jscode2session(*, code: str) -> WeChatSession:
    if not wechat_configured():
        # Calling out with an empty appid would be answered with an error we would report as an
        # outage (503, retry): it is a configuration error, said once and plainly.
        logger.error("WeChat login is not configured: set WECHAT_APPID and WECHAT_SECRET")
        raise WeChatNotConfigured()
    url = settings.WECHAT_API_BASE.rstrip("/") + "/sns/jscode2session"
    params = {
        "appid": settings.WECHAT_APPID,
        "secret": settings.WECHAT_SECRET,
        "js_code": code,
        "grant_type": "authorization_code",
    }
    try:
        response = httpx.get(url, params=params, timeout=settings.WECHAT_TIMEOUT_SECONDS)
        response.raise_for_status()
        payload = response.json()
    except httpx.TimeoutException as exc:
        raise WeChatError(
            "wechat_timeout", "WeChat did not answer in time.", retryable=True
        ) from exc
    except (httpx.HTTPError, ValueError) as exc:
        # Never log the URL: it carries the app secret.
        logger.warning("wechat jscode2session failed: %s", type(exc).__name__)
        raise WeChatError("wechat_unavailable", "WeChat is unavailable.", retryable=True) from exc

    if not isinstance(payload, dict):
        logger.warning("wechat jscode2session answered a JSON %s", type(payload).__name__)
        raise WeChatError("wechat_unavailable", "WeChat is unavailable.", retryable=True)
    errcode = _errcode(payload)
    if errcode:
        code_name, message, retryable = _ERRCODES.get(
            errcode, ("wechat_error", "WeChat refused the login.", True)
        )
        logger.info("wechat jscode2session errcode=%s", errcode)
        raise WeChatError(code_name, message, retryable=retryable, errcode=errcode)
    openid = payload.get("openid")
    if not isinstance(openid, str) or not openid or len(openid) > 64:
        raise WeChatError(
            "wechat_unavailable", "WeChat answered without an openid.", retryable=True
        )
    return WeChatSession(
        openid=openid,
        unionid=str(payload.get("unionid") or "")[:64],
        session_key=str(payload.get("session_key") or ""),
    )
