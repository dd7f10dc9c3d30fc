"""Emotion presets (seeded by migration), registered once for the whole suite."""

import pytest

from tts.models import EmotionPreset


@pytest.fixture
def presets(db):
    return {preset.name: preset for preset in EmotionPreset.objects.all()}


@pytest.fixture
def calm(presets):
    return presets["calm"]
