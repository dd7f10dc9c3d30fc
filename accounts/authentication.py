"""DRF authentication by API key (`Authorization: Bearer csk_...`) for server-to-server calls.

Identity and access are split the DRF way: `ApiKeyAuthentication` answers "which key is this"
(unknown or revoked: 401), `ApiKeyAccess` answers "may it call this view from here" (scope and
IP allowlist: 403). The request then has `request.auth` = the ApiKey and an anonymous user: a key
acts for an integration, not for a person.
"""

from __future__ import annotations

import ipaddress

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from . import api_keys, selectors, services
from .models import ApiKey


def request_ip(request) -> str | None:
    """The client address for the IP allowlist.

    X-Forwarded-For is only believed when the direct peer is one of TRUSTED_PROXIES; otherwise
    any client could name an allowed address in that header and walk past the allowlist.
    """
    remote = request.META.get("REMOTE_ADDR") or None
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    if forwarded and remote and api_keys.ip_allowed(remote, ",".join(settings.TRUSTED_PROXIES)):
        # The proxy appends the address it saw; earlier entries are the client's own claims.
        candidate = forwarded.split(",")[-1].strip()
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            return None
    return remote


def ratelimit_client_ip(request) -> str:
    """django-ratelimit's client key (RATELIMIT_IP_META_KEY): the same proxy-aware address,
    and a fixed bucket when the server gives none (unix sockets) instead of a KeyError."""
    return request_ip(request) or "0.0.0.0"  # noqa: S104 - a bucket name, not a bind address


class ApiKeyAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request) -> tuple[AnonymousUser, ApiKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1").split()
        if len(header) != 2 or header[0] != self.keyword:
            return None
        raw = header[1]
        if not raw.startswith(api_keys.KEY_MARKER):
            return None  # not ours (e.g. a JWT): let the next authenticator try
        api_key = selectors.api_key_from_raw(raw)
        if api_key is None or not api_key.is_active:
            # One message for both: a caller must not learn that a revoked key once existed.
            raise exceptions.AuthenticationFailed(_("Invalid or revoked API key."), "invalid_key")
        services.api_key_touch(api_key=api_key)
        return AnonymousUser(), api_key

    def authenticate_header(self, request) -> str:
        # Makes DRF answer 401 (with WWW-Authenticate) instead of 403 when no key is sent.
        return f'{self.keyword} realm="api"'


class ApiKeyAccess(permissions.BasePermission):
    """The view's `required_scope` must be granted, and the caller's IP on the key's allowlist."""

    def has_permission(self, request, view) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ApiKey):
            raise exceptions.NotAuthenticated(_("An API key is required."))
        scope = getattr(view, "required_scope", None)
        if scope and scope not in api_key.scopes:
            raise exceptions.PermissionDenied(
                _("This API key does not have the %s scope.") % scope, "scope_missing"
            )
        if not api_keys.ip_allowed(request_ip(request), api_key.allowed_ips):
            raise exceptions.PermissionDenied(
                _("This API key may not be used from this address."), "ip_not_allowed"
            )
        return True


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "csk_... API key"}
