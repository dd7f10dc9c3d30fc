"""The agent console: server-rendered pages plus small JSON endpoints for its script.

Session auth and CSRF (these are browser views for staff, not the mini-program API).
"""

import json
from functools import wraps

from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import JsonResponse
from django.shortcuts import render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_POST

from common.errors import error_body, validation_error_body
from tts.models import EmotionPreset

from .payloads import conversation_payload, message_payload
from .selectors.conversations import (
    conversation_get_for_user,
    conversations_for_console,
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


@require_GET
@staff_required
def console_index(request):
    return render(
        request,
        "console/index.html",
        {"conversations": conversations_for_console()},
    )


@require_GET
@staff_required
def console_conversation(request, conversation_id: int):
    conversation = _conversation(request, conversation_id)
    conversation_mark_read(conversation=conversation)
    suggestion = emotion_suggestion(conversation=conversation)
    messages = [message_payload(m) for m in conversation_messages(conversation=conversation)]
    return render(
        request,
        "console/conversation.html",
        {
            "conversation": conversation,
            "messages": messages,
            "presets": EmotionPreset.objects.order_by("name"),
            "suggestion": suggestion,
            "console_config": {
                "conversationId": conversation.pk,
                "wsPath": f"/ws/chat/{conversation.pk}/",
                "messagesUrl": reverse("console:messages", args=[conversation.pk]),
                "replyUrl": reverse("console:reply", args=[conversation.pk]),
                "phrasesUrl": reverse("console:phrases"),
                "suggestion": suggestion.name if suggestion else "",
            },
        },
    )


@require_GET
@staff_required
def console_messages(request, conversation_id: int):
    """Polling fallback and re-sync after a WebSocket reconnect."""
    conversation = _conversation(request, conversation_id)
    try:
        after = int(request.GET.get("after", "0"))
    except ValueError:
        after = 0
    conversation_mark_read(conversation=conversation)
    suggestion = emotion_suggestion(conversation=conversation)
    return JsonResponse(
        {
            "messages": [
                message_payload(m)
                for m in conversation_messages(conversation=conversation, after_id=after)
            ],
            "suggestion": suggestion.name if suggestion else "",
            "conversation": conversation_payload(conversation),
        }
    )


@require_POST
@staff_required
def console_reply(request, conversation_id: int):
    conversation = _conversation(request, conversation_id)
    try:
        data = json.loads(request.body or b"{}")
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
