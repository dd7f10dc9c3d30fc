"""Admin console for conversations, messages, phrases, intents and the emotion policy."""

from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Max, Q
from django.http import HttpResponse
from django.shortcuts import get_object_or_404
from django.urls import path, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from tts.admin import (
    AuditAdmin,
    LargeTableAdmin,
    audio_player,
    clip_player,
    csv_response,
    csv_time,
    preview_response,
    register_history_admin,
)
from tts.models import EmotionPreset

from .models import (
    VARIABLE_RE,
    AgentProfile,
    AudioStatus,
    BusinessHours,
    CannedPhrase,
    Conversation,
    ConversationEvent,
    CsatResponse,
    EmotionRule,
    Holiday,
    Intent,
    Message,
    MessageKind,
    Presence,
    SlaPolicy,
)
from .selectors import workflow as workflow_selectors
from .selectors.voice import message_voice_url
from .services.phrases import phrase_precompute_queue

# Substring search over millions of messages: three characters or more use the pg_trgm GIN index
# (migration 0006) over the whole history; a shorter term (退款 is two) yields no trigram, so it
# is looked for among the newest SHORT_SEARCH_WINDOW messages only, an index range on the key.
SHORT_SEARCH_WINDOW = 100_000
SEARCH_MATCH_LIMIT = 1_000


def message_text_matches(term: str):
    """Messages whose text contains `term`, cheap at any table size (see above)."""
    # Newest first by key (not the model's created_at ordering, which walks from the oldest).
    messages_qs = Message.objects.filter(text__contains=term).order_by("-pk")
    if len(term) < 3 or connection.vendor != "postgresql":
        newest = Message.objects.aggregate(newest=Max("pk"))["newest"] or 0
        messages_qs = messages_qs.filter(pk__gt=newest - SHORT_SEARCH_WINDOW)
    return messages_qs


class MessageInline(admin.TabularInline):
    """The conversation read as a chat: who (display name, never an openid), what, how it
    sounded. Few, narrow columns so the text column keeps a readable width."""

    model = Message
    extra = 0
    can_delete = False
    fields = [
        "created_at",
        "sender",
        "text_block",
        "intent",
        "emotion",
        "player",
        "voice",
        "moderation_flagged",
    ]
    readonly_fields = fields
    ordering = ["created_at", "pk"]
    show_change_link = True

    def get_queryset(self, request):
        return (
            super()
            .get_queryset(request)
            .select_related(
                "author__customer_profile",
                "author__agent_profile",
                "intent",
                "emotion",
                "audio_clip",
            )
        )

    def has_add_permission(self, request, obj=None) -> bool:
        return False  # replies go through the console so they are voiced and published

    @admin.display(description=_("sender"))
    def sender(self, obj: Message) -> str:
        name = obj.author.display_name if obj.author_id else ""
        return (
            f"{obj.get_sender_kind_display()} · {name}" if name else obj.get_sender_kind_display()
        )

    @admin.display(description=_("text"))
    def text_block(self, obj: Message) -> str:
        return format_html(
            '<div style="min-width:18em;max-width:40em;white-space:pre-wrap;'
            'word-break:normal;overflow-wrap:anywhere">{}</div>',
            obj.text,
        )

    @admin.display(description=_("audio"))
    def player(self, obj: Message) -> str:
        if obj.audio_status == "ready":
            return clip_player(obj.audio_clip)
        return obj.audio_error or obj.get_audio_status_display()

    @admin.display(description=_("voice message"))
    def voice(self, obj: Message) -> str:
        return voice_player(obj)


class ConversationEventInline(admin.TabularInline):
    model = ConversationEvent
    extra = 0
    can_delete = False
    fields = ["created_at", "action", "actor", "from_agent", "to_agent", "note"]
    readonly_fields = fields
    ordering = ["created_at", "pk"]
    verbose_name_plural = _("workflow audit trail")

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


def voice_player(obj: Message) -> str:
    """The customer's recording with its transcript status, for staff (original text above)."""
    if obj.kind != MessageKind.VOICE or not obj.voice_file:
        return "-"
    seconds = (obj.voice_duration_ms or 0) / 1000
    return format_html(
        '{} <span title="{}">{:.1f} s · {} · {}</span>',
        audio_player(message_voice_url(obj)),
        obj.voice_format,
        seconds,
        obj.voice_format,
        obj.get_transcript_status_display()
        if obj.text or obj.transcript_status != AudioStatus.READY
        else _("silence (nothing recognised)"),
    )


@admin.register(Conversation)
class ConversationAdmin(LargeTableAdmin):
    list_display = [
        "id",
        "customer_name",
        "assigned_agent_name",
        "status",
        "priority",
        "moderation_flagged",
        "waiting_since",
        "sla_overdue",
        "last_message_at",
        "created_at",
        "console_link",
    ]
    # No filter over users (a sidebar with every agent ever) on an unbounded table.
    list_filter = ["status", "priority", "handoff_reason", "moderation_flagged", "created_at"]
    search_fields = ["customer__customer_profile__nickname"]
    search_help_text = _(
        "Customer, nickname or message text (two-character terms: the newest 100,000 messages)."
    )
    list_select_related = [
        "customer__customer_profile",
        "assigned_agent__agent_profile",
    ]
    raw_id_fields = ["assigned_agent"]
    exclude = ["customer"]  # shown by name below: the user's string is the WeChat username
    readonly_fields = [
        "customer_name",
        "last_message",
        "last_message_at",
        "agent_read_at",
        "handoff_reason",
        "waiting_since",
        "assigned_at",
        "first_response_due_at",
        "first_responded_at",
        "next_response_due_at",
        "out_of_hours_notified_at",
        "resolved_at",
        "csat_given",
        "created_at",
        "updated_at",
        "console_link",
    ]
    inlines = [MessageInline, ConversationEventInline]

    @admin.display(description=_("customer"), ordering="customer__customer_profile__nickname")
    def customer_name(self, obj: Conversation) -> str:
        return obj.customer.display_name

    @admin.display(description=_("assigned agent"), ordering="assigned_agent")
    def assigned_agent_name(self, obj: Conversation) -> str:
        return obj.assigned_agent.display_name if obj.assigned_agent_id else "-"

    @admin.display(description=_("SLA overdue"), boolean=True)
    def sla_overdue(self, obj: Conversation) -> bool:
        return workflow_selectors.conversation_sla(obj)["overdue"]

    @admin.display(description=_("satisfaction rating"))
    def csat_given(self, obj: Conversation) -> str:
        csat = workflow_selectors.conversation_csat(obj)
        if csat is None:
            return "-"
        return f"{'★' * csat['rating']}{'☆' * (5 - csat['rating'])} {csat['comment']}".strip()

    # Conversations are opened by customers, and a conversation's customer never changes:
    # moving one to another customer hands them its whole history (issue 13, item 1).
    def has_add_permission(self, request) -> bool:
        return False

    def get_readonly_fields(self, request, obj=None):
        # The customer is fixed; shown as `customer_name` (nickname), never the WeChat username.
        return list(super().get_readonly_fields(request, obj))

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser  # erasure requests: the admin role only

    @admin.display(description=_("console"))
    def console_link(self, obj: Conversation) -> str:
        if obj.pk is None:
            return "-"
        return format_html(
            '<a href="{}">{}</a>',
            reverse("console:conversation", args=[obj.pk]),
            _("Open in console"),
        )

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        # Bounded id lists resolved first: an OR across joins inside the changelist query would
        # make PostgreSQL join every conversation to its customer before filtering.
        conversation_ids = list(
            message_text_matches(term).values_list("conversation_id", flat=True)[
                :SEARCH_MATCH_LIMIT
            ]
        )
        customer_ids = list(
            get_user_model()
            .objects.filter(
                Q(username__icontains=term) | Q(customer_profile__nickname__icontains=term)
            )
            .values_list("pk", flat=True)[:SEARCH_MATCH_LIMIT]
        )
        return (
            queryset.filter(Q(pk__in=conversation_ids) | Q(customer_id__in=customer_ids)),
            False,
        )


@admin.register(Message)
class MessageAdmin(LargeTableAdmin):
    list_display = [
        "created_at",
        "conversation",
        "sender_kind",
        "author",
        "text_short",
        "kind",
        "intent",
        "emotion",
        "audio_status",
        "player",
        "voice",
        "transcript_status",
        "moderation_flagged",
    ]
    list_filter = [
        "sender_kind",
        "kind",
        "transcript_status",
        "moderation_flagged",
        "audio_status",
        "intent",
        "emotion",
        "emotion_overridden",
        "created_at",
    ]
    search_fields = ["text"]  # shows the search box; get_search_results does the work
    search_help_text = _("Author or message text (two-character terms: the newest 100,000).")
    list_select_related = [
        "conversation__customer__customer_profile",  # the conversation shows the nickname
        "author",
        "intent",
        "emotion",
        "audio_clip",
    ]
    raw_id_fields = ["conversation", "author", "audio_clip", "canned_phrase"]
    readonly_fields = [
        "player",
        "audio_status",
        "audio_error",
        "audio_clip",
        "created_at",
        "audio_updated_at",
        "kind",
        "voice",
        "voice_format",
        "voice_duration_ms",
        "transcript_status",
        "transcript_error",
        "transcript_updated_at",
        "moderation_flagged",
        "masked_text",
        "moderation_hits",
    ]
    exclude = ["voice_file"]

    def get_search_results(self, request, queryset, search_term):
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = list(message_text_matches(term).values_list("pk", flat=True)[:SEARCH_MATCH_LIMIT])
        authors = list(get_user_model().objects.filter(username=term).values_list("pk", flat=True))
        return queryset.filter(Q(pk__in=matches) | Q(author_id__in=authors)), False

    # Messages are facts: nobody invents or edits one here, whatever their grants (an agent
    # once added a "customer" message in someone else's name). Replies go through the console,
    # which voices and publishes them; deletion (an erasure request) is for the admin role.
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return request.user.is_superuser

    @admin.display(description=_("text"))
    def text_short(self, obj: Message) -> str:
        # Staff see the original here (the chat shows the masked text).
        return obj.text[:40]

    @admin.display(description=_("voice message"))
    def voice(self, obj: Message) -> str:
        return voice_player(obj)

    @admin.display(description=_("audio"))
    def player(self, obj: Message) -> str:
        if obj.audio_status == "ready":
            return clip_player(obj.audio_clip)
        return obj.audio_error or obj.get_audio_status_display()


@admin.action(description=_("Precompute audio (in the background)"), permissions=["change"])
def precompute_selected(modeladmin, request, queryset):
    phrase_ids = list(queryset.values_list("pk", flat=True))
    phrase_precompute_queue(phrase_ids=phrase_ids)
    modeladmin.message_user(
        request,
        _("Queued audio rendering for %(n)d phrase(s).") % {"n": len(phrase_ids)},
        messages.SUCCESS,
    )


@admin.register(CannedPhrase)
class CannedPhraseAdmin(SimpleHistoryAdmin):
    list_display = [
        "short_code",
        "title",
        "category",
        "is_active",
        "emotion_list",
        "has_triggers",
        "updated_at",
    ]
    list_filter = ["is_active", "category", "emotions"]
    search_fields = ["short_code", "title", "text", "trigger_keywords"]
    filter_horizontal = ["emotions"]
    readonly_fields = ["previews", "clips", "created_at", "updated_at"]
    fields = [
        "short_code",
        "title",
        "text",
        "category",
        "is_active",
        "emotions",
        "trigger_keywords",
        "previews",
        "clips",
        "created_at",
        "updated_at",
    ]
    actions = [precompute_selected]

    def get_queryset(self, request):
        return super().get_queryset(request).prefetch_related("emotions")

    def get_urls(self):
        return [
            path(
                "<int:phrase_id>/preview/<int:preset_id>/",
                self.admin_site.admin_view(self.preview_view),
                name="dialogs_cannedphrase_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, phrase_id: int, preset_id: int):
        from django.http import HttpResponse

        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        phrase = get_object_or_404(CannedPhrase, pk=phrase_id)
        preset = get_object_or_404(EmotionPreset, pk=preset_id)
        text = phrase.text
        if phrase.has_variables:
            # Fill variables with the previewing staff member as agent and a sample customer.
            text = VARIABLE_RE.sub(
                lambda m: {"agent.name": request.user.display_name}.get(m.group(1), "王先生"), text
            )
        return preview_response(request=request, text=text, preset=preset)

    @admin.display(description=_("emotions"))
    def emotion_list(self, obj: CannedPhrase) -> str:
        return ", ".join(preset.label for preset in obj.emotions.all())

    @admin.display(description=_("auto-reply"), boolean=True)
    def has_triggers(self, obj: CannedPhrase) -> bool:
        return bool(obj.trigger_list)

    @admin.display(description=_("preview"))
    def previews(self, obj: CannedPhrase) -> str:
        if obj.pk is None:
            return "-"
        presets = obj.emotions.all() or EmotionPreset.objects.filter(name="neutral")
        return format_html_join(
            "",
            '<div style="margin-bottom:4px">{} {}</div>',
            (
                (
                    preset.label,
                    audio_player(
                        reverse("admin:dialogs_cannedphrase_preview", args=[obj.pk, preset.pk])
                    ),
                )
                for preset in presets
            ),
        )

    @admin.display(description=_("precomputed clips"))
    def clips(self, obj: CannedPhrase) -> str:
        from tts.models import AudioClip

        if obj.pk is None or obj.has_variables:
            return _("Rendered when sent (the phrase has variables).") if obj.pk else "-"
        rows = []
        for preset in obj.emotions.all():
            # The newest clip of this text and emotion is the current one (an edit re-renders).
            clip = (
                AudioClip.objects.filter(emotion=preset.name, text=_normalised(obj.text))
                .order_by("-created_at")
                .first()
            )
            rows.append((preset.label, clip_player(clip) if clip else _("not rendered yet")))
        return format_html_join("", '<div style="margin-bottom:4px">{} {}</div>', rows) or "-"


def _normalised(text: str) -> str:
    from tts.engine.frontend import normalise_text

    return normalise_text(text).strip()


@admin.register(Intent)
class IntentAdmin(SimpleHistoryAdmin):
    list_display = [
        "name",
        "label",
        "priority",
        "is_active",
        "needs_human",
        "handoff_priority",
        "keywords_short",
        "updated_at",
    ]
    list_filter = ["is_active", "needs_human"]
    list_editable = ["priority", "is_active", "needs_human", "handoff_priority"]
    search_fields = ["name", "label", "keywords", "patterns"]

    @admin.display(description=_("keywords"))
    def keywords_short(self, obj: Intent) -> str:
        return "、".join(obj.keyword_list[:8])


@admin.register(EmotionRule)
class EmotionRuleAdmin(SimpleHistoryAdmin):
    list_display = ["__str__", "intent", "preset", "priority", "is_active", "updated_at"]
    list_filter = ["is_active", "preset", "intent"]
    list_editable = ["priority", "is_active"]
    list_select_related = ["intent", "preset"]


# --- workflow: agents, hours, SLA, CSAT, audit ------------------------------------------------


@admin.register(AgentProfile)
class AgentProfileAdmin(SimpleHistoryAdmin):
    list_display = ["user", "display_name", "capacity", "status", "presence", "load"]
    list_editable = ["display_name", "capacity"]
    list_filter = ["status"]
    search_fields = ["display_name", "user__username", "user__first_name"]
    raw_id_fields = ["user"]
    readonly_fields = ["last_seen_at", "last_assigned_at", "updated_at"]

    @admin.display(description=_("presence now"))
    def presence(self, obj: AgentProfile) -> str:
        return Presence(workflow_selectors.agent_presence(obj)).label

    @admin.display(description=_("conversations served"))
    def load(self, obj: AgentProfile) -> int:
        return workflow_selectors.agent_load(obj.user)


@admin.register(BusinessHours)
class BusinessHoursAdmin(SimpleHistoryAdmin):
    list_display = ["weekday", "opens_at", "closes_at"]
    list_editable = ["opens_at", "closes_at"]
    list_filter = ["weekday"]
    list_display_links = ["weekday"]

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["subtitle"] = _(
            "Local time (%(tz)s). No rows at all: always open. Holidays close the whole day."
        ) % {"tz": timezone.get_current_timezone_name()}
        return super().changelist_view(request, extra_context)


@admin.register(Holiday)
class HolidayAdmin(SimpleHistoryAdmin):
    list_display = ["date", "name"]
    date_hierarchy = "date"
    search_fields = ["name"]


@admin.register(SlaPolicy)
class SlaPolicyAdmin(SimpleHistoryAdmin):
    list_display = ["priority", "first_response_minutes", "next_response_minutes"]
    list_editable = ["first_response_minutes", "next_response_minutes"]
    list_display_links = ["priority"]


class PersonByNameFilter(admin.RelatedOnlyFieldListFilter):
    """A people filter (agent, actor) that lists display names (客服小李), as the columns
    do, not usernames (a WeChat customer's carries the openid)."""

    def field_choices(self, field, request, model_admin):
        ids = model_admin.get_queryset(request).values_list(f"{field.name}__pk", flat=True)
        people = get_user_model().objects.filter(pk__in=ids).select_related("agent_profile")
        return sorted(((user.pk, user.display_name) for user in people), key=lambda c: c[1])


def _person(user) -> str:
    return user.display_name if user is not None else "-"


def _csat_rows(queryset):
    for csat in queryset.select_related(
        "agent__agent_profile", "conversation__customer__customer_profile"
    ).iterator():
        yield [
            csv_time(csat.created_at),
            csat.conversation_id,
            csat.agent.display_name if csat.agent_id else "",
            csat.conversation.customer.display_name,
            csat.rating,
            csat.comment,
        ]


@admin.action(description=_("Export selected to CSV"))
def export_csat_csv(modeladmin, request, queryset):
    return csv_response(
        filename="csat.csv",
        header=[
            str(_("time")),
            str(_("conversation")),
            str(_("agent")),
            str(_("customer")),
            str(_("rating (1–5)")),
            str(_("comment")),
        ],
        rows=_csat_rows(queryset),
    )


@admin.register(CsatResponse)
class CsatResponseAdmin(LargeTableAdmin):
    """Ratings are the customers' words: read-only, with a per-agent and per-week summary."""

    list_display = ["created_at", "conversation", "agent_name", "stars", "comment"]
    # Agents are few (staff), so the per-agent filter stays; no date_hierarchy on a growing table.
    list_filter = [("agent", PersonByNameFilter), "rating", "created_at"]
    list_select_related = ["agent__agent_profile", "conversation"]
    actions = [export_csat_csv]
    change_list_template = "admin/dialogs/csatresponse/change_list.html"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description=_("agent"), ordering="agent")
    def agent_name(self, obj: CsatResponse) -> str:
        return obj.agent.display_name if obj.agent_id else "-"

    @admin.display(description=_("rating (1–5)"), ordering="rating")
    def stars(self, obj: CsatResponse) -> str:
        return "★" * obj.rating + "☆" * (5 - obj.rating)

    def get_urls(self):
        return [
            path(
                "report.csv",
                self.admin_site.admin_view(self.report_csv_view),
                name="dialogs_csatresponse_report_csv",
            ),
            *super().get_urls(),
        ]

    def changelist_view(self, request, extra_context=None):
        extra_context = extra_context or {}
        extra_context["by_agent"] = workflow_selectors.csat_report_by_agent()
        extra_context["by_week"] = workflow_selectors.csat_report_by_week()
        return super().changelist_view(request, extra_context)

    def report_csv_view(self, request):
        if not self.has_view_permission(request):
            return HttpResponse(status=403)

        def rows():
            for row in workflow_selectors.csat_report_by_agent():
                yield [str(_("agent")), row["agent"], row["responses"], row["average"]]
            for row in workflow_selectors.csat_report_by_week():
                yield [str(_("week")), row["week"], row["responses"], row["average"]]

        return csv_response(
            filename="csat-report.csv",
            header=[str(_("group")), "", str(_("responses")), str(_("average rating"))],
            rows=rows(),
        )


@admin.register(ConversationEvent)
class ConversationEventAdmin(AuditAdmin):
    list_display = ["created_at", "conversation", "action", "actor_name", "from_name", "to_name"]
    list_filter = ["action", "created_at"]
    list_select_related = [
        "conversation__customer__customer_profile",
        "actor__agent_profile",
        "actor__customer_profile",
        "from_agent__agent_profile",
        "to_agent__agent_profile",
    ]

    # People by the names customers and colleagues know them by (客服小李, 王先生): a WeChat
    # customer's username carries the openid.
    @admin.display(description=_("by"), ordering="actor")
    def actor_name(self, obj: ConversationEvent) -> str:
        return _person(obj.actor) if obj.actor_id else str(_("system"))

    @admin.display(description=_("from agent"), ordering="from_agent")
    def from_name(self, obj: ConversationEvent) -> str:
        return _person(obj.from_agent)

    @admin.display(description=_("to agent"), ordering="to_agent")
    def to_name(self, obj: ConversationEvent) -> str:
        return _person(obj.to_agent)

    csv_fields = ["created_at", "conversation", "action", "actor", "from_agent", "to_agent", "note"]


for _model in (CannedPhrase, Intent, EmotionRule, AgentProfile, BusinessHours, Holiday, SlaPolicy):
    register_history_admin(_model)
