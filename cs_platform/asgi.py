"""ASGI entry point: Django over HTTP, Channels consumers over WebSocket."""

import os

from common.asgi_handler import get_one_hop_asgi_application
from common.startup import exit_on_error, startup_check

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
# A bad configuration stops the web process here with one line (storage, broker, settings).
# Checks first: they need only the settings, and fail before any app code is loaded.
with exit_on_error("web"):
    startup_check()
    # Django's handler, serving each request (middleware and view) in one thread hand-off.
    django_asgi_app = get_one_hop_asgi_application()  # must run before importing consumers
    # Every URL module (views, serializers, DRF) now, not on the first request: that request
    # paid ~1 s of imports, so after each restart some customer's message took a second.
    from django.urls import get_resolver

    get_resolver().url_patterns  # noqa: B018 (the property imports them)

from channels.routing import ProtocolTypeRouter, URLRouter

from accounts.ws_auth import JWTAuthMiddleware, OriginCheckUnlessToken
from common.body_limits import BodyLimitMiddleware
from cs_platform.routing import websocket_urlpatterns

application = ProtocolTypeRouter(
    {
        # Body limits and read timeouts before Django reads (and spools) anything.
        "http": BodyLimitMiddleware(django_asgi_app),
        # Cookie sockets must come from our own origin (scheme, host and port), refused with
        # 4403; JWT sockets (the mini-program) need not.
        "websocket": OriginCheckUnlessToken(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
