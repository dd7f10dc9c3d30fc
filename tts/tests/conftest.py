import pytest

from tts.installer import voice_dir


@pytest.fixture(scope="session")
def engine():
    """The real engine, loaded once for the test session (needs `manage.py tts_install_model`)."""
    from django.conf import settings

    if not (voice_dir(settings.TTS_MODEL_DIR) / "config.json").exists():
        pytest.skip("TTS model not installed: run `python manage.py tts_install_model`")
    from tts.adapters import get_engine

    return get_engine()
