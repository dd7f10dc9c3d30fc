"""Django's ASGI handler with the request served in one thread hand-off.

Our views are synchronous (DRF), and so is part of the middleware stack (WhiteNoise, the body
cap, the admin login limit, django-ratelimit's). Django's `ASGIHandler` builds the chain in
async mode, so a request paid a hop to a thread for the sync middleware, a hop back to the
event loop for the async view-calling step, and a third hop to run the sync view. Making every
middleware async-capable would not help: in async mode Django's `MiddlewareMixin` (Security,
Session, CSRF, Auth, Messages, ...) runs each `process_request`/`process_response` through
`sync_to_async`, one hop each. So the chain is built in sync mode and the whole of it - every
middleware and the view - runs in one hop to the request's thread (`thread_sensitive`, inside
the `ThreadSensitiveContext` that `ASGIHandler.__call__` opens per request, as for any sync
view). Reading the body, the disconnect watch and sending the response stay on the event loop.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class OneHopASGIHandler(ASGIHandler):
    def load_middleware(self, is_async: bool = False) -> None:
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)


def get_one_hop_asgi_application() -> OneHopASGIHandler:
    """`django.core.asgi.get_asgi_application`, with this handler."""
    import django

    django.setup(set_prefix=False)
    return OneHopASGIHandler()
