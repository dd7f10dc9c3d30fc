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


def jscode2session(*, code: str) -> WeChatSession:
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

    errcode = int(payload.get("errcode") or 0)
    if errcode:
        code_name, message, retryable = _ERRCODES.get(
            errcode, ("wechat_error", "WeChat refused the login.", True)
        )
        logger.info("wechat jscode2session errcode=%s", errcode)
        raise WeChatError(code_name, message, retryable=retryable, errcode=errcode)
    openid = payload.get("openid")
    if not openid:
        raise WeChatError(
            "wechat_unavailable", "WeChat answered without an openid.", retryable=True
        )
    return WeChatSession(
        openid=openid,
        unionid=payload.get("unionid", ""),
        session_key=payload.get("session_key", ""),
    )
