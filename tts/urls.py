from django.urls import path

from . import api

urlpatterns = [
    path("tts/", api.SpeechCreateApi.as_view(), name="tts-speech"),
    path("voices/", api.VoiceListApi.as_view(), name="tts-voices"),
    path("emotions/", api.EmotionListApi.as_view(), name="tts-emotions"),
]

media_urlpatterns = [
    path("audio/<str:token>", api.clip_media, name="tts-clip"),
]
