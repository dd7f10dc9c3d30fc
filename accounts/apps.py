import logging

from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = _("Accounts")
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings
        from django.core import checks

        from . import audit  # noqa: F401  (connects the login audit receivers)
        from .wechat import wechat_configured

        checks.register(_check_wechat_configured, checks.Tags.security, deploy=True)
        if not settings.DEBUG and not wechat_configured():
            # Said at start, not discovered at the first customer's login (and /readyz fails).
            logging.getLogger(__name__).error(
                "WeChat login is not configured: set WECHAT_APPID and WECHAT_SECRET"
            )


def _check_wechat_configured(app_configs, **kwargs):
    from django.core import checks

    from .wechat import wechat_configured

    if wechat_configured():
        return []
    return [
        checks.Error(
            "WECHAT_APPID and WECHAT_SECRET are not set: customers cannot log in.",
            hint="Set both from the mini-program's settings in the WeChat console.",
            id="accounts.E001",
        )
    ]
