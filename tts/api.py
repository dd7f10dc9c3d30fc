"""Speech API: direct TTS, catalogue, and the signed clip media view."""

import base64

from django.conf import settings
from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.response import Response
from rest_framework.views import APIView

from common.delivery import stored_file_response
from common.errors import ClientError, ServiceUnavailable, error_body
from common.net import request_ip
from common.tasks import task_enqueue
from tts import selectors, services
from tts.engine.types import AUDIO_FORMATS, CONTENT_TYPES
from tts.fields import NamedObjectField, SpeechTextField, control_field
from tts.models import EmotionPreset, SynthesisSource, Voice

client_ip = request_ip  # proxy-aware, shared with API-key allowlists


# A lost clip file is usually rendered again within a couple of seconds.
CLIP_RESTORE_RETRY_AFTER_SECONDS = 3

# One synthesis budget per user, shared by /api/tts/ and the /ws/tts/ stream.
TTS_RATE_GROUP = "tts.speech"


def _tts_rate(group, request) -> str:
    return settings.TTS_RATE_LIMIT


def audio_response(
    result: services.SpeechResult, *, encoding: str, show_cache: bool = True
) -> HttpResponse:
    """`show_cache`: whether the caller may learn hit/miss (staff and API keys; never customers,
    to whom it would say what text someone else already had spoken)."""
    clip = result.clip
    headers = {"X-Audio-Duration-Ms": str(clip.duration_ms)}
    if show_cache:
        headers["X-Cache"] = "hit" if result.cache_hit else "miss"
    with clip.file.open("rb") as handle:
        data = handle.read()
    if encoding == "base64":
        return Response(
            {
                "format": clip.format,
                "content_type": CONTENT_TYPES[clip.format],
                "duration_ms": clip.duration_ms,
                "sample_rate": clip.sample_rate,
                **({"cache_hit": result.cache_hit} if show_cache else {}),
                "audio_base64": base64.b64encode(data).decode(),
            },
            headers=headers,
        )
    response = HttpResponse(data, content_type=CONTENT_TYPES[clip.format], headers=headers)
    response["Content-Length"] = str(len(data))
    return response


class SpeechInputSerializer(serializers.Serializer):
    text = SpeechTextField()
    voice = NamedObjectField(
        lookup=lambda name: selectors.voice_active_get(engine_voice_id=name),
        slug_name="engine_voice_id",
        required=False,
    )
    emotion = NamedObjectField(
        lookup=lambda name: selectors.emotion_preset_get(name=name),
        slug_name="name",
        required=False,
    )
    speed = control_field("speed", required=False)
    pitch = control_field("pitch", required=False)
    format = serializers.ChoiceField(choices=AUDIO_FORMATS, default="mp3")
    encoding = serializers.ChoiceField(choices=["binary", "base64"], default="binary")


class SpeechBase64OutputSerializer(serializers.Serializer):
    format = serializers.CharField()
    content_type = serializers.CharField()
    duration_ms = serializers.IntegerField()
    sample_rate = serializers.IntegerField()
    cache_hit = serializers.BooleanField(required=False, help_text="Staff and API keys only.")
    audio_base64 = serializers.CharField()


def speech_for_request(request, data: dict, *, source: str, api_key_name: str = ""):
    """Shared by /api/tts/ and /v1/audio/speech: controls -> one service call -> errors mapped."""
    try:
        controls = services.speech_stream_controls(
            preset=data.get("emotion"), speed=data.get("speed"), pitch=data.get("pitch")
        )
        return services.speech_clip_get_or_create(
            text=data["text"],
            preset=data.get("emotion"),
            voice=data.get("voice"),
            controls=controls,
            fmt=data["format"],
            source=source,
            user=request.user,
            client_ip=client_ip(request),
            api_key_name=api_key_name,
            cache_scope=services.cache_scope_for(user=request.user, api_key_name=api_key_name),
            render_on_worker=settings.TTS_RENDER_ON_WORKER,
        )
    except services.SpeechBudgetExceeded as exc:
        raise exceptions.Throttled(wait=exc.retry_after, detail=exc.message, code=exc.code) from exc
    except services.SpeechTextRejected as exc:
        if exc.code == "sensitive_text":
            raise ClientError(exc.message, exc.code, fields={"text": [exc.message]}) from exc
        raise exceptions.ValidationError({"text": [exc.message]}, code=exc.code) from exc
    except services.SpeechSynthesisFailed as exc:
        raise ServiceUnavailable(
            "语音合成暂不可用，请稍后再试 / Speech synthesis is unavailable.",
            "tts_unavailable",
            retry_after=10,
        ) from exc


@method_decorator(
    ratelimit(group=TTS_RATE_GROUP, key="user_or_ip", rate=_tts_rate, block=True), name="post"
)
class SpeechCreateApi(APIView):
    @extend_schema(
        request=SpeechInputSerializer,
        responses={
            (200, "audio/mpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="audio"),
            (200, "application/json"): SpeechBase64OutputSerializer,
        },
        summary="Synthesise speech (served from the clip cache when possible)",
    )
    def post(self, request):
        serializer = SpeechInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = speech_for_request(request, serializer.validated_data, source=SynthesisSource.API)
        return audio_response(
            result,
            encoding=serializer.validated_data["encoding"],
            show_cache=bool(request.user.is_staff),
        )


class VoiceOutputSerializer(serializers.ModelSerializer):
    id = serializers.CharField(source="engine_voice_id")

    class Meta:
        model = Voice
        fields = ["id", "display_name", "is_default"]


class EmotionOutputSerializer(serializers.ModelSerializer):
    class Meta:
        model = EmotionPreset
        fields = ["name", "label", "speed", "pitch", "energy", "pause", "description"]


class VoiceListApi(APIView):
    @extend_schema(responses={200: VoiceOutputSerializer(many=True)})
    def get(self, request):
        return Response(VoiceOutputSerializer(selectors.voice_list(), many=True).data)


class EmotionListApi(APIView):
    @extend_schema(responses={200: EmotionOutputSerializer(many=True)})
    def get(self, request):
        return Response(EmotionOutputSerializer(selectors.emotion_preset_list(), many=True).data)


def clip_media(request, token: str):
    """Serve a clip by its signed, expiring token. No auth: the token is the capability (an
    <audio> element cannot send a JWT); there is no way to list or guess other clips.
    The token check is always ours; the bytes come from Nginx or the object store in
    production (common.delivery). A clip whose file is gone is rendered again on the `tts`
    queue and the client is told to retry, never a 500."""
    clip = selectors.clip_from_token(token)
    if clip is None:
        return JsonResponse(
            error_body("not_found", _("Audio not found or link expired.")), status=404
        )
    try:
        return stored_file_response(name=clip.file.name, content_type=CONTENT_TYPES[clip.format])
    except FileNotFoundError:
        from tts.tasks import clip_file_restore_task

        task_enqueue(clip_file_restore_task, clip.pk)
        response = JsonResponse(
            error_body(
                "audio_rendering", _("The audio is being prepared again; try again shortly.")
            ),
            status=404,
        )
        response["Retry-After"] = str(CLIP_RESTORE_RETRY_AFTER_SECONDS)
        return response
