from django.contrib.auth.models import AbstractUser
from django.core.exceptions import ObjectDoesNotExist
from django.db import models
from django.utils.translation import gettext_lazy as _
from simple_history.models import HistoricalRecords

from . import api_keys


class Role(models.TextChoices):
    CUSTOMER = "customer", _("Customer")
    AGENT = "agent", _("Agent")
    SUPERVISOR = "supervisor", _("Supervisor")
    ADMIN = "admin", _("Administrator")


STAFF_ROLES = frozenset({Role.AGENT, Role.SUPERVISOR, Role.ADMIN})


class User(AbstractUser):
    """One user table for customers and staff; `role` is the coarse switch, groups the fine one."""

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.CUSTOMER)

    class Meta:
        verbose_name = _("user")
        verbose_name_plural = _("users")

    @property
    def is_customer(self) -> bool:
        return self.role == Role.CUSTOMER

    @property
    def is_agent_or_above(self) -> bool:
        return self.role in STAFF_ROLES

    @property
    def display_name(self) -> str:
        """The name others see. Staff are never shown by username (customers see this): their
        workflow nickname (dialogs' AgentProfile, e.g. 客服小李), else their name, else 客服<id>."""
        profile = getattr(self, "customer_profile", None)
        if profile is not None and profile.nickname:
            return profile.nickname
        if self.role != Role.CUSTOMER or self.is_staff:
            try:
                nickname = self.agent_profile.display_name
            except ObjectDoesNotExist:
                nickname = ""
            return nickname or self.get_full_name() or f"客服{self.pk}"
        return self.get_full_name() or self.username

    # The columns `display_name_from_values` reads, relative to a user (for `.values()`).
    DISPLAY_NAME_FIELDS = (
        "id",
        "role",
        "is_staff",
        "first_name",
        "last_name",
        "username",
        "customer_profile__nickname",
        "agent_profile__display_name",
    )

    @staticmethod
    def display_name_from_values(values: dict) -> str:
        """`display_name` from the columns of `DISPLAY_NAME_FIELDS` (keys without a prefix):
        for list reads that build no model instances. The same rules, in the same order."""
        if values["customer_profile__nickname"]:
            return values["customer_profile__nickname"]
        full_name = f"{values['first_name']} {values['last_name']}".strip()
        if values["role"] != Role.CUSTOMER or values["is_staff"]:
            return values["agent_profile__display_name"] or full_name or f"客服{values['id']}"
        return full_name or values["username"]


class CustomerProfile(models.Model):
    """A WeChat mini-program customer: identified by openid within our appid."""

    user = models.OneToOneField(
        User, on_delete=models.CASCADE, related_name="customer_profile", verbose_name=_("user")
    )
    openid = models.CharField(_("WeChat openid"), max_length=64, unique=True)
    unionid = models.CharField(_("WeChat unionid"), max_length=64, blank=True, db_index=True)
    nickname = models.CharField(_("nickname"), max_length=64, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        verbose_name = _("customer profile")
        verbose_name_plural = _("customer profiles")

    def __str__(self) -> str:
        return self.nickname or f"customer {self.pk}"


class ApiScope(models.TextChoices):
    TTS = "tts", _("Speech synthesis (/v1/audio/speech)")


class ApiKey(models.Model):
    """A server-to-server credential. Only the sha256 of the key is stored; the raw key is shown
    once, when it is created. `prefix` (e.g. ``csk_3fA9xQ2b``) identifies a key in logs and the
    admin without revealing it, and narrows the lookup before the constant-time comparison."""

    name = models.CharField(_("name"), max_length=64, unique=True)
    prefix = models.CharField(_("prefix"), max_length=16, db_index=True, editable=False)
    key_hash = models.CharField(_("key hash (sha256)"), max_length=64, unique=True, editable=False)
    scopes = models.JSONField(
        _("scopes"), default=list, blank=True, validators=[api_keys.validate_scopes]
    )
    allowed_ips = models.TextField(
        _("allowed IPs"),
        blank=True,
        validators=[api_keys.validate_allowed_ips],
        help_text=_("One IP address or CIDR network per line (or comma-separated); empty: any."),
    )
    rate_limit = models.CharField(
        _("rate limit"),
        max_length=16,
        default="60/m",
        validators=[api_keys.validate_rate_limit],
        help_text=_('Requests per period, e.g. "60/m", "1000/h", "5/10s".'),
    )
    created_by = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    last_used_at = models.DateTimeField(_("last used"), null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(_("revoked at"), null=True, blank=True, editable=False)
    # Who changed what (scopes, IPs, limit, revocation) is an audit requirement; last use is
    # written with queryset.update() and so never floods the history.
    history = HistoricalRecords(
        excluded_fields=["last_used_at"],
        verbose_name=_("change history of API keys"),
        verbose_name_plural=_("change history of API keys"),
    )

    class Meta:
        verbose_name = _("API key")
        verbose_name_plural = _("API keys")
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None


class AuthEventKind(models.TextChoices):
    LOGIN = "login", _("Login")
    LOGIN_FAILED = "login_failed", _("Failed login")
    LOGOUT = "logout", _("Logout")


class AuthChannel(models.TextChoices):
    ADMIN = "admin", _("Admin / console (session)")
    JWT = "jwt", _("Staff token (JWT)")
    WECHAT = "wechat", _("WeChat mini-program")
    OTHER = "other", _("Other")


class AuthEvent(models.Model):
    """The audit trail of logins: who (or which username was tried), how, from where, when.

    Written by signal receivers (accounts/audit.py); never edited. Passwords are never stored -
    Django's user_login_failed signal has already masked them, and only the username is kept.
    """

    created_at = models.DateTimeField(_("at"), auto_now_add=True, db_index=True)
    kind = models.CharField(_("event"), max_length=16, choices=AuthEventKind.choices)
    channel = models.CharField(_("channel"), max_length=16, choices=AuthChannel.choices)
    user = models.ForeignKey(
        User,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        verbose_name=_("user"),
    )
    username = models.CharField(_("username"), max_length=150, blank=True, db_index=True)
    ip = models.GenericIPAddressField(_("IP address"), null=True, blank=True)
    user_agent = models.CharField(_("user agent"), max_length=256, blank=True)
    reason = models.CharField(_("reason"), max_length=64, blank=True)

    class Meta:
        verbose_name = _("login event")
        verbose_name_plural = _("login events")
        ordering = ["-created_at", "-pk"]
        indexes = [models.Index(fields=["kind", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {self.username} ({self.get_channel_display()})"
