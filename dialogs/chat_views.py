"""The web chat page: a browser stand-in for the mini-program, driven by the public API.

The page itself holds no session: it logs in through the API (dev login) and keeps the JWT
in memory, exactly as the mini-program does.
"""

from django.conf import settings
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET

from accounts.services import dev_login_enabled


@require_GET
def chat_page(request):
    return render(
        request,
        "chat/index.html",
        {
            "dev_login_enabled": dev_login_enabled(),
            "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
            "chat_config": {
                "devLoginUrl": reverse("auth-dev-login"),
                "conversationsUrl": reverse("conversations"),
                "wsPathTemplate": "/ws/chat/{id}/",
                "devLoginEnabled": dev_login_enabled(),
            },
        },
    )
