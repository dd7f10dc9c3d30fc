"""The web chat page: a browser stand-in for the mini-program, driven by the public API.

The page itself holds no session: it logs in through the API (dev login) and keeps the JWT
in memory, exactly as the mini-program does.
"""

from django.conf import settings
from django.shortcuts import render
from django.urls import Resolver404, resolve, reverse
from django.views.decorators.http import require_GET

from accounts.services import dev_login_enabled

# A press shorter than this is a tap, not a voice message (WeChat's 说话时间太短).
VOICE_MIN_MS = 1000


def api_path(path: str) -> str | None:
    """`path` when an API route serves it, else None: the page offers a feature (handoff, CSAT,
    voice input) only once the API behind it is installed."""
    try:
        resolve(path)
    except Resolver404:
        return None
    return path


@require_GET
def chat_page(request):
    conversations_url = reverse("conversations")
    return render(
        request,
        "chat/index.html",
        {
            "dev_login_enabled": dev_login_enabled(),
            "max_chars": settings.CHAT_MAX_MESSAGE_CHARS,
            "chat_config": {
                "devLoginUrl": reverse("auth-dev-login"),
                "conversationsUrl": conversations_url,
                "wsPathTemplate": "/ws/chat/{id}/",
                "devLoginEnabled": dev_login_enabled(),
                "handoffUrl": api_path(f"{conversations_url}1/handoff/"),
                "csatUrl": (api_path(f"{conversations_url}1/csat/") or "").replace("/1/", "/{id}/")
                or None,
                # `?before=<id>` (scroll-back pages with has_more) came with the workflow API.
                "scrollBack": bool(api_path(f"{conversations_url}1/handoff/")),
                # The workflow's payloads carry the staff nickname as `author`, never a username.
                "staffNames": bool(api_path(f"{conversations_url}1/handoff/")),
                # Hold to talk: the recording goes to the messages endpoint as multipart
                # `audio`; the page stops at the server's limit and ignores taps under 1 s.
                "voiceInput": True,
                "voiceMaxSeconds": settings.ASR_MAX_SECONDS,
                "voiceMinMs": VOICE_MIN_MS,
            },
        },
    )
