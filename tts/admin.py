"""Admin for voices, presets, the lexicon, the clip cache and the synthesis audit trail."""

import csv
import datetime
from collections.abc import Iterable

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import FieldDoesNotExist
from django.core.paginator import Paginator
from django.db import connection
from django.db.models import OuterRef, Subquery
from django.http import FileResponse, HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect
from django.urls import path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from simple_history.admin import SimpleHistoryAdmin

from common.csv_safe import csv_cell

from .models import (
    AudioClip,
    EmotionPreset,
    ModerationWord,
    PronunciationEntry,
    RecognitionRecord,
    RemoteVoiceSettings,
    SynthesisRecord,
    Voice,
)

PREVIEW_SAMPLE_TEXT = "您好，很高兴为您服务，请问有什么可以帮您？"


# --- shared helpers (dialogs/admin.py uses them too) -------------------------------------------


class _Echo:
    def write(self, value: str) -> str:
        return value


def csv_response(
    *, filename: str, header: list[str], rows: Iterable[list]
) -> StreamingHttpResponse:
    writer = csv.writer(_Echo())

    def lines():
        yield "\ufeff"  # BOM: Excel opens UTF-8 Chinese correctly
        yield writer.writerow([csv_cell(cell) for cell in header])
        for row in rows:
            # Every cell, whatever produced the row: text may start with a formula.
            yield writer.writerow([csv_cell(cell) for cell in row])

    response = StreamingHttpResponse(lines(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class EstimatedCountPaginator(Paginator):
    """Counting every row of a table with millions of rows on each page view costs more than the
    page itself. An unfiltered list uses PostgreSQL's own estimate (pg_class.reltuples, kept by
    autovacuum/ANALYZE); a filtered one counts at most COUNT_CAP rows, so its last page is
    reachable through filters rather than through page numbers."""

    COUNT_CAP = 10_000

    @cached_property
    def count(self) -> int:
        queryset = self.object_list
        if connection.vendor == "postgresql" and not queryset.query.where:
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT reltuples::bigint FROM pg_class WHERE oid = %s::regclass",
                    [queryset.model._meta.db_table],
                )
                row = cursor.fetchone()
            if row and row[0] > self.COUNT_CAP:
                return int(row[0])
        return queryset.order_by()[: self.COUNT_CAP + 1].count()


class LargeTableAdmin(admin.ModelAdmin):
    """Changelists over tables that grow without bound (messages, conversations, audit): no exact
    COUNT(*), no date_hierarchy (its year query scans the whole table), bounded pages.
    Filters over users are kept off such lists: a sidebar with every customer is megabytes."""

    paginator = EstimatedCountPaginator
    show_full_result_count = False
    list_per_page = 50
    list_max_show_all = 200


def csv_header(model, fields: list[str]) -> list[str]:
    """Column titles in the admin's language (the fields' verbose names), not attribute names."""
    titles = []
    for name in fields:
        try:
            titles.append(str(model._meta.get_field(name).verbose_name))
        except FieldDoesNotExist:
            titles.append(name)
    return titles


@admin.action(description=_("Export selected to CSV"))
def export_csv(modeladmin, request, queryset):
    fields = modeladmin.csv_fields
    return csv_response(
        filename=f"{queryset.model._meta.model_name}.csv",
        header=csv_header(queryset.model, fields),
        rows=(
            [_csv_field(obj, field) for field in fields]
            for obj in _with_related(queryset, fields).iterator(chunk_size=2000)
        ),
    )


def _with_related(queryset, fields: list[str]):
    """Join the foreign keys an export prints (a user per synthesis record): without it a
    250k-row export is 250k extra queries."""
    related = []
    for name in fields:
        try:
            if queryset.model._meta.get_field(name).many_to_one:
                related.append(name)
        except FieldDoesNotExist:
            continue  # a computed column

    return queryset.select_related(*related) if related else queryset


def _csv_field(obj, field: str) -> str:
    # An annotated `<field>_label` (e.g. the emotion's Chinese label) wins over the raw value.
    label = getattr(obj, f"{field}_label", None)
    return str(label) if label else _csv_value(getattr(obj, field))


def csv_time(value: datetime.datetime) -> str:
    # Local time (Asia/Shanghai), as everywhere in the admin, without the offset noise.
    return timezone.localtime(value).strftime("%Y-%m-%d %H:%M:%S")


def _csv_value(value) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime.datetime):
        return csv_time(value)
    if isinstance(value, bool):
        return str(_("yes") if value else _("no"))
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def titled_filter(base, title):
    """A field list filter with its own title (the field's verbose name is English for
    simple-history's own columns)."""

    class TitledFilter(base):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self.title = title

    return TitledFilter


class AuditAdmin(LargeTableAdmin):
    """Audit rows are evidence: nobody edits or deletes them here, superusers included
    (retention is `manage.py audit_prune`)."""

    csv_fields: list[str] = []
    actions = [export_csv]

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class HistoryAuditAdmin(AuditAdmin):
    """Read-only list of simple-history rows: who changed what, when."""

    list_display = [
        "changed_at",
        "change_type",
        "changed_by",
        "object_label",
        "change_reason",
    ]
    # No date_hierarchy or user sidebar: history tables grow without bound (LargeTableAdmin).
    list_filter = [
        ("history_type", titled_filter(admin.ChoicesFieldListFilter, _("change type"))),
        ("history_date", titled_filter(admin.DateFieldListFilter, _("time"))),
    ]
    search_fields = ["history_user__username"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("history_user")

    @admin.display(description=_("time"), ordering="history_date")
    def changed_at(self, obj):
        return obj.history_date

    @admin.display(description=_("change type"), ordering="history_type")
    def change_type(self, obj) -> str:
        return obj.get_history_type_display()

    @admin.display(description=_("changed by"), ordering="history_user")
    def changed_by(self, obj) -> str:
        return str(obj.history_user or "-")

    @admin.display(description=_("reason"))
    def change_reason(self, obj) -> str:
        return obj.history_change_reason or "-"

    @admin.display(description=_("object"))
    def object_label(self, obj) -> str:
        return f"#{obj.id} {obj.instance}"


def _field_title(model, name: str) -> str:
    try:
        return str(model._meta.get_field(name).verbose_name)
    except FieldDoesNotExist:
        return name


def _history_csv_rows(queryset):
    for row in queryset.select_related("history_user").iterator():
        previous = row.prev_record
        changes = ""
        if previous is not None:
            delta = row.diff_against(previous)
            changes = "; ".join(
                f"{_field_title(row.instance_type, c.field)}: {c.old!r} -> {c.new!r}"
                for c in delta.changes
            )
        yield [
            csv_time(row.history_date),
            row.get_history_type_display(),
            str(row.history_user or ""),
            str(row.id),
            changes,
        ]


@admin.action(description=_("Export selected to CSV"))
def export_history_csv(modeladmin, request, queryset):
    return csv_response(
        filename=f"{queryset.model._meta.model_name}.csv",
        header=[
            str(_("time")),
            str(_("change type")),
            str(_("changed by")),
            "ID",
            str(_("changes")),
        ],
        rows=_history_csv_rows(queryset),
    )


HistoryAuditAdmin.actions = [export_history_csv]


def register_history_admin(model) -> None:
    admin.site.register(model.history.model, HistoryAuditAdmin)


def audio_player(url: str) -> str:
    if not url:
        return "-"
    return format_html('<audio controls preload="none" src="{}"></audio>', url)


def _wav_bytes(samples, *, sample_rate: int) -> bytes:
    """A WAV file of float samples (a remote engine's, decoded) or of 16-bit PCM bytes (the
    local voice relayed from a worker: the web process then needs no audio stack)."""
    if not isinstance(samples, bytes):
        from .engine import audio as audio_codec

        return audio_codec.encode(samples, sample_rate=sample_rate, fmt="wav")
    from .engine.wav import pcm16_wav

    return pcm16_wav(samples, sample_rate=sample_rate)


def clip_player(clip: AudioClip | None) -> str:
    if clip is None:
        return "-"
    from .selectors import clip_url

    return audio_player(clip_url(clip))


def preview_response(
    *, request: HttpRequest, text: str, preset: EmotionPreset | None
) -> HttpResponse:
    """Speak `text` in `preset` (through the cache, audited as a preview) and return the audio."""
    from .services import SpeechSynthesisFailed, SpeechTextRejected, speech_clip_get_or_create

    try:
        result = speech_clip_get_or_create(
            text=text,
            preset=preset,
            source="preview",
            user=request.user,
            client_ip=request.META.get("REMOTE_ADDR"),
            render_on_worker=settings.TTS_RENDER_ON_WORKER,
        )
    except SpeechTextRejected as exc:
        return HttpResponse(exc.message, status=400, content_type="text/plain; charset=utf-8")
    except SpeechSynthesisFailed as exc:
        return HttpResponse(exc.reason, status=503, content_type="text/plain; charset=utf-8")
    clip = result.clip
    content_type = {"mp3": "audio/mpeg", "wav": "audio/wav"}.get(
        clip.format, "application/octet-stream"
    )
    return FileResponse(clip.file.open("rb"), content_type=content_type)


# --- voices, presets, lexicon ----------------------------------------------------------------


class RemoteVoiceSettingsForm(forms.ModelForm):
    """The secret is write-only (blank keeps it); the prompt recording is uploaded in any
    audio format and stored once as validated 16 kHz mono WAV."""

    api_key = forms.CharField(
        label=_("secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("leave blank to keep the current one"),
    )
    prompt_upload = forms.FileField(
        label=_("prompt recording"),
        required=False,
        help_text=_("3–30 s, any audio format; stored as 16 kHz mono WAV"),
    )

    class Meta:
        model = RemoteVoiceSettings
        fields = [
            "engine",
            "base_url",
            "api_key",
            "timeout_s",
            "max_concurrency",
            "speaker",
            "sample_rate",
            "mode",
            "model_name",
            "prompt_upload",
            "prompt_text",
            "prompt_prefix",
            "emotion_map",
            "fallback_to_baker",
        ]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk and self.instance.api_key:
            self.fields["api_key"].help_text = _("current: %(masked)s; blank keeps it") % {
                "masked": self.instance.masked_api_key
            }

    def clean_api_key(self):
        value = self.cleaned_data.get("api_key") or ""
        return value or (self.instance.api_key if self.instance.pk else "")

    def clean_emotion_map(self):
        mapping = self.cleaned_data.get("emotion_map") or {}
        if not isinstance(mapping, dict):
            raise forms.ValidationError(_("a JSON object: preset name -> label or instruction"))
        from .remote import PromptError, validate_instruction

        try:
            return {str(k): validate_instruction(str(v)) for k, v in mapping.items()}
        except PromptError as exc:
            raise forms.ValidationError(exc.message) from exc

    def clean(self):
        cleaned = super().clean()
        upload = cleaned.get("prompt_upload")
        if upload:
            from .remote import PromptError, prepare_prompt

            if upload.size > 10 * 1024 * 1024:
                self.add_error("prompt_upload", _("The recording is larger than 10 MB."))
                return cleaned
            try:
                wav, digest, _seconds = prepare_prompt(upload.read())
            except PromptError as exc:
                self.add_error("prompt_upload", exc.message)
                return cleaned
            self.instance.prompt_audio, self.instance.prompt_sha256 = wav, digest
        mode = cleaned.get("mode")
        if (
            cleaned.get("engine") == "cosyvoice"
            and mode in ("zero_shot", "instruct2")
            and not (upload or self.instance.prompt_audio)
        ):
            self.add_error("prompt_upload", _("This CosyVoice mode needs a prompt recording."))
        return cleaned


class RemoteVoiceSettingsInline(admin.StackedInline):
    model = RemoteVoiceSettings
    form = RemoteVoiceSettingsForm
    extra = 0
    max_num = 1
    readonly_fields = ["prompt_sha256", "calls", "errors", "last_latency_ms", "last_error"]


@admin.register(Voice)
class VoiceAdmin(SimpleHistoryAdmin):
    list_display = [
        "display_name",
        "engine_voice_id",
        "engine",
        "latency",
        "error_count",
        "is_default",
        "is_active",
    ]
    list_filter = ["is_default", "is_active"]
    search_fields = ["display_name", "engine_voice_id"]
    inlines = [RemoteVoiceSettingsInline]
    readonly_fields = ["test_button"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("remote")

    @admin.display(description=_("engine"))
    def engine(self, obj: Voice) -> str:
        cfg = getattr(obj, "remote", None)
        return cfg.get_engine_display() if cfg else _("local Baker engine")

    @admin.display(description=_("last latency (ms)"))
    def latency(self, obj: Voice):
        cfg = getattr(obj, "remote", None)
        return cfg.last_latency_ms if cfg and cfg.last_latency_ms is not None else "-"

    @admin.display(description=_("errors / calls"))
    def error_count(self, obj: Voice) -> str:
        cfg = getattr(obj, "remote", None)
        return f"{cfg.errors} / {cfg.calls}" if cfg else "-"

    def get_urls(self):
        return [
            path(
                "<int:voice_id>/test/",
                self.admin_site.admin_view(self.test_view),
                name="tts_voice_test",
            ),
            *super().get_urls(),
        ]

    @admin.display(description=_("Listen"))
    def test_button(self, obj: Voice) -> str:
        if obj.pk is None:
            return "-"
        return format_html(
            '<a class="button" href="{}">{}</a>',
            reverse("admin:tts_voice_test", args=[obj.pk]),
            _("Listen"),
        )

    def test_view(self, request, voice_id: int):
        """Speak a sample on this voice's own engine (no cache, no fallback): show the latency,
        play the audio on the change page."""
        if not self.has_change_permission(request):
            return HttpResponse(status=403)
        voice = get_object_or_404(Voice, pk=voice_id)
        from .services import voice_remote_test

        result = voice_remote_test(voice=voice, render_on_worker=settings.TTS_RENDER_ON_WORKER)
        if request.GET.get("play") and result["ok"]:
            data = _wav_bytes(result["samples"], sample_rate=result["sample_rate"])
            response = HttpResponse(data, content_type="audio/wav")
            response["X-Latency-Ms"] = str(result["latency_ms"])
            return response
        if result["ok"]:
            messages.success(
                request,
                format_html(
                    '{} <audio controls autoplay src="{}?play=1"></audio>',
                    _("Test synthesis OK: %(engine)s, %(ms)d ms")
                    % {"engine": result["engine"], "ms": result["latency_ms"]},
                    reverse("admin:tts_voice_test", args=[voice.pk]),
                ),
            )
        else:
            messages.error(
                request,
                _("Test synthesis failed (%(ms)d ms): %(error)s")
                % {"ms": result["latency_ms"], "error": result["error"]},
            )
        return redirect(reverse("admin:tts_voice_change", args=[voice.pk]))


@admin.register(EmotionPreset)
class EmotionPresetAdmin(SimpleHistoryAdmin):
    list_display = ["name", "label", "speed", "pitch", "energy", "pause", "preview", "updated_at"]
    search_fields = ["name", "label", "description"]
    readonly_fields = ["preview", "updated_at"]

    def get_urls(self):
        return [
            path(
                "<int:preset_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="tts_emotionpreset_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, preset_id: int):
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        preset = get_object_or_404(EmotionPreset, pk=preset_id)
        text = (request.GET.get("text") or PREVIEW_SAMPLE_TEXT)[:200]
        return preview_response(request=request, text=text, preset=preset)

    @admin.display(description=_("preview"))
    def preview(self, obj: EmotionPreset) -> str:
        if obj.pk is None:
            return "-"
        return audio_player(reverse("admin:tts_emotionpreset_preview", args=[obj.pk]))


LEXICON_SAMPLE = "这个词读作{word}。"


@admin.register(PronunciationEntry)
class PronunciationEntryAdmin(SimpleHistoryAdmin):
    list_display = ["word", "pinyin", "note", "preview", "updated_at"]
    search_fields = ["word", "pinyin", "note"]
    readonly_fields = ["preview", "updated_at"]

    def get_urls(self):
        return [
            path(
                "<int:entry_id>/preview/",
                self.admin_site.admin_view(self.preview_view),
                name="tts_pronunciationentry_preview",
            ),
            *super().get_urls(),
        ]

    def preview_view(self, request, entry_id: int):
        # A sample sentence, spoken with the saved lexicon: hear the word as customers will.
        if not self.has_view_permission(request):
            return HttpResponse(status=403)
        entry = get_object_or_404(PronunciationEntry, pk=entry_id)
        return preview_response(
            request=request, text=LEXICON_SAMPLE.format(word=entry.word), preset=None
        )

    @admin.display(description=_("preview"))
    def preview(self, obj: PronunciationEntry) -> str:
        if obj.pk is None:
            return _("Save the entry to hear a sample sentence.")
        return audio_player(reverse("admin:tts_pronunciationentry_preview", args=[obj.pk]))


# --- clip cache and audit ---------------------------------------------------------------------


def _with_emotion_label(queryset):
    # Rows store the preset's name (calm); the admin shows its Chinese label (平和安抚).
    label = EmotionPreset.objects.filter(name=OuterRef("emotion")).values("label")[:1]
    return queryset.annotate(emotion_label=Subquery(label))


class EmotionFilter(admin.SimpleListFilter):
    title = _("emotion")
    parameter_name = "emotion"

    def lookups(self, request, model_admin):
        return [(p.name, p.label) for p in EmotionPreset.objects.order_by("name")]

    def queryset(self, request, queryset):
        return queryset.filter(emotion=self.value()) if self.value() else queryset


@admin.display(description=_("emotion"), ordering="emotion")
def emotion_display(obj) -> str:
    return getattr(obj, "emotion_label", None) or obj.emotion or "-"


@admin.register(AudioClip)
class AudioClipAdmin(AuditAdmin):
    list_display = [
        "text_short",
        emotion_display,
        "voice",
        "format",
        "duration_ms",
        "hit_count",
        "last_used_at",
        "player",
    ]
    list_filter = [EmotionFilter, "format", "voice", "created_at"]
    search_fields = ["=cache_key", "text"]
    list_select_related = ["voice"]
    readonly_fields = ["player"]
    csv_fields = [
        "created_at",
        "text",
        "emotion",
        "format",
        "duration_ms",
        "size_bytes",
        "hit_count",
        "last_used_at",
        "engine_version",
    ]

    def get_queryset(self, request):
        return _with_emotion_label(super().get_queryset(request))

    @admin.display(description=_("text"))
    def text_short(self, obj: AudioClip) -> str:
        return obj.text[:40]

    @admin.display(description=_("audio"))
    def player(self, obj: AudioClip) -> str:
        return clip_player(obj)


@admin.register(SynthesisRecord)
class SynthesisRecordAdmin(AuditAdmin):
    list_display = [
        "created_at",
        "source",
        "status",
        "user",
        "text_excerpt",
        emotion_display,
        "cache_hit",
        "latency_ms",
        "error",
    ]
    list_filter = ["status", "source", EmotionFilter, "cache_hit", "created_at"]
    # An exact user name or digest is what an auditor has in hand; substring search over a
    # million excerpts would scan them all.
    search_fields = ["=user__username", "=text_digest", "=api_key_name"]
    csv_fields = [
        "created_at",
        "source",
        "status",
        "user",
        "api_key_name",
        "text_excerpt",
        "text_length",
        "voice",
        "emotion",
        "cache_hit",
        "latency_ms",
        "error",
        "client_ip",
    ]

    def get_queryset(self, request):
        return _with_emotion_label(super().get_queryset(request).select_related("user"))


for _model in (Voice, EmotionPreset, PronunciationEntry):
    register_history_admin(_model)


@admin.register(ModerationWord)
class ModerationWordAdmin(SimpleHistoryAdmin):
    """The sensitive-word list. Every save reaches all processes at once (a version key in the
    shared cache); bulk lists come in with `manage.py moderation_import FILE`."""

    list_display = ["word", "category", "action", "is_active", "updated_at"]
    list_filter = ["action", "category", "is_active"]
    list_editable = ["action", "is_active"]
    search_fields = ["word", "category", "note"]
    actions = ["deactivate", export_csv]
    csv_fields = ["word", "category", "action", "is_active", "note"]

    @admin.action(description=_("Deactivate selected words"))
    def deactivate(self, request, queryset):
        # A loop, not queryset.update(): each save fires the invalidation signal.
        for word in queryset:
            word.is_active = False
            word.save(update_fields=["is_active", "updated_at"])


@admin.register(RecognitionRecord)
class RecognitionRecordAdmin(AuditAdmin):
    list_display = [
        "created_at",
        "event",
        "user",
        "message_id",
        "audio_format",
        "duration_ms",
        "size_bytes",
        "latency_ms",
        "transcript_length",
        "flagged",
        "error",
    ]
    list_filter = ["event", "audio_format", "flagged", "created_at"]
    date_hierarchy = "created_at"
    search_fields = ["=message_id", "=conversation_id", "error"]
    csv_fields = [
        "created_at",
        "event",
        "user_id",
        "message_id",
        "conversation_id",
        "audio_format",
        "size_bytes",
        "duration_ms",
        "latency_ms",
        "transcript_length",
        "flagged",
        "error",
        "client_ip",
    ]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user")
