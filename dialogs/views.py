"""The agent console: server-rendered pages plus small JSON endpoints for its script.

Session auth and CSRF (these are browser views for staff, not the mini-program API).
"""

from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from common.errors import error_body, validation_error_body
from common.json_bounded import json_loads_bounded
from tts.models import EmotionPreset

from .chat_views import api_path
from .payloads import conversation_payload, message_payload
from .selectors.conversations import (
    conversation_get_for_user,
    user_is_staff,
)
from .selectors.messages import conversation_messages
from .selectors.phrases import phrase_search
from .selectors.policy import emotion_suggestion
from .selectors.voice import message_from_voice_token
from .services.conversations import conversation_mark_read
from .services.messages import agent_reply_create
from .services.moderation import SensitiveTextRefused


def staff_required(view):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect_to_login(request.get_full_path(), reverse("admin:login"))
        if not user_is_staff(request.user):
            raise PermissionDenied
        return view(request, *args, **kwargs)

    return wrapper


def _conversation(request, conversation_id: int):
    return conversation_get_for_user(user=request.user, conversation_id=conversation_id)


def _ws_route(path: str) -> str | None:
    """`path` when a WebSocket route serves it (the console socket arrives with the workflow)."""
    from cs_platform.routing import websocket_urlpatterns

    for pattern in websocket_urlpatterns:
        if pattern.pattern.match(path.lstrip("/")):
            return path
    return None


def _console_page(request, conversation_id: int | None):
    agent_api = "/api/agent/conversations/"
    return render(
        request,
        "console/index.html",
        {
            "presets": EmotionPreset.objects.order_by("name"),
            "display_name": request.user.display_name,
            "console_config": {
                "me": {"id": request.user.pk, "display_name": request.user.display_name},
                "initialConversation": conversation_id,
                "conversationsUrl": reverse("agent-conversations"),
                "actionUrlTemplate": agent_api + "{id}/{action}/",
                "messagesUrlTemplate": reverse("console:messages", args=[0]).replace(
                    "/0/", "/{id}/"
                ),
                "phrasesUrl": api_path("/api/agent/phrases/") or reverse("console:phrases"),
                "ttsUrl": reverse("tts-speech"),
                "chatWsTemplate": "/ws/chat/{id}/",
                "consoleWs": _ws_route("/ws/console/"),
                # Features that arrive with the workflow API are offered once it is installed.
                "claim": bool(api_path(agent_api + "1/claim/")),
                "transfer": bool(api_path(agent_api + "1/transfer/")),
                "reopen": bool(api_path(agent_api + "1/reopen/")),
                "customerPanel": bool(api_path(agent_api + "1/customer/")),
                "agentsUrl": api_path("/api/agent/agents/"),
                "presenceUrl": api_path("/api/agent/me/presence/"),
                "scrollBack": False,
            },
        },
    )


@require_GET
@staff_required
def console_index(request):
    return _console_page(request, None)


@require_GET
@staff_required
def console_conversation(request, conversation_id: int):
    conversation = _conversation(request, conversation_id)
    return _console_page(request, conversation.pk)


CONSOLE_PAGE = 50
CONSOLE_CATCH_UP_PAGE = 200


def _int_param(request, name: str) -> int | None:
    try:
        return int(request.GET[name])
    except (KeyError, ValueError):
        return None


@require_GET
@staff_required
def console_messages(request, conversation_id: int):
    """The console's view of one conversation, a page at a time (a conversation may hold
    thousands of messages): no parameter -> the newest page; `before=<id>` -> the page before
    it (scroll-back); `after=<id>` -> what came after it (catch-up after a reconnect). Messages
    are oldest first in every page; `has_more` says whether another page is there.

    Opening it marks the conversation read and answers the policy's emotion suggestion.
    """
    conversation = _conversation(request, conversation_id)
    after, before = _int_param(request, "after"), _int_param(request, "before")
    messages = conversation_messages(conversation=conversation, after_id=max(after or 0, 0))
    if after is not None:
        page = list(messages[: CONSOLE_CATCH_UP_PAGE + 1])
        has_more = len(page) > CONSOLE_CATCH_UP_PAGE
        page = page[:CONSOLE_CATCH_UP_PAGE]
    else:
        if before is not None:
            messages = messages.filter(pk__lt=before)
        page = list(messages.reverse()[: CONSOLE_PAGE + 1])
        has_more = len(page) > CONSOLE_PAGE
        page = page[:CONSOLE_PAGE][::-1]
    conversation_mark_read(conversation=conversation)
    suggestion = emotion_suggestion(conversation=conversation)
    return JsonResponse(
        {
            "messages": [message_payload(m) for m in page],
            "has_more": has_more,
            "suggestion": suggestion.name if suggestion else "",
            "conversation": conversation_payload(conversation),
        }
    )


@require_POST
@staff_required
def console_reply(request, conversation_id: int):
    conversation = _conversation(request, conversation_id)
    try:
        data = json_loads_bounded(request.body or b"{}")
    except ValueError:
        return JsonResponse(error_body("invalid", "Invalid JSON."), status=400)
    if not isinstance(data, dict):
        return JsonResponse(error_body("invalid", "Expected a JSON object."), status=400)
    emotion = None
    if data.get("emotion"):
        emotion = EmotionPreset.objects.filter(name=str(data["emotion"])).first()
        if emotion is None:
            return JsonResponse(
                error_body("invalid", "Unknown emotion.", {"emotion": ["Unknown emotion."]}),
                status=400,
            )
    try:
        message = agent_reply_create(
            conversation=conversation,
            agent=request.user,
            text=str(data.get("text") or ""),
            short_code=str(data.get("short_code") or data.get("phrase_code") or ""),
            emotion=emotion,
        )
    except SensitiveTextRefused as exc:
        return JsonResponse(
            error_body(exc.code, str(exc), {"text": [str(exc)], "categories": exc.categories}),
            status=400,
        )
    except ValidationError as exc:
        return JsonResponse(validation_error_body(exc), status=400)
    return JsonResponse({"message": message_payload(message)}, status=201)


@require_GET
@staff_required
def console_phrases(request):
    phrases = phrase_search(query=request.GET.get("q", ""))
    return JsonResponse(
        {
            "phrases": [
                {
                    "short_code": p.short_code,
                    "title": p.title,
                    "text": p.text,
                    "category": p.category,
                }
                for p in phrases
            ]
        }
    )


def voice_media(request, token: str):
    """A voice message's audio by its signed, expiring token (no session: an <audio> element
    cannot send a JWT; the token is the capability and names one message's file)."""
    from django.http import FileResponse

    message = message_from_voice_token(token)
    if message is None:
        return JsonResponse(error_body("not_found", "Audio not found or link expired."), status=404)
    try:
        handle = message.voice_file.open("rb")
    except FileNotFoundError:
        return JsonResponse(error_body("not_found", "Audio not found or link expired."), status=404)
    response = FileResponse(handle, content_type="audio/mpeg")
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    return response
