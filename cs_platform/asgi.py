"""ASGI entry point: Django over HTTP, Channels consumers over WebSocket."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
django_asgi_app = get_asgi_application()  # must run before importing consumers

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402

from accounts.ws_auth import JWTAuthMiddleware, OriginCheckUnlessToken  # noqa: E402
from common.body_limits import BodyLimitMiddleware  # noqa: E402
from cs_platform.routing import websocket_urlpatterns  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Body limits and read timeouts before Django reads (and spools) anything.
        "http": BodyLimitMiddleware(django_asgi_app),
        # Cookie sockets must come from our own origin (scheme, host and port), refused with
        # 4403; JWT sockets (the mini-program) need not.
        "websocket": OriginCheckUnlessToken(JWTAuthMiddleware(URLRouter(websocket_urlpatterns))),
    }
)
