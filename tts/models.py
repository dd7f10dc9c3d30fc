"""TTS data: voices, emotion presets, the pronunciation lexicon, the clip cache, the audit trail."""

import re

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from tts.engine.types import LIMITS

# The engine's control ranges, defined once (tts.engine.types.LIMITS): the presets' database
# constraints and every API serializer use these.
SPEED_RANGE = LIMITS["speed"]
PITCH_RANGE = LIMITS["pitch"]  # semitones
ENERGY_RANGE = LIMITS["energy"]
PAUSE_RANGE = LIMITS["pause"]
_TONED_SYLLABLE = re.compile(r"^[a-zü:]+[1-5]$")


def _range_check(field: str, bounds: tuple[float, float]) -> models.CheckConstraint:
    low, high = bounds
    return models.CheckConstraint(
        condition=Q(**{f"{field}__gte": low, f"{field}__lte": high}),
        name=f"%(app_label)s_%(class)s_{field}_range",
    )


class Voice(models.Model):
    engine_voice_id = models.CharField(_("engine voice id"), max_length=64, unique=True)
    display_name = models.CharField(_("display name"), max_length=64)
    is_default = models.BooleanField(_("default voice"), default=False)
    is_active = models.BooleanField(_("active"), default=True)
    history = HistoricalRecords(
        verbose_name=_("change history of voices"),
        verbose_name_plural=_("change history of voices"),
    )

    class Meta:
        verbose_name = _("voice")
        verbose_name_plural = _("voices")
        constraints = [
            models.UniqueConstraint(
                fields=["is_default"], condition=Q(is_default=True), name="tts_voice_one_default"
            )
        ]

    def __str__(self) -> str:
        return self.display_name


class VoiceEngine(models.TextChoices):
    BAKER = "baker", _("local Baker engine")
    INDEXTTS2 = "indextts2", _("IndexTTS2 HTTP API")
    COSYVOICE = "cosyvoice", _("CosyVoice runtime server")
    COSYVOICE_RELAY = "cosyvoice-relay", _("CosyVoice relay")
    OPENAI = "openai", _("OpenAI-compatible server")


class CosyVoiceMode(models.TextChoices):
    SFT = "sft", _("built-in speaker (sft)")
    ZERO_SHOT = "zero_shot", _("clone from the prompt recording (zero_shot)")
    INSTRUCT2 = "instruct2", _("prompt recording + instruction (instruct2)")


# What each emotion preset asks a remote engine for, unless the voice's own mapping says
# otherwise: CosyVoice instructions are natural-language Chinese; IndexTTS2 takes a label.
DEFAULT_EMOTION_MAP = {
    VoiceEngine.COSYVOICE: {
        "neutral": "用自然、清晰的语气说",
        "calm": "用平和、安抚的语气说",
        "serious": "用认真、专业的语气说",
        "happy": "用愉快、轻松的语气说",
        "warm": "用亲切、温暖的语气说",
    },
    VoiceEngine.INDEXTTS2: {
        "neutral": "calm",
        "calm": "calm",
        "serious": "serious",
        "happy": "happy",
        "warm": "happy",
    },
}
DEFAULT_EMOTION_MAP[VoiceEngine.COSYVOICE_RELAY] = DEFAULT_EMOTION_MAP[VoiceEngine.COSYVOICE]


class RemoteVoiceSettings(models.Model):
    """Where a voice that lives on another box is and how to call it. A separate table from
    Voice so that the secret is never copied into Voice's change history."""

    voice = models.OneToOneField(
        Voice, on_delete=models.CASCADE, related_name="remote", verbose_name=_("voice")
    )
    engine = models.CharField(
        _("engine"),
        max_length=16,
        choices=[c for c in VoiceEngine.choices if c[0] != VoiceEngine.BAKER],
    )
    base_url = models.URLField(_("base URL"), help_text=_("e.g. http://gpu-box:50000"))
    api_key = models.CharField(
        _("secret"), max_length=200, blank=True, help_text=_("sent as a Bearer token; shown masked")
    )
    timeout_s = models.FloatField(_("timeout (s)"), default=30.0)
    max_concurrency = models.PositiveSmallIntegerField(
        _("max concurrent requests"), default=2, help_text=_("across all workers")
    )
    speaker = models.CharField(
        _("speaker id / upstream voice"), max_length=64, blank=True,
        help_text=_("IndexTTS2 speaker_id, CosyVoice spk_id, OpenAI voice name"),
    )  # fmt: skip
    sample_rate = models.PositiveIntegerField(
        _("sample rate"), default=24000, help_text=_("CosyVoice raw PCM: 22050 (v1) or 24000")
    )
    mode = models.CharField(
        _("CosyVoice mode"), max_length=16, choices=CosyVoiceMode.choices, default="sft"
    )
    model_name = models.CharField(_("model (OpenAI-compatible)"), max_length=64, default="tts-1")
    prompt_audio = models.BinaryField(_("prompt recording (16 kHz WAV)"), blank=True, default=b"")
    prompt_sha256 = models.CharField(_("prompt hash"), max_length=64, blank=True)
    prompt_text = models.CharField(_("prompt text"), max_length=300, blank=True)
    prompt_prefix = models.CharField(
        _("prompt prefix"), max_length=100, blank=True,
        help_text=_("CosyVoice 3 builds: e.g. You are a helpful assistant.<|endofprompt|>"),
    )  # fmt: skip
    emotion_map = models.JSONField(
        _("emotion mapping"), default=dict, blank=True,
        help_text=_("preset name -> what the engine understands; empty: the defaults"),
    )  # fmt: skip
    fallback_to_baker = models.BooleanField(_("fall back to the local voice"), default=True)
    calls = models.PositiveIntegerField(_("calls"), default=0)
    errors = models.PositiveIntegerField(_("errors"), default=0)
    last_latency_ms = models.PositiveIntegerField(_("last latency (ms)"), null=True, blank=True)
    last_error = models.CharField(_("last error"), max_length=200, blank=True)

    class Meta:
        verbose_name = _("remote engine settings")
        verbose_name_plural = _("remote engine settings")

    def __str__(self) -> str:
        return f"{self.voice} @ {self.get_engine_display()}"

    @property
    def masked_api_key(self) -> str:
        return (
            f"{self.api_key[:3]}…{self.api_key[-2:]}"
            if len(self.api_key) > 8
            else ("••••" if self.api_key else "")
        )

    def emotion_for(self, preset_name: str) -> str:
        mapping = {**DEFAULT_EMOTION_MAP.get(self.engine, {}), **(self.emotion_map or {})}
        return mapping.get(preset_name, "") if preset_name else ""


class EmotionPreset(models.Model):
    """A named bundle of engine controls: the tone a reply is spoken in."""

    name = models.SlugField(_("name"), max_length=32, unique=True)
    label = models.CharField(_("Chinese label"), max_length=32)
    speed = models.FloatField(_("speed"), default=1.0, help_text=_("0.5–2.0; above 1 is faster"))
    pitch = models.FloatField(_("pitch (semitones)"), default=0.0, help_text=_("−6 to +6"))
    energy = models.FloatField(_("energy"), default=1.0, help_text=_("0.5–1.5"))
    pause = models.FloatField(_("pause scale"), default=1.0, help_text=_("0.5–2.0"))
    description = models.CharField(_("description"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(
        verbose_name=_("change history of emotion presets"),
        verbose_name_plural=_("change history of emotion presets"),
    )

    class Meta:
        verbose_name = _("emotion preset")
        verbose_name_plural = _("emotion presets")
        ordering = ["name"]
        constraints = [
            _range_check("speed", SPEED_RANGE),
            _range_check("pitch", PITCH_RANGE),
            _range_check("energy", ENERGY_RANGE),
            _range_check("pause", PAUSE_RANGE),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.name})"


class PronunciationEntry(models.Model):
    """Admin lexicon: word -> toned pinyin, one syllable per character (e.g. 重庆 chong2 qing4)."""

    word = models.CharField(_("word"), max_length=32, unique=True)
    pinyin = models.CharField(_("pinyin"), max_length=200, help_text=_("e.g. chong2 qing4"))
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords(
        verbose_name=_("change history of the pronunciation lexicon"),
        verbose_name_plural=_("change history of the pronunciation lexicon"),
    )

    class Meta:
        verbose_name = _("pronunciation entry")
        verbose_name_plural = _("pronunciation lexicon")
        ordering = ["word"]

    def __str__(self) -> str:
        return f"{self.word} → {self.pinyin}"

    @property
    def syllables(self) -> list[str]:
        return self.pinyin.split()

    def clean(self) -> None:
        # The engine skips an entry it cannot read (and only logs it): refuse it here instead,
        # with a message that says what to type.
        from .engine.frontend.symbols import toned_to_symbols

        self.pinyin = " ".join(self.pinyin.lower().split())
        syllables = self.syllables
        untoned = [s for s in syllables if not _TONED_SYLLABLE.match(s)]
        if untoned:
            raise ValidationError(
                {
                    "pinyin": _(
                        "Every syllable needs a tone number 1–5 (5 = neutral tone), "
                        "e.g. chong2 qing4; missing in: %(syllables)s"
                    )
                    % {"syllables": " ".join(untoned)}
                }
            )
        unknown = [s for s in syllables if toned_to_symbols(s.replace("ü", "v")) is None]
        if unknown:
            raise ValidationError(
                {
                    "pinyin": _("Not a Mandarin syllable: %(syllables)s")
                    % {"syllables": " ".join(unknown)}
                }
            )
        if self.word and len(syllables) != len(self.word):
            raise ValidationError(
                {
                    "pinyin": _(
                        "One syllable per character: %(word)s has %(n)d characters, "
                        "the pinyin %(m)d syllables."
                    )
                    % {"word": self.word, "n": len(self.word), "m": len(syllables)}
                }
            )


class AudioFormat(models.TextChoices):
    WAV = "wav", "WAV"
    MP3 = "mp3", "MP3"
    PCM = "pcm", "PCM"
    OPUS = "opus", "Opus"
    AAC = "aac", "AAC"
    FLAC = "flac", "FLAC"


class AudioClip(models.Model):
    """The audio cache. `cache_key` hashes everything that changes the sound (text after
    normalisation, voice, controls, lexicon entries used, engine version), so an edit to any of
    them makes a different key: stale clips are simply never looked up again, then pruned."""

    cache_key = models.CharField(_("cache key"), max_length=64, unique=True)
    text = models.TextField(_("normalised text"))
    voice = models.ForeignKey(
        Voice, on_delete=models.PROTECT, related_name="clips", verbose_name=_("voice")
    )
    emotion = models.CharField(_("emotion"), max_length=32, blank=True)
    controls = models.JSONField(_("controls"), default=dict)
    lexicon_fingerprint = models.CharField(_("lexicon fingerprint"), max_length=64, blank=True)
    engine_version = models.CharField(_("engine version"), max_length=64)
    file = models.FileField(_("file"), upload_to="clips/%Y/%m/")
    format = models.CharField(_("format"), max_length=8, choices=AudioFormat.choices)
    engine = models.CharField(_("engine that spoke"), max_length=32, default="baker")
    sample_rate = models.PositiveIntegerField(_("sample rate"), default=24000)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"))
    size_bytes = models.PositiveIntegerField(_("size (bytes)"))
    hit_count = models.PositiveIntegerField(_("hits"), default=0)
    # "" = the shared cache; "user:<id>" = clips a customer asked for, seen by nobody else and
    # counted against that customer's storage cap (tts.budgets).
    scope = models.CharField(_("cache scope"), max_length=32, blank=True, db_index=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("audio clip")
        verbose_name_plural = _("audio clips")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.text[:20]} [{self.emotion or '-'}] {self.format}"


class SynthesisSource(models.TextChoices):
    API = "api", _("API")
    REPLY = "reply", _("reply")
    PRECOMPUTE = "precompute", _("precompute")
    PREVIEW = "preview", _("preview")
    STREAM = "stream", _("stream")
    CLI = "cli", _("command line")


class SynthesisStatus(models.TextChoices):
    OK = "ok", _("ok")
    FAILED = "failed", _("failed")
    REJECTED = "rejected", _("rejected")


class SynthesisRecord(models.Model):
    """One row per synthesis request (audit). Keeps an excerpt and a digest, not the full text."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="synthesis_records",
        verbose_name=_("user"),
    )
    api_key_name = models.CharField(_("API key"), max_length=64, blank=True)
    source = models.CharField(_("source"), max_length=16, choices=SynthesisSource.choices)
    text_excerpt = models.CharField(_("text excerpt"), max_length=40)
    text_digest = models.CharField(_("text digest"), max_length=64, db_index=True)
    text_length = models.PositiveIntegerField(_("text length"), default=0)
    voice = models.CharField(_("voice"), max_length=64, blank=True)
    emotion = models.CharField(_("emotion"), max_length=32, blank=True)
    controls = models.JSONField(_("controls"), default=dict)
    cache_hit = models.BooleanField(_("cache hit"), default=False)
    engine = models.CharField(_("engine that spoke"), max_length=64, blank=True)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    status = models.CharField(_("status"), max_length=16, choices=SynthesisStatus.choices)
    error = models.CharField(_("error"), max_length=300, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    clip = models.ForeignKey(
        AudioClip,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        verbose_name=_("audio clip"),
    )
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("synthesis record")
        verbose_name_plural = _("synthesis records")
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["status", "created_at"])]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.source} {self.status}"


class ModerationAction(models.TextChoices):
    BLOCK = "block", _("block")
    MASK = "mask", _("mask")
    FLAG = "flag", _("flag")


class ModerationWord(models.Model):
    """A sensitive word: matched folded (full/half width, case) and across separators."""

    word = models.CharField(_("word"), max_length=64, unique=True)
    category = models.CharField(_("category"), max_length=32, db_index=True)
    action = models.CharField(
        _("action"),
        max_length=8,
        choices=ModerationAction.choices,
        default=ModerationAction.MASK,
        help_text=_(
            "block: outgoing replies and speech requests are refused; mask: shown as *; "
            "flag: kept as is, the message and conversation are marked for review."
        ),
    )
    is_active = models.BooleanField(_("active"), default=True)
    note = models.CharField(_("note"), max_length=200, blank=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    history = HistoricalRecords()

    class Meta:
        verbose_name = _("sensitive word")
        verbose_name_plural = _("sensitive words")
        ordering = ["category", "word"]

    def __str__(self) -> str:
        return f"{self.word} ({self.category}, {self.action})"

    def clean(self) -> None:
        from tts.moderation import fold_text

        self.word = (self.word or "").strip()
        if not fold_text(self.word)[0]:
            raise ValidationError({"word": _("The word has no letters or characters to match.")})


class RecognitionEvent(models.TextChoices):
    RECEIVED = "received", _("voice message received")
    REJECTED = "rejected", _("upload rejected")
    TRANSCRIBED = "transcribed", _("transcribed")
    FAILED = "failed", _("transcription failed")


class RecognitionRecord(models.Model):
    """Audit of voice input: every upload (accepted or refused) and every transcription.

    No transcript text here (customer speech is not audit data); the message holds it.
    """

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="recognition_records",
        verbose_name=_("user"),
    )
    event = models.CharField(_("event"), max_length=16, choices=RecognitionEvent.choices)
    message_id = models.BigIntegerField(_("message id"), null=True, blank=True, db_index=True)
    conversation_id = models.BigIntegerField(_("conversation id"), null=True, blank=True)
    audio_format = models.CharField(_("format"), max_length=8, blank=True)
    size_bytes = models.PositiveIntegerField(_("size (bytes)"), default=0)
    duration_ms = models.PositiveIntegerField(_("duration (ms)"), default=0)
    latency_ms = models.PositiveIntegerField(_("latency (ms)"), default=0)
    transcript_length = models.PositiveIntegerField(_("transcript length"), default=0)
    flagged = models.BooleanField(_("flagged by the word filter"), default=False)
    error = models.CharField(_("error"), max_length=300, blank=True)
    client_ip = models.GenericIPAddressField(_("client IP"), null=True, blank=True)
    created_at = models.DateTimeField(_("time"), auto_now_add=True, db_index=True)

    class Meta:
        verbose_name = _("speech recognition record")
        verbose_name_plural = _("speech recognition records")
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_event_display()} #{self.message_id or '-'}"
