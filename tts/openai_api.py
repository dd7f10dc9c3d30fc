"""`POST /v1/audio/speech`: the OpenAI speech API shape, for servers holding an API key.

Existing OpenAI clients work by changing their base URL and key. Audio comes from the same
service as /api/tts/ (clip cache, audit trail), with the key's name in the audit record.
"""

from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAccess, ApiKeyAuthentication
from accounts.models import ApiScope
from tts import selectors
from tts.api import audio_response, speech_for_request
from tts.engine.audio import AUDIO_FORMATS
from tts.models import SPEED_RANGE, SynthesisSource, Voice

# OpenAI's voice names; a client written for OpenAI sends one of these and gets our default.
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}
)
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "baker")
# What OpenAI offers; we encode only AUDIO_FORMATS (mp3, wav, pcm) and say so in the 400.
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")


def _key_id(group, request) -> str:
    return f"api-key:{request.auth.pk}"


def _key_rate(group, request) -> str:
    return request.auth.rate_limit


class OpenAISpeechInputSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=MODELS)
    input = serializers.CharField(max_length=2000, trim_whitespace=False)
    voice = serializers.CharField(max_length=64, required=False)
    response_format = serializers.CharField(max_length=16, default="mp3")
    speed = serializers.FloatField(min_value=SPEED_RANGE[0], max_value=SPEED_RANGE[1], default=1.0)

    def validate_voice(self, value: str) -> Voice:
        if value in OPENAI_VOICES:
            return selectors.voice_default()
        voice = Voice.objects.filter(engine_voice_id=value, is_active=True).first()
        if voice is None:
            raise serializers.ValidationError(_("Unknown voice %s.") % value)
        return voice

    def validate_response_format(self, value: str) -> str:
        if value not in AUDIO_FORMATS:
            raise serializers.ValidationError(
                _("Unsupported response_format %(value)s; supported: %(supported)s.")
                % {"value": value, "supported": ", ".join(AUDIO_FORMATS)}
            )
        return value


@method_decorator(ratelimit(key=_key_id, rate=_key_rate, block=True), name="post")
class OpenAISpeechCreateApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ApiKeyAccess]
    required_scope = ApiScope.TTS

    @extend_schema(
        request=OpenAISpeechInputSerializer,
        responses={
            (200, "audio/mpeg"): OpenApiResponse(OpenApiTypes.BINARY, description="audio"),
            (200, "audio/wav"): OpenApiResponse(OpenApiTypes.BINARY, description="audio"),
        },
        summary="OpenAI-compatible speech synthesis (API key)",
        tags=["v1"],
    )
    def post(self, request):
        serializer = OpenAISpeechInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        result = speech_for_request(
            request,
            {
                "text": data["input"],
                "voice": data.get("voice"),
                "speed": data["speed"],
                "format": data["response_format"],
            },
            source=SynthesisSource.API,
            api_key_name=request.auth.name,
        )
        return audio_response(result, encoding="binary")
