"""The chat HTTP API: customers (mini-program, web chat page) and agents (integrations).

Thin views: validate -> one service or selector -> the payload builders of `dialogs.payloads`.
The output serializers (generated from the same payload types) are named in `extend_schema`
for the OpenAPI schema only: answering through them would deep-copy their fields on every
request for the very same dict. Errors use the one envelope (`common.errors`); lists use
cursor pagination.
"""

import base64
import binascii
from collections.abc import Mapping

from django.conf import settings
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils import timezone
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import exceptions, serializers, status
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.parsers import MultiPartParser
from rest_framework.permissions import BasePermission, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.models import User
from common.errors import ClientError
from common.json_bounded import BoundedJSONParser
from common.net import request_ip as client_ip
from common.pagination import DefaultCursorPagination
from tts import services as tts_services
from tts.adapters import asr_limits
from tts.admin import preview_response
from tts.asr.decoding import AudioRejected, decode_audio
from tts.fields import SpeechTextField
from tts.models import EmotionPreset

from .models import (
    VARIABLE_RE,
    CannedPhrase,
    Conversation,
    ConversationPriority,
    ConversationStatus,
    HandoffReason,
    Presence,
)
from .payloads import conversation_payload, message_payload
from .selectors import workflow as workflow_reads
from .selectors.conversations import (
    conversation_check_for_customer,
    conversation_get_for_customer,
    conversation_get_for_user,
    conversations_for_customer,
    user_is_staff,
)
from .selectors.messages import MessageRow, conversation_message_rows
from .selectors.phrases import phrase_search
from .serializers import (
    AgentConversationPageOutputSerializer,
    AgentPresenceListOutputSerializer,
    AgentPresenceOutputSerializer,
    ConversationOutputSerializer,
    ConversationPageOutputSerializer,
    CsatOutputSerializer,
    CustomerPanelOutputSerializer,
    MessageOutputSerializer,
    MessagePageOutputSerializer,
    MessagePostOutputSerializer,
    PhraseListOutputSerializer,
)
from .services import workflow
from .services.conversations import conversation_mark_read, conversation_resume_or_create
from .services.messages import CLIENT_ID_MAX, agent_reply_create, customer_message_post
from .services.moderation import SensitiveTextRefused
from .services.voice_messages import customer_voice_post
from .services.workflow import WorkflowError


class IsCustomer(BasePermission):
    message = "Only customers can do this."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and getattr(user, "is_customer", False))


class IsAgent(BasePermission):
    message = "Only agents can do this."

    def has_permission(self, request, view) -> bool:
        return user_is_staff(request.user)


def _chat_rate(group, request) -> str:
    return settings.CHAT_RATE_LIMIT


class MessageCursorPagination(DefaultCursorPagination):
    """Oldest first: a chat is read top to bottom, and `after` polling appends at the end."""

    ordering = "pk"

    def get_paginated_response(self, data):
        response = super().get_paginated_response(data)
        response.data["has_more"] = response.data["next"] is not None
        return response


def _row_payload(row: dict):
    return message_payload(MessageRow(row))


SCROLLBACK_PAGE_DEFAULT = 30
SCROLLBACK_PAGE_MAX = 100


def _message_id_param(request, name: str) -> int | None:
    raw = request.query_params.get(name)
    if raw in (None, ""):
        return None
    try:
        value = int(raw)
    except ValueError as exc:
        raise exceptions.ValidationError({name: [_("Must be a message id.")]}) from exc
    if value < 0:
        raise exceptions.ValidationError({name: [_("Must be a message id.")]})
    return value


def _paginated(view: APIView, request, queryset, build, pagination_class):
    paginator = pagination_class()
    page = paginator.paginate_queryset(queryset, request, view=view)
    return paginator.get_paginated_response([build(item) for item in page])


# --- customers --------------------------------------------------------------------------------


class ConversationListCreateApi(APIView):
    """GET: the caller's conversations, newest first. POST: resume the open one or start one."""

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsCustomer()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="conversations_list",
        responses={200: ConversationPageOutputSerializer},
    )
    def get(self, request):
        conversations = conversations_for_customer(customer=request.user)
        return _paginated(
            self, request, conversations, conversation_payload, DefaultCursorPagination
        )

    @extend_schema(
        operation_id="conversations_resume_or_create",
        request=None,
        responses={200: ConversationOutputSerializer, 201: ConversationOutputSerializer},
        description="Returns the open (or pending) conversation with 200, or a new one with 201.",
    )
    def post(self, request):
        conversation, created = conversation_resume_or_create(customer=request.user)
        return Response(
            conversation_payload(conversation),
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ConversationDetailApi(APIView):
    @extend_schema(
        operation_id="conversations_retrieve", responses={200: ConversationOutputSerializer}
    )
    def get(self, request, conversation_id: int):
        conversation = conversation_get_for_customer(
            user=request.user, conversation_id=conversation_id
        )
        return Response(conversation_payload(conversation))


@method_decorator(
    ratelimit(key="user", rate=_chat_rate, method="POST", group="chat-message", block=True),
    name="post",
)
class ConversationMessagesApi(APIView):
    """GET: messages oldest first (`after` for polling). POST: a customer's message, typed
    (JSON `text`) or spoken (multipart `audio`, or JSON `audio_base64` + `format`)."""

    # The project's depth-bounded JSON parser (deep nesting is a 400), plus uploads.
    parser_classes = [BoundedJSONParser, MultiPartParser]

    class VoiceCreateInputSerializer(serializers.Serializer):
        audio = serializers.FileField(
            required=False, help_text="multipart: the recording (wav, mp3, aac/m4a, silk, ...)"
        )
        audio_base64 = serializers.CharField(
            required=False,
            allow_blank=True,  # an empty recording gets its own code (audio_empty)
            trim_whitespace=True,
            help_text="JSON: the recording, base64",
        )
        format = serializers.CharField(
            required=False,
            max_length=40,
            help_text="Declared format; must agree with the bytes. Required for raw pcm.",
        )
        sample_rate = serializers.IntegerField(
            required=False, help_text="Raw PCM (16-bit mono) and SILK: the recording's rate."
        )
        client_id = serializers.CharField(
            required=False, allow_blank=True, max_length=CLIENT_ID_MAX
        )

    class MessageCreateInputSerializer(serializers.Serializer):
        text = serializers.CharField(
            trim_whitespace=True,
            help_text="The customer's message (at most CHAT_MAX_MESSAGE_CHARS characters).",
        )
        client_id = serializers.CharField(
            required=False,
            allow_blank=True,
            max_length=CLIENT_ID_MAX,
            help_text="Idempotency key: a retry with the same value returns the stored message.",
        )

        def validate_text(self, value: str) -> str:
            limit = settings.CHAT_MAX_MESSAGE_CHARS
            if len(value) > limit:
                raise serializers.ValidationError(
                    _("At most %(limit)d characters.") % {"limit": limit}
                )
            return value

    def get_permissions(self):
        if self.request.method == "POST":
            return [IsAuthenticated(), IsCustomer()]
        return [IsAuthenticated()]

    @extend_schema(
        operation_id="conversations_messages_list",
        parameters=[
            OpenApiParameter(
                "after", int, description="Only messages with a larger id (incremental polling)."
            ),
            OpenApiParameter(
                "before",
                int,
                description="Scroll-back: the `page_size` messages just before this id, oldest "
                "first; `has_more` says whether older ones exist.",
            ),
        ],
        responses={200: MessagePageOutputSerializer},
    )
    def get(self, request, conversation_id: int):
        # For a customer the page query itself carries the permission (it joins the
        # conversation's owner): a page with rows proves access, so the separate check runs
        # only for an empty page or a refused parameter, and decides 404 as before (a 404 for
        # someone else's conversation still comes before any 400).
        owner = None if user_is_staff(request.user) else request.user.pk
        try:
            response, empty = self._message_page(request, conversation_id, owner)
        except exceptions.APIException:
            conversation_check_for_customer(user=request.user, conversation_id=conversation_id)
            raise
        if empty:
            conversation_check_for_customer(user=request.user, conversation_id=conversation_id)
        return response

    def _message_page(self, request, conversation_id: int, owner: int | None):
        before = _message_id_param(request, "before")
        after = _message_id_param(request, "after") or 0
        # Rows, not model instances: the payloads are the same (`MessageRow`), the CPU is not.
        messages = conversation_message_rows(
            conversation_id=conversation_id, after_id=after, customer_id=owner
        )
        if before is None:
            paginator = MessageCursorPagination()
            page = paginator.paginate_queryset(messages, request, view=self)
            response = paginator.get_paginated_response([_row_payload(row) for row in page])
            return response, not page
        # Scroll-back: the page just before `before`, oldest first inside the page.
        try:
            size = int(request.query_params.get("page_size") or SCROLLBACK_PAGE_DEFAULT)
        except ValueError as exc:
            raise exceptions.ValidationError({"page_size": [_("Must be a number.")]}) from exc
        size = max(1, min(size, SCROLLBACK_PAGE_MAX))
        page = list(messages.filter(pk__lt=before).order_by("-created_at", "-pk")[: size + 1])
        has_more = len(page) > size
        page = list(reversed(page[:size]))
        response = Response(
            {
                "next": None,
                "previous": None,
                "has_more": has_more,
                "results": [_row_payload(row) for row in page],
            }
        )
        return response, not page

    @extend_schema(
        operation_id="conversations_messages_create",
        request={
            "application/json": MessageCreateInputSerializer,
            "multipart/form-data": VoiceCreateInputSerializer,
        },
        responses={201: MessagePostOutputSerializer, 200: MessagePostOutputSerializer},
        description="201 with the stored message and the bot's auto-reply (or null); "
        "200 with the already stored pair when `client_id` was seen before. A voice message: "
        "multipart `audio`, or JSON `audio_base64` + `format` (see docs/api.md); its transcript "
        "follows as a `message.transcribed` event.",
    )
    def post(self, request, conversation_id: int):
        # A typed message: the service's locked read of the conversation is also its permission
        # check (404 for someone else's). Whatever is refused before it gets that check first,
        # so a 404 for someone else's conversation still comes before any 400.
        try:
            if not isinstance(request.data, Mapping):  # a malformed body raises here too
                raise exceptions.ParseError(_("JSON parse error: an object was expected."))
            voice = "audio" in request.data or "audio_base64" in request.data
            if not voice:
                serializer = self.MessageCreateInputSerializer(data=request.data)
                serializer.is_valid(raise_exception=True)
        except exceptions.APIException:
            conversation_check_for_customer(user=request.user, conversation_id=conversation_id)
            raise
        if voice:
            conversation = conversation_get_for_customer(
                user=request.user, conversation_id=conversation_id
            )
            return self._post_voice(request, conversation)
        try:
            result = customer_message_post(
                conversation_id=conversation_id,
                author=request.user,
                text=serializer.validated_data["text"],
                client_id=serializer.validated_data.get("client_id", ""),
            )
        except Conversation.DoesNotExist as exc:
            raise Http404 from exc
        data = {
            "message": message_payload(result.message),
            "bot_reply": message_payload(result.bot_reply) if result.bot_reply else None,
        }
        return Response(data, status=status.HTTP_201_CREATED if result.created else 200)

    def _post_voice(self, request, conversation):
        if "text" in request.data:
            raise exceptions.ValidationError({"text": [_("Send either text or audio, not both.")]})
        serializer = self.VoiceCreateInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        audit = {
            "user": request.user,
            "conversation_id": conversation.pk,
            "client_ip": client_ip(request),
        }
        try:
            raw, declared = voice_upload_bytes(data)
            decoded = decode_audio(
                raw, declared=declared, sample_rate=data.get("sample_rate"), limits=asr_limits()
            )
        except AudioRejected as exc:
            tts_services.recognition_record(event="rejected", error=exc.code, **audit)
            raise ClientError(
                exc.message, exc.code, status_code=exc.status, fields={"audio": [exc.message]}
            ) from exc
        result = customer_voice_post(
            conversation=conversation,
            author=request.user,
            decoded=decoded,
            client_id=data.get("client_id", ""),
        )
        if result.created:
            tts_services.recognition_record(
                event="received",
                message_id=result.message.pk,
                audio_format=decoded.format,
                size_bytes=len(raw),
                duration_ms=decoded.duration_ms,
                **audit,
            )
        data = {"message": message_payload(result.message), "bot_reply": None}
        return Response(data, status=status.HTTP_201_CREATED if result.created else 200)


def voice_upload_bytes(data: dict) -> tuple[bytes, str | None]:
    """The uploaded audio and its declared format, size-checked before anything is decoded."""
    limit = settings.ASR_MAX_BYTES
    upload = data.get("audio")
    if upload is not None:
        if upload.size > limit:
            raise AudioRejected("audio_too_large", f"audio is larger than {limit} bytes", 413)
        declared = data.get("format")
        content_type = (upload.content_type or "").lower()
        if not declared and content_type.startswith("audio/"):
            declared = content_type  # the browser's MediaRecorder type, e.g. audio/webm
        return upload.read(), declared
    text = data.get("audio_base64") or ""
    if "," in text[:100] and text.startswith("data:"):
        text = text.split(",", 1)[1]  # a data: URL as some clients send it
    if len(text) > (limit + 2) // 3 * 4:
        raise AudioRejected("audio_too_large", f"audio is larger than {limit} bytes", 413)
    if not data.get("format"):
        raise AudioRejected("audio_format_required", "give the format of audio_base64")
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise AudioRejected("audio_base64", "audio_base64 is not valid base64") from exc
    return raw, data["format"]


# --- agents -----------------------------------------------------------------------------------


def _agent_conversation(request, conversation_id: int):
    return conversation_get_for_user(user=request.user, conversation_id=conversation_id)


class WorkflowApiView(APIView):
    """A refused workflow move (`WorkflowError`) becomes the error envelope with its status:
    400 (bad input, with the field), 403 (not yours), 404, 409 (wrong state)."""

    def handle_exception(self, exc):
        if isinstance(exc, WorkflowError):
            if exc.status == 400:
                exc = exceptions.ValidationError({exc.field or "detail": [exc.message]})
            else:
                refused = exceptions.APIException(detail=exc.message, code=exc.code)
                refused.status_code = exc.status
                exc = refused
        return super().handle_exception(exc)


class QueuePagination(LimitOffsetPagination):
    """The queue is short (unresolved conversations) and has its own order, which a cursor
    pagination would replace with creation order."""

    default_limit = 100
    max_limit = 200


class AgentConversationListApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentConversationFilterSerializer(serializers.Serializer):
        view = serializers.ChoiceField(choices=["mine", "unassigned", "all"], required=False)
        assigned = serializers.ChoiceField(
            choices=["me", "none"], required=False, help_text="Older spelling of `view`."
        )
        status = serializers.ChoiceField(choices=ConversationStatus.choices, required=False)
        priority = serializers.ChoiceField(choices=ConversationPriority.choices, required=False)

    @extend_schema(
        operation_id="agent_conversations_list",
        parameters=[AgentConversationFilterSerializer],
        responses={200: AgentConversationPageOutputSerializer},
        description="The queue: without `status` the unresolved conversations. Waiting ones "
        "first (highest priority, then longest waiting), then the most recent.",
    )
    def get(self, request):
        filters = self.AgentConversationFilterSerializer(data=request.query_params)
        filters.is_valid(raise_exception=True)
        data = filters.validated_data
        view = data.get("view") or {"me": "mine", "none": "unassigned"}.get(
            data.get("assigned", ""), "all"
        )
        conversations = workflow_reads.conversations_for_agents(
            user=request.user, view=view, status=data.get("status"), priority=data.get("priority")
        )
        return _paginated(self, request, conversations, conversation_payload, QueuePagination)


class AgentConversationDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_retrieve",
        responses={200: ConversationOutputSerializer},
    )
    def get(self, request, conversation_id: int):
        conversation = workflow_reads.conversation_get_for_agent(conversation_id=conversation_id)
        return Response(conversation_payload(conversation))


class AgentConversationReadApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_read",
        request=None,
        responses={200: ConversationOutputSerializer},
        description="Marks the customer's messages read (unread_count -> 0).",
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        conversation_mark_read(conversation=conversation)
        conversation = workflow_reads.conversation_get_for_agent(conversation_id=conversation_id)
        return Response(conversation_payload(conversation))


def _conversation_response(conversation_id: int) -> Response:
    conversation = workflow_reads.conversation_get_for_agent(conversation_id=conversation_id)
    return Response(conversation_payload(conversation))


def _agent_by_id(agent_id: int) -> User:
    agent = User.objects.filter(pk=agent_id).first()
    if agent is None:
        raise exceptions.ValidationError({"agent_id": [_("No such user.")]})
    return agent


class AgentConversationClaimApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_claim",
        request=None,
        responses={200: ConversationOutputSerializer},
        description="Take a waiting conversation. 409 `already_assigned` when someone has it, "
        "`agent_at_capacity` when the caller is full, `already_resolved`.",
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        workflow.conversation_claim(conversation=conversation, agent=request.user)
        return _conversation_response(conversation_id)


class AgentConversationAssignApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentAssignInputSerializer(serializers.Serializer):
        agent_id = serializers.IntegerField(
            required=False, help_text="The agent to assign; default: the caller."
        )
        note = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(
        operation_id="agent_conversations_assign",
        request=AgentAssignInputSerializer,
        responses={200: ConversationOutputSerializer},
        description="400 `agent_id` for a non-agent; 409 `agent_at_capacity`; 403 "
        "`not_your_conversation` for an agent moving a colleague's conversation.",
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        serializer = self.AgentAssignInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent_id = serializer.validated_data.get("agent_id")
        agent = request.user if agent_id is None else _agent_by_id(agent_id)
        workflow.conversation_assign(
            conversation=conversation,
            agent=agent,
            actor=request.user,
            note=serializer.validated_data.get("note", ""),
        )
        return _conversation_response(conversation_id)


class AgentConversationTransferApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentTransferInputSerializer(serializers.Serializer):
        agent_id = serializers.IntegerField(
            allow_null=True, help_text="The agent to hand it to; null: back to the queue."
        )
        note = serializers.CharField(required=False, allow_blank=True, max_length=200)

    @extend_schema(
        operation_id="agent_conversations_transfer",
        request=AgentTransferInputSerializer,
        responses={200: ConversationOutputSerializer},
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        serializer = self.AgentTransferInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        agent_id = serializer.validated_data["agent_id"]
        note = serializer.validated_data.get("note", "")
        if agent_id is None:
            workflow.conversation_requeue(conversation=conversation, actor=request.user, note=note)
        else:
            workflow.conversation_assign(
                conversation=conversation,
                agent=_agent_by_id(agent_id),
                actor=request.user,
                note=note,
            )
        return _conversation_response(conversation_id)


class AgentConversationResolveApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_resolve",
        request=None,
        responses={200: ConversationOutputSerializer},
        description="Resolves and asks the customer for a rating (`csat.requested` event). "
        "409 `already_resolved` the second time.",
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        workflow.conversation_resolve(conversation=conversation, actor=request.user)
        return _conversation_response(conversation_id)


class AgentConversationReopenApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_reopen",
        request=None,
        responses={200: ConversationOutputSerializer},
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        workflow.conversation_reopen(conversation=conversation, actor=request.user)
        return _conversation_response(conversation_id)


class AgentConversationReplyApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentReplyInputSerializer(serializers.Serializer):
        text = SpeechTextField(required=False, allow_blank=True, help_text="Spoken after commit.")
        short_code = serializers.CharField(
            required=False, allow_blank=True, help_text="A canned phrase's short code."
        )
        emotion = serializers.SlugRelatedField(
            slug_field="name",
            queryset=EmotionPreset.objects.all(),
            required=False,
            allow_null=True,
            help_text="Emotion preset name; default: the policy's suggestion.",
        )

        def validate(self, attrs):
            if bool(attrs.get("text", "").strip()) == bool(attrs.get("short_code", "").strip()):
                raise serializers.ValidationError(_("Give exactly one of text or short_code."))
            return attrs

    @extend_schema(
        operation_id="agent_conversations_reply",
        request=AgentReplyInputSerializer,
        responses={201: MessageOutputSerializer},
    )
    def post(self, request, conversation_id: int):
        conversation = _agent_conversation(request, conversation_id)
        serializer = self.AgentReplyInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        try:
            message = agent_reply_create(
                conversation=conversation,
                agent=request.user,
                text=data.get("text", ""),
                short_code=data.get("short_code", "").strip(),
                emotion=data.get("emotion"),
            )
        except SensitiveTextRefused as exc:
            raise ClientError(
                str(exc), exc.code, fields={"text": [str(exc)], "categories": exc.categories}
            ) from exc
        return Response(message_payload(message), status=status.HTTP_201_CREATED)


class ModerationHitSerializer(serializers.Serializer):
    word = serializers.CharField()
    category = serializers.CharField()
    action = serializers.CharField()
    start = serializers.IntegerField()
    end = serializers.IntegerField()


# For the OpenAPI schema only (the view answers with a plain dict).
class ModerationCheckOutputSerializer(serializers.Serializer):
    blocked = serializers.BooleanField()
    flagged = serializers.BooleanField()
    masked_text = serializers.CharField()
    categories = serializers.ListField(child=serializers.CharField())
    hits = ModerationHitSerializer(many=True)


class AgentModerationCheckApi(APIView):
    """Would this reply be sent? The console asks before sending (and shows why not)."""

    permission_classes = [IsAgent]

    class ModerationCheckInputSerializer(serializers.Serializer):
        text = serializers.CharField(max_length=4000, trim_whitespace=False)

    @extend_schema(
        operation_id="agent_moderation_check",
        request=ModerationCheckInputSerializer,
        responses={200: ModerationCheckOutputSerializer},
    )
    def post(self, request):
        serializer = self.ModerationCheckInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        result = tts_services.text_moderate(text=serializer.validated_data["text"])
        return Response(
            {
                "blocked": result.blocked,
                "flagged": result.flagged,
                "masked_text": result.masked_text,
                "categories": result.categories,
                "hits": [
                    {
                        "word": h.word,
                        "category": h.category,
                        "action": h.action,
                        "start": h.start,
                        "end": h.end,
                    }
                    for h in result.hits
                ],
            }
        )


class AgentCustomerPanelApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_conversations_customer",
        responses={200: CustomerPanelOutputSerializer},
        description="Who the customer is: profile, earlier conversations, intents seen, "
        "ratings given.",
    )
    def get(self, request, conversation_id: int):
        conversation = workflow_reads.conversation_get_for_agent(conversation_id=conversation_id)
        return Response(workflow_reads.customer_panel(conversation=conversation))


class AgentListApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_agents_list",
        responses={200: AgentPresenceListOutputSerializer},
        description="Every active staff member with presence, load and capacity (transfers).",
    )
    def get(self, request):
        return Response({"results": workflow_reads.agents_list()})


class AgentMeApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentMeInputSerializer(serializers.Serializer):
        display_name = serializers.CharField(
            required=False, max_length=32, help_text="Shown to customers, e.g. 客服小李"
        )
        capacity = serializers.IntegerField(required=False, min_value=0, max_value=50)

    @extend_schema(operation_id="agent_me_retrieve", responses={200: AgentPresenceOutputSerializer})
    def get(self, request):
        profile = workflow.agent_profile_get(user=request.user)
        return Response(workflow_reads.agent_payload(profile))

    @extend_schema(
        operation_id="agent_me_update",
        request=AgentMeInputSerializer,
        responses={200: AgentPresenceOutputSerializer},
    )
    def patch(self, request):
        serializer = self.AgentMeInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = workflow.agent_profile_update(user=request.user, **serializer.validated_data)
        request.user.refresh_from_db()
        return Response(workflow_reads.agent_payload(profile))


class AgentPresenceApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsAgent]

    class AgentPresenceInputSerializer(serializers.Serializer):
        status = serializers.ChoiceField(choices=Presence.choices)

    @extend_schema(
        operation_id="agent_me_presence",
        request=AgentPresenceInputSerializer,
        responses={200: AgentPresenceOutputSerializer},
        description="online / away / offline as chosen by the agent; `presence` in the answer is "
        "offline too while no console socket sends heartbeats.",
    )
    def post(self, request):
        serializer = self.AgentPresenceInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        profile = workflow.agent_presence_set(
            user=request.user, status=serializer.validated_data["status"]
        )
        return Response(workflow_reads.agent_payload(profile))


class AgentPhraseListApi(APIView):
    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_phrases_list",
        parameters=[OpenApiParameter("q", str, description="Short code, title or text")],
        responses={200: PhraseListOutputSerializer},
    )
    def get(self, request):
        query = (request.query_params.get("q") or "")[:50]
        phrases = phrase_search(query=query, limit=50)
        return Response(
            {
                "results": [
                    {
                        "id": phrase.pk,
                        "short_code": phrase.short_code,
                        "title": phrase.title,
                        "text": phrase.text,
                        "category": phrase.category,
                        "preview_url": reverse("agent-phrase-preview", args=[phrase.pk]),
                    }
                    for phrase in phrases
                ]
            }
        )


class AgentPhrasePreviewApi(APIView):
    """The phrase spoken (through the clip cache: precomputed phrases answer at once). The work
    is bounded: only admin-defined phrases in existing presets can be asked for."""

    permission_classes = [IsAuthenticated, IsAgent]

    @extend_schema(
        operation_id="agent_phrases_preview",
        parameters=[OpenApiParameter("emotion", str, description="Emotion preset name")],
        responses={(200, "audio/mpeg"): bytes},
    )
    def get(self, request, phrase_id: int):
        phrase = get_object_or_404(CannedPhrase, pk=phrase_id, is_active=True)
        preset = None
        if request.query_params.get("emotion"):
            preset = EmotionPreset.objects.filter(name=request.query_params["emotion"]).first()
            if preset is None:
                raise exceptions.ValidationError({"emotion": [_("Unknown emotion preset.")]})
        text = VARIABLE_RE.sub(
            lambda m: {"agent.name": request.user.display_name}.get(m.group(1), "王先生"),
            phrase.text,
        )
        return preview_response(request=request, text=text, preset=preset)


# --- customers: handoff and rating ------------------------------------------------------------


class ConversationHandoffApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsCustomer]

    @extend_schema(
        operation_id="conversations_handoff",
        request=None,
        responses={200: ConversationOutputSerializer},
        description="转人工: queue the conversation for a human (a voiced acknowledgement, or the "
        "out-of-hours notice, follows as a bot message). Already queued or served: unchanged.",
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_get_for_customer(
            user=request.user, conversation_id=conversation_id
        )
        workflow.conversation_handoff(
            conversation=conversation, reason=HandoffReason.REQUESTED, actor=request.user
        )
        conversation = conversation_get_for_customer(
            user=request.user, conversation_id=conversation_id
        )
        return Response(conversation_payload(conversation))


class ConversationCsatApi(WorkflowApiView):
    permission_classes = [IsAuthenticated, IsCustomer]

    class CsatInputSerializer(serializers.Serializer):
        rating = serializers.IntegerField(min_value=1, max_value=5)
        comment = serializers.CharField(required=False, allow_blank=True, max_length=500)

    @extend_schema(
        operation_id="conversations_csat",
        request=CsatInputSerializer,
        responses={201: CsatOutputSerializer},
        description="The customer's rating after resolution: once (409 `already_rated`), only "
        "when resolved (409 `not_resolved`), 1-5 (400).",
    )
    def post(self, request, conversation_id: int):
        conversation = conversation_get_for_customer(
            user=request.user, conversation_id=conversation_id
        )
        serializer = self.CsatInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        csat = workflow.csat_submit(
            conversation=conversation, customer=request.user, **serializer.validated_data
        )
        return Response(
            {
                "rating": csat.rating,
                "comment": csat.comment,
                "created_at": timezone.localtime(csat.created_at).isoformat(),
            },
            status=status.HTTP_201_CREATED,
        )
