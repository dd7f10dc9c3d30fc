"""Conversations, messages, canned phrases, intents and the emotion policy."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import F, Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

PRIORITY_RANGE = (0, 100)  # intents and emotion rules: higher wins
VARIABLE_RE = re.compile(r"\{\{\s*([a-zA-Z_][\w.]*)\s*\}\}")


def _split_lines(raw: str) -> list[str]:
    # Keywords are edited in a textarea: one per line, commas (ASCII or full-width) also split.
    parts = re.split(r"[\n,，、]", raw or "")
    return [part.strip() for part in parts if part.strip()]


def _priority_check(field: str, bounds: tuple[int, int]) -> models.CheckConstraint:
    low, high = bounds
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": low, f"{field}__lte": high}),
        name=f"%(app_label)s_%(class)s_{field}_range",
    )


class ConversationStatus(models.TextChoices):
    OPEN = "open", _("open")
    # Queued for a human (handoff): no agent yet, or sent back to the queue.
    WAITING = "waiting", _("waiting for an agent")
    PENDING = "pending", _("pending")
    RESOLVED = "resolved", _("resolved")


class ConversationPriority(models.IntegerChoices):
    LOW = 1, _("low")
    NORMAL = 2, _("normal")
    HIGH = 3, _("high")
    URGENT = 4, _("urgent")


class HandoffReason(models.TextChoices):
    REQUESTED = "requested", _("customer asked for a human")
    INTENT = "intent", _("intent needs a human")
    UNANSWERED = "unanswered", _("no rule answered")
    TRANSFERRED = "transferred", _("sent back to the queue")


class Conversation(models.Model):
    customer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="conversations",
        verbose_name=_("customer"),
    )
    assigned_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assigned agent"),
    )
    status = models.CharField(
        _("status"),
        max_length=16,
        choices=ConversationStatus.choices,
        default=ConversationStatus.OPEN,
        db_index=True,
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=ConversationPriority.choices, default=ConversationPriority.NORMAL
    )
    last_message = models.ForeignKey(
        "Message",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("last message"),
    )
    last_message_at = models.DateTimeField(_("last message at"), null=True, blank=True)
    # Unread counts in the console: customer messages newer than this.
    agent_read_at = models.DateTimeField(_("read by agents at"), null=True, blank=True)
    # A customer message or transcript hit the sensitive-word list: supervisors review it.
    moderation_flagged = models.BooleanField(_("flagged by the word filter"), default=False)
    # Workflow (dialogs/services/workflow.py): queue, SLA timers, out-of-hours notice.
    handoff_reason = models.CharField(
        _("handoff reason"), max_length=16, choices=HandoffReason.choices, blank=True
    )
    waiting_since = models.DateTimeField(_("waiting since"), null=True, blank=True)
    assigned_at = models.DateTimeField(_("assigned at"), null=True, blank=True)
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    first_responded_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    next_response_due_at = models.DateTimeField(_("next response due"), null=True, blank=True)
    out_of_hours_notified_at = models.DateTimeField(
        _("out-of-hours reply sent at"), null=True, blank=True
    )
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        ordering = ["-last_message_at", "-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(priority__gte=ConversationPriority.LOW)
                & Q(priority__lte=ConversationPriority.URGENT),
                name="dialogs_conversation_priority_range",
            )
        ]
        # The queue: oldest and highest priority first.
        indexes = [
            models.Index(fields=["status", "-priority", "waiting_since"], name="dialogs_conv_queue")
        ]

    def __str__(self) -> str:
        # The display name (nickname), never the username: WeChat usernames carry the openid.
        return f"#{self.pk} {self.customer.display_name}"


class SenderKind(models.TextChoices):
    CUSTOMER = "customer", _("customer")
    AGENT = "agent", _("agent")
    BOT = "bot", _("bot")
    SYSTEM = "system", _("system")


class AudioStatus(models.TextChoices):
    NONE = "none", _("none")
    PENDING = "pending", _("pending")
    READY = "ready", _("ready")
    FAILED = "failed", _("failed")


class MessageKind(models.TextChoices):
    TEXT = "text", _("text")
    VOICE = "voice", _("voice")


class RulesQuerySet(models.QuerySet):
    """Bulk writes skip model signals; these still move the reply-rules version (the per-process
    snapshot in `dialogs.selectors.snapshot`) and, for phrases, queue re-rendering."""

    def update(self, **kwargs):
        speech_changed = self.model is CannedPhrase and {"text", "is_active"} & set(kwargs)
        phrase_ids = list(self.values_list("pk", flat=True)) if speech_changed else []
        count = super().update(**kwargs)
        from .rules_version import rules_changed

        rules_changed()
        if phrase_ids:
            from .services.phrases import phrase_precompute_queue

            phrase_precompute_queue(phrase_ids=phrase_ids)
        return count

    def bulk_create(self, objs, *args, **kwargs):
        created = super().bulk_create(objs, *args, **kwargs)
        from .rules_version import rules_changed

        rules_changed()
        return created

    def bulk_update(self, objs, fields, *args, **kwargs):
        count = super().bulk_update(objs, fields, *args, **kwargs)
        from .rules_version import rules_changed

        rules_changed()
        return count


class Intent(models.Model):
    name = models.SlugField(_("name"), max_length=32, unique=True)
    label = models.CharField(_("Chinese label"), max_length=32)
    keywords = models.TextField(
        _("keywords"), blank=True, help_text=_("One per line (commas also separate).")
    )
    patterns = models.TextField(
        _("regular expressions"),
        blank=True,
        help_text=_(
            "One regular expression per line (RE2 syntax, case-insensitive; no backreferences "
            "or lookaround)."
        ),
    )
    priority = models.PositiveSmallIntegerField(
        _("priority"), default=50, help_text=_("0–100; the highest matching intent wins.")
    )
    is_active = models.BooleanField(_("active"), default=True)
    needs_human = models.BooleanField(
        _("needs a human"),
        default=False,
        help_text=_("Hand the conversation to an agent: acknowledge and queue it."),
    )
    handoff_priority = models.PositiveSmallIntegerField(
        _("conversation priority"),
        choices=ConversationPriority.choices,
        null=True,
        blank=True,
        help_text=_("Priority the conversation gets when this intent hands it off."),
    )
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    objects = RulesQuerySet.as_manager()
    history = HistoricalRecords(
        verbose_name=_("change history of intents"),
        verbose_name_plural=_("change history of intents"),
    )

    class Meta:
        verbose_name = _("intent")
        verbose_name_plural = _("intents")
        ordering = ["-priority", "name"]
        constraints = [_priority_check("priority", PRIORITY_RANGE)]

    def __str__(self) -> str:
        return f"{self.label} ({self.name})"

    @property
    def keyword_list(self) -> list[str]:
        return _split_lines(self.keywords)

    @property
    def pattern_list(self) -> list[str]:
        return [line.strip() for line in (self.patterns or "").splitlines() if line.strip()]

    def clean(self) -> None:
        from .patterns import PatternError, pattern_compile

        for pattern in self.pattern_list:
            try:
                pattern_compile(pattern)
            except PatternError as exc:
                raise ValidationError(
                    {
                        "patterns": _("Invalid regular expression %(p)s: %(e)s")
                        % {"p": pattern, "e": exc}
                    }
                ) from exc
        if not self.keyword_list and not self.pattern_list:
            raise ValidationError(_("An intent needs at least one keyword or pattern."))


class EmotionRule(models.Model):
    """Intent -> emotion preset. A rule without an intent is the fallback."""

    intent = models.ForeignKey(
        Intent,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="emotion_rules",
        verbose_name=_("intent"),
        help_text=_("Empty: fallback when no other rule applies."),
    )
    preset = models.ForeignKey(
        "tts.EmotionPreset",
        on_delete=models.PROTECT,
        related_name="emotion_rules",
        verbose_name=_("emotion preset"),
    )
    priority = models.PositiveSmallIntegerField(_("priority"), default=50)
    is_active = models.BooleanField(_("active"), default=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    objects = RulesQuerySet.as_manager()
    history = HistoricalRecords(
        verbose_name=_("change history of emotion rules"),
        verbose_name_plural=_("change history of emotion rules"),
    )

    class Meta:
        verbose_name = _("emotion rule")
        verbose_name_plural = _("emotion rules")
        ordering = ["-priority", "pk"]
        constraints = [_priority_check("priority", PRIORITY_RANGE)]

    def __str__(self) -> str:
        # Labels, as the admin's other columns show them (投诉 → 平和安抚), not the slugs.
        intent = self.intent.label if self.intent_id else _("fallback")
        return f"{intent} → {self.preset.label}"


class CannedPhrase(models.Model):
    short_code = models.SlugField(
        _("short code"), max_length=32, unique=True, help_text=_("Typed as /code in the console.")
    )
    title = models.CharField(_("title"), max_length=100)
    text = models.TextField(
        _("text"), help_text=_("May use {{customer.nickname}} and {{agent.name}}.")
    )
    category = models.CharField(_("category"), max_length=32, blank=True, db_index=True)
    is_active = models.BooleanField(_("active"), default=True)
    emotions = models.ManyToManyField(
        "tts.EmotionPreset",
        blank=True,
        related_name="canned_phrases",
        verbose_name=_("emotions to precompute"),
    )
    trigger_keywords = models.TextField(
        _("auto-reply triggers"),
        blank=True,
        help_text=_("Keywords (one per line) that make the bot answer with this phrase."),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    objects = RulesQuerySet.as_manager()
    history = HistoricalRecords(
        verbose_name=_("change history of canned phrases"),
        verbose_name_plural=_("change history of canned phrases"),
    )

    class Meta:
        verbose_name = _("canned phrase")
        verbose_name_plural = _("canned phrases")
        ordering = ["category", "short_code"]

    def __str__(self) -> str:
        return f"/{self.short_code} {self.title}"

    @property
    def trigger_list(self) -> list[str]:
        return _split_lines(self.trigger_keywords)

    @property
    def variables(self) -> list[str]:
        return VARIABLE_RE.findall(self.text)

    @property
    def has_variables(self) -> bool:
        return bool(self.variables)


class Message(models.Model):
    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    sender_kind = models.CharField(_("sender"), max_length=16, choices=SenderKind.choices)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="dialog_messages",
        verbose_name=_("author"),
    )
    # For a voice message: the transcript once ready ("" while pending, failed or silent).
    text = models.TextField(_("text"), blank=True)
    kind = models.CharField(
        _("kind"), max_length=8, choices=MessageKind.choices, default=MessageKind.TEXT
    )
    # Voice messages: the upload, decoded and stored as 16 kHz MP3 (playable everywhere; SILK
    # and raw PCM are not), served like clips through signed, expiring URLs.
    voice_file = models.FileField(_("voice"), upload_to="voice/%Y/%m/", blank=True)
    voice_format = models.CharField(_("uploaded format"), max_length=8, blank=True)
    voice_duration_ms = models.PositiveIntegerField(_("voice duration (ms)"), null=True, blank=True)
    transcript_status = models.CharField(
        _("transcript"),
        max_length=16,
        choices=AudioStatus.choices,
        default=AudioStatus.NONE,
        db_index=True,
    )
    transcript_error = models.CharField(_("transcript error"), max_length=300, blank=True)
    transcript_updated_at = models.DateTimeField(_("transcribed at"), null=True, blank=True)
    # Sensitive-word filter: `text` keeps the original (supervisors see it in the admin);
    # `masked_text` is what customers and agents are shown when a rule masks.
    moderation_flagged = models.BooleanField(_("flagged by the word filter"), default=False)
    masked_text = models.TextField(_("text as displayed"), blank=True)
    moderation_hits = models.JSONField(_("sensitive words found"), default=list, blank=True)
    canned_phrase = models.ForeignKey(
        CannedPhrase,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("canned phrase"),
    )
    intent = models.ForeignKey(
        Intent,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("detected intent"),
    )
    emotion = models.ForeignKey(
        "tts.EmotionPreset",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("emotion"),
    )
    emotion_overridden = models.BooleanField(_("emotion chosen by agent"), default=False)
    audio_clip = models.ForeignKey(
        "tts.AudioClip",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="messages",
        verbose_name=_("audio clip"),
    )
    audio_status = models.CharField(
        _("audio"),
        max_length=16,
        choices=AudioStatus.choices,
        default=AudioStatus.NONE,
        db_index=True,
    )
    audio_error = models.CharField(_("audio error"), max_length=300, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)
    audio_updated_at = models.DateTimeField(_("audio updated at"), null=True, blank=True)
    # Idempotency key chosen by the client (mini-program): a retried POST finds the stored row.
    client_id = models.CharField(_("client id"), max_length=64, blank=True, default="")

    class Meta:
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        ordering = ["created_at", "pk"]
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_id"],
                condition=~Q(client_id=""),
                name="dialogs_message_client_id_unique",
            )
        ]
        # A conversation's messages are always read in this order (API pages, console, polls).
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="dialogs_msg_conv_order")
        ]

    def __str__(self) -> str:
        return f"{self.get_sender_kind_display()}: {self.text[:30]}"


# --- workflow: agents, audit, CSAT, business hours, SLA ---------------------------------------

DEFAULT_AGENT_CAPACITY = 5
MAX_AGENT_CAPACITY = 50


class Presence(models.TextChoices):
    ONLINE = "online", _("online")
    AWAY = "away", _("away")
    OFFLINE = "offline", _("offline")


class AgentProfile(models.Model):
    """What customers see of a staff member (a nickname, never the username), their capacity
    and their presence. `status` is what the agent chose; they count as online only while their
    console socket keeps sending heartbeats (`last_seen_at`)."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="agent_profile",
        verbose_name=_("user"),
    )
    display_name = models.CharField(
        _("display name"),
        max_length=32,
        blank=True,
        help_text=_("Shown to customers, e.g. 客服小李."),
    )
    capacity = models.PositiveSmallIntegerField(
        _("capacity"),
        default=DEFAULT_AGENT_CAPACITY,
        help_text=_("How many conversations at once the agent is auto-assigned."),
    )
    status = models.CharField(
        _("chosen status"), max_length=16, choices=Presence.choices, default=Presence.ONLINE
    )
    last_seen_at = models.DateTimeField(_("last heartbeat"), null=True, blank=True)
    last_assigned_at = models.DateTimeField(_("last assigned at"), null=True, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(
        excluded_fields=["last_seen_at", "last_assigned_at"],
        verbose_name=_("change history of agent profiles"),
        verbose_name_plural=_("change history of agent profiles"),
    )

    class Meta:
        verbose_name = _("agent profile")
        verbose_name_plural = _("agent profiles")
        ordering = ["display_name", "pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(capacity__gte=0) & Q(capacity__lte=MAX_AGENT_CAPACITY),
                name="dialogs_agentprofile_capacity_range",
            )
        ]

    def __str__(self) -> str:
        return self.display_name or str(self.user)


class ConversationAction(models.TextChoices):
    HANDOFF = "handoff", _("handed to a human")
    ASSIGNED = "assigned", _("assigned")
    AUTO_ASSIGNED = "auto_assigned", _("auto-assigned")
    CLAIMED = "claimed", _("claimed")
    TRANSFERRED = "transferred", _("transferred")
    REQUEUED = "requeued", _("sent back to the queue")
    RESOLVED = "resolved", _("resolved")
    REOPENED = "reopened", _("reopened")
    OUT_OF_HOURS = "out_of_hours", _("out-of-hours reply")
    CSAT = "csat", _("satisfaction rating")


class ConversationEvent(models.Model):
    """The audit trail of a conversation's workflow: who moved it where, when."""

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="workflow_events",
        verbose_name=_("conversation"),
    )
    action = models.CharField(_("action"), max_length=16, choices=ConversationAction.choices)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("by"),
        help_text=_("Empty: the system."),
    )
    from_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("from agent"),
    )
    to_agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("to agent"),
    )
    note = models.CharField(_("note"), max_length=200, blank=True)
    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("conversation event")
        verbose_name_plural = _("conversation events")
        ordering = ["created_at", "pk"]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.get_action_display()}"


class CsatResponse(models.Model):
    """The customer's satisfaction rating after a resolution: one per conversation."""

    conversation = models.OneToOneField(
        Conversation,
        on_delete=models.CASCADE,
        related_name="csat",
        verbose_name=_("conversation"),
    )
    agent = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="csat_received",
        verbose_name=_("agent"),
    )
    rating = models.PositiveSmallIntegerField(_("rating (1–5)"))
    comment = models.CharField(_("comment"), max_length=500, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("satisfaction rating")
        verbose_name_plural = _("satisfaction ratings")
        ordering = ["-created_at", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(rating__gte=1) & Q(rating__lte=5), name="dialogs_csat_rating_range"
            )
        ]

    def __str__(self) -> str:
        return f"#{self.conversation_id} {self.rating}★"


class Weekday(models.IntegerChoices):
    MONDAY = 0, _("Monday")
    TUESDAY = 1, _("Tuesday")
    WEDNESDAY = 2, _("Wednesday")
    THURSDAY = 3, _("Thursday")
    FRIDAY = 4, _("Friday")
    SATURDAY = 5, _("Saturday")
    SUNDAY = 6, _("Sunday")


class BusinessHours(models.Model):
    """One opening period of the weekly schedule, in local time (TIME_ZONE, Asia/Shanghai).
    A day may have several periods (e.g. a lunch break); no rows at all means always open."""

    weekday = models.PositiveSmallIntegerField(_("weekday"), choices=Weekday.choices)
    opens_at = models.TimeField(_("opens at"))
    closes_at = models.TimeField(_("closes at"))
    history = HistoricalRecords(
        verbose_name=_("change history of business hours"),
        verbose_name_plural=_("change history of business hours"),
    )

    class Meta:
        verbose_name = _("business hours")
        verbose_name_plural = _("business hours")
        ordering = ["weekday", "opens_at"]
        constraints = [
            models.CheckConstraint(
                condition=Q(closes_at__gt=F("opens_at")), name="dialogs_businesshours_order"
            ),
            models.CheckConstraint(
                condition=Q(weekday__gte=0) & Q(weekday__lte=6),
                name="dialogs_businesshours_weekday_range",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_weekday_display()} {self.opens_at:%H:%M}–{self.closes_at:%H:%M}"

    def clean(self) -> None:
        if self.opens_at and self.closes_at and self.closes_at <= self.opens_at:
            raise ValidationError({"closes_at": _("Must be later than the opening time.")})


class Holiday(models.Model):
    """A closed day (public holiday), whatever the weekly schedule says."""

    date = models.DateField(_("date"), unique=True)
    name = models.CharField(_("name"), max_length=64, blank=True)
    history = HistoricalRecords(
        verbose_name=_("change history of holidays"),
        verbose_name_plural=_("change history of holidays"),
    )

    class Meta:
        verbose_name = _("holiday")
        verbose_name_plural = _("holidays")
        ordering = ["date"]

    def __str__(self) -> str:
        return f"{self.date:%Y-%m-%d} {self.name}".strip()


class SlaPolicy(models.Model):
    """Response-time targets for one conversation priority."""

    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=ConversationPriority.choices, unique=True
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response (minutes)"),
        help_text=_("From entering the queue to the agent's first reply."),
    )
    next_response_minutes = models.PositiveIntegerField(
        _("next response (minutes)"),
        help_text=_("From a customer's message to the agent's next reply."),
    )
    history = HistoricalRecords(
        verbose_name=_("change history of SLA policies"),
        verbose_name_plural=_("change history of SLA policies"),
    )

    class Meta:
        verbose_name = _("SLA policy")
        verbose_name_plural = _("SLA policies")
        ordering = ["-priority"]
        constraints = [
            models.CheckConstraint(
                condition=Q(first_response_minutes__gte=1) & Q(next_response_minutes__gte=1),
                name="dialogs_slapolicy_positive",
            )
        ]

    def __str__(self) -> str:
        return str(self.get_priority_display())
