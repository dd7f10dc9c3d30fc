from django.urls import path

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
]
