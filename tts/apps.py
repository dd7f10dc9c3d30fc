from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class TtsConfig(AppConfig):
    name = "tts"
    verbose_name = _("Speech synthesis")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from tts import signals  # noqa: F401
