"""`/v1/`: the OpenAI speech API shape, for servers holding an API key.

Existing OpenAI clients (the official `openai` package included) work by changing their base
URL and key. Audio comes from the same service as /api/tts/ (clip cache, audit trail), with the
key's name in the audit record.

What the official clients need, and what this module therefore does differently from /api/:
- They send `Accept: application/octet-stream` (or an `audio/*` type): content negotiation
  here never refuses a request for its Accept header; the audio goes out in its own type and
  errors go out as JSON.
- They parse errors as `{"error": {"message", "type", "param", "code"}}`: /v1/ errors carry
  those keys (plus our `fields`, so our own envelope's readers keep working).
- They discover models and voices: GET /v1/models, /v1/models/{id} and /v1/audio/voices.
"""

from django.http import JsonResponse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import exceptions, serializers
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import ApiKeyAccess, ApiKeyAuthentication
from accounts.models import ApiScope
from common.errors import api_exception_handler
from tts import selectors
from tts.api import audio_response, speech_for_request
from tts.engine.types import AUDIO_FORMATS
from tts.fields import SpeechTextField, control_field
from tts.models import EmotionPreset, SynthesisSource, Voice

# OpenAI's voice names; a client written for OpenAI sends one of these and gets our default.
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "onyx", "nova", "sage", "shimmer", "verse"}
)
MODELS = ("tts-1", "tts-1-hd", "gpt-4o-mini-tts", "baker")
# OpenAI's six formats; all of them are encoded here (pcm: 24 kHz s16le mono, like OpenAI's).
OPENAI_FORMATS = ("mp3", "opus", "aac", "flac", "wav", "pcm")
assert set(OPENAI_FORMATS) <= set(AUDIO_FORMATS)
# Stable "created" stamp for /v1/models (clients only display it).
_MODELS_CREATED = 1_700_000_000

_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "invalid_request_error",
    403: "permission_error",
    404: "invalid_request_error",
    405: "invalid_request_error",
    413: "invalid_request_error",
    429: "rate_limit_error",
    503: "server_error",
}


def openai_error_body(status: int, code: str, message: str, fields: dict | None = None) -> dict:
    """OpenAI's error keys (message, type, param, code) plus our envelope's `fields`."""
    fields = fields or {}
    return {
        "error": {
            "message": message,
            "type": _ERROR_TYPES.get(status, "server_error" if status >= 500 else "api_error"),
            "param": next(iter(fields), None),
            "code": code,
            "fields": fields,
        }
    }


def openai_exception_handler(exc, context):
    response = api_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "error" in response.data:
        error = response.data["error"]
        response.data = openai_error_body(
            response.status_code, error["code"], error["message"], error.get("fields")
        )
    return response


class AnyAcceptNegotiation(DefaultContentNegotiation):
    """Never 406: speech answers are HttpResponses in the audio's own type whatever the client
    accepts (octet-stream, audio/mpeg, */*), and errors are JSON."""

    def select_renderer(self, request, renderers, format_suffix=None):
        renderer = renderers[0]
        return renderer, renderer.media_type


class OpenAIApi(APIView):
    authentication_classes = [ApiKeyAuthentication]
    permission_classes = [ApiKeyAccess]
    required_scope = ApiScope.TTS
    content_negotiation_class = AnyAcceptNegotiation

    def get_exception_handler(self):
        return openai_exception_handler


def _key_id(group, request) -> str:
    return f"api-key:{request.auth.pk}"


def _key_rate(group, request) -> str:
    return request.auth.rate_limit


def _resolve_voice(value: str) -> Voice:
    if value in OPENAI_VOICES:
        return selectors.voice_default()
    voice = selectors.voice_active_get(engine_voice_id=value)
    if voice is None:
        raise serializers.ValidationError(_("Unknown voice %s.") % value)
    return voice


class OpenAISpeechInputSerializer(serializers.Serializer):
    model = serializers.ChoiceField(choices=MODELS)
    input = SpeechTextField()
    voice = serializers.CharField(max_length=64, required=False)
    response_format = serializers.CharField(max_length=16, default="mp3")
    speed = control_field("speed", default=1.0)
    # gpt-4o-mini-tts: free-text tone instructions. We honour the name or Chinese label of one
    # of our emotion presets and refuse anything else (never silently ignored).
    instructions = serializers.CharField(max_length=200, required=False, allow_blank=True)
    # "audio" (the bytes) is what we send; "sse" is refused clearly.
    stream_format = serializers.ChoiceField(choices=["audio"], required=False)

    def validate_voice(self, value: str) -> Voice:
        return _resolve_voice(value)

    def validate_response_format(self, value: str) -> str:
        if value not in OPENAI_FORMATS:
            raise serializers.ValidationError(
                _("Unsupported response_format %(value)s; supported: %(supported)s.")
                % {"value": value, "supported": ", ".join(OPENAI_FORMATS)}
            )
        return value

    def validate_instructions(self, value: str) -> EmotionPreset | None:
        value = value.strip()
        if not value:
            return None
        preset = EmotionPreset.objects.filter(name=value).first() or (
            EmotionPreset.objects.filter(label=value).first()
        )
        if preset is None:
            names = ", ".join(p.name for p in selectors.emotion_preset_list())
            raise serializers.ValidationError(
                _("instructions must name one of our emotion presets: %s.") % names
            )
        return preset


@method_decorator(ratelimit(key=_key_id, rate=_key_rate, block=True), name="post")
class OpenAISpeechCreateApi(OpenAIApi):
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
                "emotion": data.get("instructions"),
                "speed": data["speed"],
                "format": data["response_format"],
            },
            source=SynthesisSource.API,
            api_key_name=request.auth.name,
        )
        return audio_response(result, encoding="binary")


def _model_entry(model_id: str) -> dict:
    return {
        "id": model_id,
        "object": "model",
        "created": _MODELS_CREATED,
        "owned_by": "cs-platform",
    }


class OpenAIModelListApi(OpenAIApi):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="OpenAI model list",
        tags=["v1"],
        operation_id="v1_models_list",
    )
    def get(self, request):
        return Response({"object": "list", "data": [_model_entry(m) for m in MODELS]})


class OpenAIModelDetailApi(OpenAIApi):
    @extend_schema(
        responses={200: OpenApiTypes.OBJECT},
        summary="OpenAI model",
        tags=["v1"],
        operation_id="v1_models_retrieve",
    )
    def get(self, request, model_id: str):
        if model_id not in MODELS:
            raise exceptions.NotFound(
                _("The model %s does not exist.") % model_id, "model_not_found"
            )
        return Response(_model_entry(model_id))


class OpenAIVoiceListApi(OpenAIApi):
    """Voice discovery: our voices by the id /v1/audio/speech takes, plus OpenAI's names
    (which all speak with our default voice)."""

    @extend_schema(responses={200: OpenApiTypes.OBJECT}, summary="Voices", tags=["v1"])
    def get(self, request):
        default = selectors.voice_default()
        ours = [
            {"id": v.engine_voice_id, "name": v.display_name, "default": v.is_default}
            for v in selectors.voice_list()
        ]
        aliases = [
            {"id": name, "name": default.display_name, "alias_of": default.engine_voice_id}
            for name in sorted(OPENAI_VOICES)
        ]
        return Response({"object": "list", "voices": ours + aliases, "data": ours + aliases})


def openai_not_found(request, *args, **kwargs):
    """Unknown /v1/ paths answer in OpenAI's error shape too."""
    return JsonResponse(
        openai_error_body(404, "not_found", _("Unknown endpoint %s.") % request.path), status=404
    )
