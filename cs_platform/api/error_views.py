"""Django-level 404/500 handlers: the JSON envelope for API paths, HTML pages elsewhere."""

from django.shortcuts import render
from django.utils.translation import gettext as _

from .errors import _json_error, wants_json


def not_found(request, exception=None):
    if wants_json(request):
        return _json_error(404, "not_found", _("Not found."))
    return render(request, "404.html", status=404)


def server_error(request):
    if wants_json(request):
        return _json_error(500, "server_error", _("Internal server error."))
    return render(request, "500.html", status=500)


def permission_denied(request, exception=None):
    if wants_json(request):
        return _json_error(403, "permission_denied", _("You do not have permission."))
    return render(request, "403.html", status=403)


def bad_request(request, exception=None):
    if wants_json(request):
        return _json_error(400, "bad_request", _("Bad request."))
    return render(request, "400.html", status=400)
