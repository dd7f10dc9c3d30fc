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


@database_sync_to_async
def _user_from_token(raw: str):
    auth = JWTAuthentication()
    try:
        validated = auth.get_validated_token(raw)
        return auth.get_user(validated)
    except (InvalidToken, TokenError, AuthenticationFailed):
        return AnonymousUser()


class _JWTQueryAuth:
    def __init__(self, inner):
        self.inner = inner

    async def __call__(self, scope, receive, send):
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        token = (query.get("token") or [""])[0]
        if token:
            scope = dict(scope, user=await _user_from_token(token))
        return await self.inner(scope, receive, send)


def JWTAuthMiddleware(inner):
    # Session auth first (agent console), then a token in the query string overrides it.
    return AuthMiddlewareStack(_JWTQueryAuth(inner))
