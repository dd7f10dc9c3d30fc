from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _
from rest_framework_simplejwt.token_blacklist import admin as jwt_admin
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken
from simple_history.admin import SimpleHistoryAdmin

from . import services
from .models import ApiKey, ApiScope, AuthEvent, CustomerProfile, User


class CustomerProfileInline(admin.StackedInline):
    model = CustomerProfile
    can_delete = False
    readonly_fields = ["openid", "unionid", "created_at"]
    extra = 0


@admin.register(User)
class UserAdmin(BaseUserAdmin):
    list_display = ["username", "role", "is_staff", "is_active", "last_login", "date_joined"]
    list_filter = ["role", "is_staff", "is_active", "groups"]
    fieldsets = (*BaseUserAdmin.fieldsets, (_("Role"), {"fields": ("role",)}))
    inlines = [CustomerProfileInline]


@admin.register(CustomerProfile)
class CustomerProfileAdmin(admin.ModelAdmin):
    list_display = ["nickname", "openid", "user", "created_at"]
    search_fields = ["nickname", "openid", "unionid"]
    readonly_fields = ["openid", "unionid", "created_at"]


class ApiKeyAdminForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        label=_("scopes"),
        choices=ApiScope.choices,
        widget=forms.CheckboxSelectMultiple,
        required=False,
    )

    class Meta:
        model = ApiKey
        fields = ["name", "scopes", "allowed_ips", "rate_limit"]


@admin.register(ApiKey)
class ApiKeyAdmin(SimpleHistoryAdmin):
    """Keys are created here; the raw key is shown once, in a message after saving."""

    form = ApiKeyAdminForm
    list_display = ["name", "prefix", "scopes", "rate_limit", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "created_by", "created_at", "last_used_at", "revoked_at"]
    actions = ["revoke_selected"]

    def save_model(self, request, obj, form, change):
        if change:
            super().save_model(request, obj, form, change)
            return
        obj.created_by = request.user
        raw = services.api_key_assign_secret(api_key=obj)
        super().save_model(request, obj, form, change)
        # Only the hash is stored: this message is the one and only time the key is visible.
        messages.warning(
            request,
            _("API key created. Copy it now, it will not be shown again: %(key)s") % {"key": raw},
        )

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: the audit trail keeps referring to the key by name

    @admin.action(description=_("Revoke selected API keys"))
    def revoke_selected(self, request, queryset):
        for api_key in queryset.filter(revoked_at__isnull=True):
            services.api_key_revoke(api_key=api_key)
        self.message_user(request, _("The selected keys are revoked."), messages.SUCCESS)


@admin.register(AuthEvent)
class AuthEventAdmin(admin.ModelAdmin):
    """The login audit trail: read-only for everyone, superusers included."""

    list_display = ["created_at", "kind", "channel", "username", "user", "ip", "reason"]
    list_filter = ["kind", "channel", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["username", "ip", "reason"]
    date_hierarchy = "created_at"
    list_select_related = ["user"]
    readonly_fields = [f.name for f in AuthEvent._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False  # viewing needs only the view permission

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


# simplejwt's token admin labels its columns with bare field names (JTI, EXPIRES AT ...), which
# no catalogue translates: the same read-only lists, with titled columns.
class OutstandingTokenAdmin(jwt_admin.OutstandingTokenAdmin):
    list_display = ("token_id", "user", "issued_at", "expires")

    @admin.display(description=_("token id (jti)"), ordering="jti")
    def token_id(self, obj: OutstandingToken) -> str:
        return obj.jti

    @admin.display(description=_("issued at"), ordering="created_at")
    def issued_at(self, obj: OutstandingToken):
        return obj.created_at

    @admin.display(description=_("expires at"), ordering="expires_at")
    def expires(self, obj: OutstandingToken):
        return obj.expires_at


class BlacklistedTokenAdmin(jwt_admin.BlacklistedTokenAdmin):
    list_display = ("token_jti", "token_user", "token_created_at", "token_expires_at", "revoked")

    @admin.display(description=_("blacklisted at"), ordering="blacklisted_at")
    def revoked(self, obj: BlacklistedToken):
        return obj.blacklisted_at


for _model, _admin in (
    (OutstandingToken, OutstandingTokenAdmin),
    (BlacklistedToken, BlacklistedTokenAdmin),
):
    if admin.site.is_registered(_model):
        admin.site.unregister(_model)
    admin.site.register(_model, _admin)
