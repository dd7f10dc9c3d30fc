"""WebSocket routes of every app, collected in one place."""

from django.urls import path

from dialogs.consumers import ChatConsumer, ConsoleConsumer
from tts.consumers import SpeechStreamConsumer

websocket_urlpatterns: list = [
    path("ws/chat/<int:conversation_id>/", ChatConsumer.as_asgi()),
    path("ws/console/", ConsoleConsumer.as_asgi()),
    path("ws/tts/", SpeechStreamConsumer.as_asgi()),
]
