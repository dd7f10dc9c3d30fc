"""Serializer fields for the tts boundary: every API that takes text to speak or a control
value uses these, so the limits are the engine's (`tts.engine.types.LIMITS`) and the
TTS_MAX_TEXT_CHARS setting, read when the request is validated, not copied into each view."""

from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework.relations import SlugRelatedField

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


class NamedObjectField(serializers.CharField):
    """A voice or preset given by its name, looked up when validated: what `SlugRelatedField`
    does, with its messages, but holding a lookup function instead of a queryset. DRF copies
    every declared field for each serializer it builds, and copying two querysets was a
    fifteenth of a cached /api/tts/ request's CPU (bench/README.md)."""

    default_error_messages = SlugRelatedField.default_error_messages

    def __init__(self, *, lookup: Callable[[str], Any], slug_name: str, **kwargs) -> None:
        self.lookup = lookup
        self.slug_name = slug_name
        super().__init__(**kwargs)

    # Longer than any name (voice ids and preset names are at most 64): no lookup needed.
    longest_name = 64

    def to_internal_value(self, data):
        value = super().to_internal_value(data)
        found = self.lookup(value) if len(value) <= self.longest_name else None
        if found is None:
            self.fail("does_not_exist", slug_name=self.slug_name, value=value)
        return found
