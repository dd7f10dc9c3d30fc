from django.urls import path

from . import api

urlpatterns = [
    path("conversations/", api.ConversationListCreateApi.as_view(), name="conversations"),
    path(
        "conversations/<int:conversation_id>/",
        api.ConversationDetailApi.as_view(),
        name="conversation-detail",
    ),
    path(
        "conversations/<int:conversation_id>/messages/",
        api.ConversationMessagesApi.as_view(),
        name="conversation-messages",
    ),
    path(
        "agent/conversations/",
        api.AgentConversationListApi.as_view(),
        name="agent-conversations",
    ),
    path(
        "agent/conversations/<int:conversation_id>/assign/",
        api.AgentConversationAssignApi.as_view(),
        name="agent-conversation-assign",
    ),
    path(
        "agent/conversations/<int:conversation_id>/resolve/",
        api.AgentConversationResolveApi.as_view(),
        name="agent-conversation-resolve",
    ),
    path(
        "agent/moderation/check/",
        api.AgentModerationCheckApi.as_view(),
        name="agent-moderation-check",
    ),
    path(
        "agent/conversations/<int:conversation_id>/reply/",
        api.AgentConversationReplyApi.as_view(),
        name="agent-conversation-reply",
    ),
]
