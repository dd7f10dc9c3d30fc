"""JWT authentication for Channels (its built-in middleware only knows sessions).

The token comes from `?token=<access JWT>` (browsers cannot set headers on WebSocket),
falling back to the session cookie for the agent console.
"""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.contrib.auth.models import AnonymousUser
from rest_framework.exceptions import AuthenticationFailed
from rest_framework_simplejwt.authentication import JWTAuthentication
from rest_framework_simplejwt.exceptions import InvalidToken, TokenError

from common.ws import SameOriginValidator


@database_sync_to_async
def _user_from_token(raw: str):
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw)
        return auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()


def _query_token(scope) -> str:
    query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return (query.get("token") or [""])[0]


class _JWTQueryAuth:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        token = _query_token(scope)
        if token:
            scope = dict(scope, user=await _user_from_token(token))
        return await self.inner(scope, receive, send)


def JWTAuthMiddleware(inner):
    # Session auth first (agent console), then a token in the query string overrides it.
    return AuthMiddlewareStack(_JWTQueryAuth(inner))


class OriginCheckUnlessToken:
    """The Origin check (our ALLOWED_HOSTS) for sockets that ride the session cookie only.

    The check stops another site's page from opening a socket with the agent's cookie. A socket
    that brings its own JWT cannot be forged that way (the other site does not have the token),
    and the WeChat mini-program's wx.connectSocket sends no Origin of ours (none at all, or the
    WeChat runtime's), so token sockets are not held to it. With a token in the query the
    session is never used (`_JWTQueryAuth` overrides it, an invalid token is anonymous), so
    `?token=garbage` cannot smuggle a cookie past the check.
    """

    def __init__(self, inner):
        self.inner = inner
        # Scheme, host *and port* (AllowedHostsOriginValidator ignored the port); a refusal is
        # a readable 4403 close, not a bare HTTP 403.
        self.checked = SameOriginValidator(inner)

    async def __call__(self, scope, receive, send):
        if _query_token(scope):
            return await self.inner(scope, receive, send)
        return await self.checked(scope, receive, send)
