"""The one error envelope: {"error": {"code", "message", "fields"}} for every API answer.

DRF exceptions, Django 404/500 and django-ratelimit's refusal all end up here, so a client
(the mini-program) has exactly one shape to parse and never sees a traceback.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import DatabaseError
from django.http import Http404, JsonResponse
from django.utils.translation import gettext as _
from django_ratelimit.exceptions import Ratelimited
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.serializers import as_serializer_error
from rest_framework.views import exception_handler as drf_exception_handler

logger = logging.getLogger(__name__)

RATE_LIMIT_RETRY_AFTER_SECONDS = 60


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "Service temporarily unavailable, please retry."
    default_code = "service_unavailable"

    def __init__(self, detail=None, code=None, retry_after: int | None = None):
        super().__init__(detail, code)
        self.retry_after = retry_after


class PayloadTooLarge(exceptions.APIException):
    status_code = status.HTTP_413_REQUEST_ENTITY_TOO_LARGE
    default_detail = "The request body is too large."
    default_code = "payload_too_large"


class ClientError(exceptions.APIException):
    """A 4xx with its own stable code (and optional fields), e.g. `sensitive_text`, `audio_too_long`.

    ValidationError always answers code "invalid"; clients that must react to one particular
    refusal get it named here."""

    status_code = status.HTTP_400_BAD_REQUEST
    default_code = "invalid"

    def __init__(
        self, message: str, code: str, *, status_code: int = 400, fields: dict | None = None
    ):
        super().__init__(message, code)
        self.status_code = status_code
        self.fields = fields or {}


class RateLimited(exceptions.Throttled):
    default_code = "rate_limited"


def error_body(code: str, message: str, fields: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "fields": fields or {}}}


def validation_error_body(exc: DjangoValidationError) -> dict[str, Any]:
    """The envelope for a service's ValidationError outside DRF (plain Django JSON views)."""
    fields = exc.message_dict if hasattr(exc, "error_dict") else {}
    message = "; ".join(m for msgs in fields.values() for m in msgs) or "; ".join(exc.messages)
    return error_body("invalid", message, fields)


def _flatten_fields(detail: Any) -> dict[str, Any]:
    if isinstance(detail, dict):
        return {key: _flatten_list(value) for key, value in detail.items()}
    return {}


def _flatten_list(value: Any) -> Any:
    if isinstance(value, list):
        return (
            [str(item) for item in value]
            if all(not isinstance(i, dict | list) for i in value)
            else value
        )
    if isinstance(value, dict):
        return _flatten_fields(value)
    return [str(value)]


def _first_message(detail: Any) -> str:
    if isinstance(detail, list) and detail:
        return _first_message(detail[0])
    if isinstance(detail, dict) and detail:
        if "detail" in detail:
            return _first_message(detail["detail"])
        key, value = next(iter(detail.items()))
        return f"{key}: {_first_message(value)}"
    return str(detail)


def _code_of(exc: exceptions.APIException) -> str:
    codes = exc.get_codes()
    if isinstance(codes, str):
        return codes
    if isinstance(exc, exceptions.ValidationError):
        return "invalid"
    if isinstance(codes, dict) and isinstance(codes.get("code"), str):
        return codes["code"]  # simplejwt puts its code here
    return exc.default_code


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    if isinstance(exc, Ratelimited):
        # django-ratelimit raises a PermissionDenied subclass (403); clients need 429.
        exc = RateLimited(
            wait=RATE_LIMIT_RETRY_AFTER_SECONDS, detail=_("Too many requests, please slow down.")
        )
    elif isinstance(exc, DatabaseError):
        # The database is down or restarting: fail fast and tell the client to retry.
        logger.warning("database error answered with 503: %s", type(exc).__name__)
        exc = ServiceUnavailable(_("The service is temporarily unavailable, please retry."))
    elif isinstance(exc, RequestDataTooBig):
        # Normally answered by RequestLimitsMiddleware; this catches a body without a length.
        exc = PayloadTooLarge(_("The request body is too large."))
    elif isinstance(exc, DjangoValidationError):
        # Services validate with Django's ValidationError (model full_clean, business rules);
        # this is the one place it becomes DRF's, i.e. a 400 in the envelope with its fields.
        exc = exceptions.ValidationError(as_serializer_error(exc))
    elif isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    response = drf_exception_handler(exc, context)
    if response is None:
        logger.exception("unhandled API error", exc_info=exc)
        return Response(
            error_body("server_error", _("Internal server error.")),
            status=status.HTTP_500_INTERNAL_SERVER_ERROR,
        )

    detail = exc.detail if isinstance(exc, exceptions.APIException) else response.data
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten_fields(detail) if isinstance(detail, dict) else {}
        non_field = fields.pop("non_field_errors", None)
        message = non_field[0] if non_field else _("Invalid input.")
        if not fields and not non_field:
            message = _first_message(detail)
        body = error_body("invalid", str(message), fields)
    else:
        body = error_body(_code_of(exc), _first_message(detail), getattr(exc, "fields", None))
    response.data = body
    if isinstance(exc, ServiceUnavailable) and exc.retry_after:
        response["Retry-After"] = str(exc.retry_after)
    return response


def json_error(status_code: int, code: str, message: str, **headers: str) -> JsonResponse:
    response = JsonResponse(error_body(code, message), status=status_code)
    response["Content-Type"] = "application/json"
    for name, value in headers.items():
        response[name.replace("_", "-")] = value
    return response


def ratelimited_view(request, exception=None) -> JsonResponse:
    """django-ratelimit answers 403 by default; a client needs 429 + Retry-After."""
    return json_error(
        429,
        "rate_limited",
        _("Too many requests, please slow down."),
        Retry_After=str(RATE_LIMIT_RETRY_AFTER_SECONDS),
    )


def wants_json(request) -> bool:
    path = request.path
    accept = request.headers.get("Accept", "")
    return path.startswith(("/api/", "/v1/")) or (
        "application/json" in accept and "text/html" not in accept
    )
