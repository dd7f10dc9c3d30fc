"""Django-level 404/500 handlers: the JSON envelope for API paths, HTML pages elsewhere."""

import sys

from django.db import DatabaseError
from django.http import HttpResponse
from django.shortcuts import render
from django.utils.translation import gettext as _

from .errors import json_error, wants_json


def not_found(request, exception=None):
    if wants_json(request):
        return json_error(404, "not_found", _("Not found."))
    return render(request, "404.html", status=404)


def server_error(request):
    # Django calls this inside the `except` of the failed request, so the exception is at hand.
    if isinstance(sys.exc_info()[1], DatabaseError):
        return service_unavailable(request)
    if wants_json(request):
        return json_error(500, "server_error", _("Internal server error."))
    return render(request, "500.html", status=500)


def permission_denied(request, exception=None):
    if wants_json(request):
        return json_error(403, "permission_denied", _("You do not have permission."))
    return render(request, "403.html", status=403)


def bad_request(request, exception=None):
    if wants_json(request):
        return json_error(400, "bad_request", _("Bad request."))
    return render(request, "400.html", status=400)


def service_unavailable(request):
    """The database is down or restarting (any view, also outside DRF): 503, retry later.

    No template: rendering one may touch the session or the user, i.e. the database again.
    """
    message = _("The service is temporarily unavailable, please retry.")
    if wants_json(request):
        return json_error(503, "service_unavailable", message, Retry_After="5")
    response = HttpResponse(
        f"<!doctype html><title>503</title><h1>503</h1><p>{message}</p>",
        status=503,
        content_type="text/html; charset=utf-8",
    )
    response["Retry-After"] = "5"
    return response
