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
    path(
        "conversations/<int:conversation_id>/handoff/",
        api.ConversationHandoffApi.as_view(),
        name="conversation-handoff",
    ),
    path(
        "conversations/<int:conversation_id>/csat/",
        api.ConversationCsatApi.as_view(),
        name="conversation-csat",
    ),
    path(
        "agent/conversations/<int:conversation_id>/",
        api.AgentConversationDetailApi.as_view(),
        name="agent-conversation-detail",
    ),
    path(
        "agent/conversations/<int:conversation_id>/read/",
        api.AgentConversationReadApi.as_view(),
        name="agent-conversation-read",
    ),
    path(
        "agent/conversations/<int:conversation_id>/claim/",
        api.AgentConversationClaimApi.as_view(),
        name="agent-conversation-claim",
    ),
    path(
        "agent/conversations/<int:conversation_id>/transfer/",
        api.AgentConversationTransferApi.as_view(),
        name="agent-conversation-transfer",
    ),
    path(
        "agent/conversations/<int:conversation_id>/reopen/",
        api.AgentConversationReopenApi.as_view(),
        name="agent-conversation-reopen",
    ),
    path(
        "agent/conversations/<int:conversation_id>/customer/",
        api.AgentCustomerPanelApi.as_view(),
        name="agent-conversation-customer",
    ),
    path("agent/agents/", api.AgentListApi.as_view(), name="agent-agents"),
    path("agent/me/", api.AgentMeApi.as_view(), name="agent-me"),
    path("agent/me/presence/", api.AgentPresenceApi.as_view(), name="agent-me-presence"),
    path("agent/phrases/", api.AgentPhraseListApi.as_view(), name="agent-phrases"),
    path(
        "agent/phrases/<int:phrase_id>/preview/",
        api.AgentPhrasePreviewApi.as_view(),
        name="agent-phrase-preview",
    ),
]
