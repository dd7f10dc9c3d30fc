"""Conversations, messages, canned phrases, intents and the emotion policy."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
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
    PENDING = "pending", _("pending")
    RESOLVED = "resolved", _("resolved")


class ConversationPriority(models.IntegerChoices):
    LOW = 1, _("low")
    NORMAL = 2, _("normal")
    HIGH = 3, _("high")
    URGENT = 4, _("urgent")


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

    def __str__(self) -> str:
        return f"#{self.pk} {self.customer}"


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
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    objects = RulesQuerySet.as_manager()
    history = HistoricalRecords()

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
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("emotion rule")
        verbose_name_plural = _("emotion rules")
        ordering = ["-priority", "pk"]
        constraints = [_priority_check("priority", PRIORITY_RANGE)]

    def __str__(self) -> str:
        intent = self.intent.name if self.intent_id else _("fallback")
        return f"{intent} → {self.preset.name}"


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
    history = HistoricalRecords()

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
