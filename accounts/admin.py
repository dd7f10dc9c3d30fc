from django.contrib import admin
from django.contrib.auth.admin import UserAdmin as BaseUserAdmin
from django.utils.translation import gettext_lazy as _

from .models import CustomerProfile, User


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
