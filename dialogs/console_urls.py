from django.urls import path

from . import views

app_name = "console"

urlpatterns = [
    path("", views.console_index, name="index"),
    path("phrases/", views.console_phrases, name="phrases"),
    path("c/<int:conversation_id>/", views.console_conversation, name="conversation"),
    path("c/<int:conversation_id>/messages/", views.console_messages, name="messages"),
    path("c/<int:conversation_id>/reply/", views.console_reply, name="reply"),
]
