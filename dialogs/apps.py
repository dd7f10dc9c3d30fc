from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class DialogsConfig(AppConfig):
    name = "dialogs"
    verbose_name = _("Dialogs")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from dialogs import signals  # noqa: F401

        from .models import BusinessHours, Holiday
        from .selectors.workflow import schedule_forget

        # The schedule is cached per process (every conversation payload reads it).
        for model in (BusinessHours, Holiday):
            post_save.connect(schedule_forget, sender=model, dispatch_uid=f"schedule-{model}")
            post_delete.connect(schedule_forget, sender=model, dispatch_uid=f"schedule-del-{model}")
