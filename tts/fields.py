"""Serializer fields for the tts boundary: every API that takes text to speak or a control
value uses these, so the limits are the engine's (`tts.engine.types.LIMITS`) and the
TTS_MAX_TEXT_CHARS setting, read when the request is validated, not copied into each view."""

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from tts.engine.types import LIMITS


class SpeechTextField(serializers.CharField):
    """Text that will be spoken: at most TTS_MAX_TEXT_CHARS characters."""

    default_error_messages = {
        "max_length": _("Ensure this field has no more than {max_length} characters.")
    }

    def __init__(self, **kwargs):
        kwargs.setdefault("trim_whitespace", False)
        super().__init__(**kwargs)
        # For the schema; validation reads the setting per request (it may be overridden).
        self.max_length = settings.TTS_MAX_TEXT_CHARS

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        limit = settings.TTS_MAX_TEXT_CHARS
        if len(value) > limit:
            self.fail("max_length", max_length=limit)
        return value


def control_field(name: str, **kwargs) -> serializers.FloatField:
    """A speed/pitch/energy/pause input bounded by the engine's range for it."""
    low, high = LIMITS[name]
    return serializers.FloatField(min_value=low, max_value=high, **kwargs)
