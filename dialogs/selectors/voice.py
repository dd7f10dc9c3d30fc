"""Voice-message reads: the speech-recognition domain prompt, signed audio URLs, the voice and
transcript parts of the message payload."""

import hashlib
import time
from typing import Any

from django.conf import settings
from django.core import signing
from django.urls import reverse

from tts.asr.prompt import prompt_build

from ..models import AudioStatus, CannedPhrase, Intent, Message, MessageKind


def asr_prompt_current() -> str:
    """The speech-recognition domain prompt: active intents' keywords and phrase texts.

    Phrase texts with template variables are skipped ({{customer.nickname}} is no speech).
    """
    keywords = [
        keyword
        for intent in Intent.objects.filter(is_active=True).order_by("-priority", "name")
        for keyword in intent.keyword_list
    ]
    phrases = [
        text
        for text in CannedPhrase.objects.filter(is_active=True)
        .order_by("category", "short_code")
        .values_list("text", flat=True)
        if "{{" not in text
    ]
    return prompt_build(keywords=keywords, phrases=phrases)


# --- voice message audio and payload parts ---------------------------------------------------

_VOICE_SALT = "dialogs.voice-url"


def _voice_file_tag(message: Message) -> str:
    return hashlib.sha256(message.voice_file.name.encode()).hexdigest()[:16]


def message_voice_url(message: Message, *, ttl_seconds: int | None = None) -> str:
    """Signed, expiring URL of a voice message's audio. Like clips: the token is the capability
    an <audio> element can carry; it names the message, its file and the expiry."""
    ttl = ttl_seconds or settings.TTS_AUDIO_URL_TTL_SECONDS
    token = signing.dumps(
        {"m": message.pk, "f": _voice_file_tag(message), "x": int(time.time()) + ttl},
        salt=_VOICE_SALT,
    )
    return reverse("dialogs-voice", kwargs={"token": token})


def message_from_voice_token(token: str) -> Message | None:
    """The voice message a token names, or None if tampered with, expired or gone."""
    try:
        data = signing.loads(token, salt=_VOICE_SALT)
    except signing.BadSignature:
        return None
    if not isinstance(data, dict) or int(data.get("x", 0)) < time.time():
        return None
    message = Message.objects.filter(pk=data.get("m"), kind=MessageKind.VOICE).first()
    if message is None or not message.voice_file or _voice_file_tag(message) != data.get("f"):
        return None
    return message


def message_voice_payload(message: Message) -> dict[str, Any] | None:
    if message.kind != MessageKind.VOICE or not message.voice_file:
        return None
    return {
        "url": message_voice_url(message),
        "duration_ms": message.voice_duration_ms,
        "format": message.voice_format,
    }


def message_display_text(message: Message) -> str:
    """What customers and agents are shown: the masked text where a rule masks (the original
    stays in the database for supervisors, in the admin)."""
    return message.masked_text or message.text


def message_transcript_payload(message: Message) -> dict[str, Any] | None:
    if message.kind != MessageKind.VOICE:
        return None
    ready = message.transcript_status == AudioStatus.READY
    return {
        "status": message.transcript_status,
        "text": message_display_text(message) if ready else "",
        # Silence or nothing recognised: the message stays, with this marker and no reply.
        "empty": ready and not message.text,
    }
