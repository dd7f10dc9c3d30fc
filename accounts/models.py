from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


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
        profile = getattr(self, "customer_profile", None)
        if profile is not None and profile.nickname:
            return profile.nickname
        return self.get_full_name() or self.username


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
