from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DialogsConfig(AppConfig):
    name = "dialogs"
    verbose_name = _("Dialogs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from dialogs import signals  # noqa: F401
