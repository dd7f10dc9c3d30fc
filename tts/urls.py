from django.urls import path, re_path

from . import api, openai_api

urlpatterns = [
    path("tts/", api.SpeechCreateApi.as_view(), name="tts-speech"),
    path("voices/", api.VoiceListApi.as_view(), name="tts-voices"),
    path("emotions/", api.EmotionListApi.as_view(), name="tts-emotions"),
]

media_urlpatterns = [
    path("audio/<str:token>", api.clip_media, name="tts-clip"),
]

# OpenAI-compatible routes, mounted at /v1/ (API-key auth only).
openai_urlpatterns = [
    path("audio/speech", openai_api.OpenAISpeechCreateApi.as_view(), name="v1-audio-speech"),
    path("audio/voices", openai_api.OpenAIVoiceListApi.as_view(), name="v1-audio-voices"),
    path("models", openai_api.OpenAIModelListApi.as_view(), name="v1-models"),
    path("models/<str:model_id>", openai_api.OpenAIModelDetailApi.as_view(), name="v1-model"),
    re_path(r"^.*$", openai_api.openai_not_found),
]
