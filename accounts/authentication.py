"""DRF authentication by API key (`Authorization: Bearer csk_...`) for server-to-server calls.

Identity and access are split the DRF way: `ApiKeyAuthentication` answers "which key is this"
(unknown or revoked: 401), `ApiKeyAccess` answers "may it call this view from here" (scope and
IP allowlist: 403). The request then has `request.auth` = the ApiKey and an anonymous user: a key
acts for an integration, not for a person.
"""

from __future__ import annotations

from django.contrib.auth.models import AnonymousUser
from django.utils.translation import gettext as _
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions, permissions

from common.net import ip_allowed, request_ip

from . import api_keys, selectors, services
from .models import ApiKey


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
        if not ip_allowed(request_ip(request), api_key.allowed_ips):
            raise exceptions.PermissionDenied(
                _("This API key may not be used from this address."), "ip_not_allowed"
            )
        return True


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "accounts.authentication.ApiKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema):
        return {"type": "http", "scheme": "bearer", "description": "csk_... API key"}
