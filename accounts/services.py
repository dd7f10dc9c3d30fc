"""Account writes: customers from WeChat, staff roles, tokens, API keys."""

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from django.utils import timezone
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from . import api_keys
from .models import ApiKey, CustomerProfile, Role, User
from .wechat import jscode2session

DEMO_CUSTOMER_OPENID = "demo-customer-openid"
STAFF_GROUPS = {Role.AGENT: "agents", Role.SUPERVISOR: "supervisors", Role.ADMIN: "supervisors"}


def dev_login_enabled() -> bool:
    # Both flags, checked on every request: a production box with DEBUG off never has it.
    return bool(settings.DEBUG and settings.WECHAT_DEV_LOGIN)


@transaction.atomic
def customer_get_or_create(*, openid: str, unionid: str = "", nickname: str = "") -> User:
    profile = CustomerProfile.objects.select_related("user").filter(openid=openid).first()
    if profile is not None:
        if unionid and profile.unionid != unionid:
            profile.unionid = unionid
            profile.save(update_fields=["unionid"])
        return profile.user
    try:
        with transaction.atomic():
            user = User.objects.create(username=f"wx_{openid}"[:150], role=Role.CUSTOMER)
            user.set_unusable_password()
            user.save(update_fields=["password"])
            CustomerProfile.objects.create(
                user=user, openid=openid, unionid=unionid, nickname=nickname
            )
    except IntegrityError:
        # Two first logins raced: the other one created the customer.
        return CustomerProfile.objects.select_related("user").get(openid=openid).user
    return user


class AccountDisabled(Exception):
    """The account exists but is deactivated: no new tokens, whatever WeChat says."""


def customer_login_with_wechat(*, code: str) -> User:
    session = jscode2session(code=code)
    user = customer_get_or_create(openid=session.openid, unionid=session.unionid)
    if not user.is_active:
        raise AccountDisabled()
    return user


def customer_dev_login() -> User:
    return customer_get_or_create(openid=DEMO_CUSTOMER_OPENID, nickname="演示客户")


def tokens_for_user(*, user: User) -> dict[str, str]:
    if not user.is_active:
        raise AccountDisabled()
    refresh = RefreshToken.for_user(user)
    refresh["role"] = user.role  # copied into every access token derived from it
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def refresh_token_revoke(*, token: str, user: User) -> None:
    """Blacklist `user`'s own refresh token. Someone else's token is refused exactly like an
    invalid one (TokenError): logging out must not be a way to log other people out."""
    refresh = RefreshToken(token)
    if str(refresh.get(jwt_settings.USER_ID_CLAIM)) != str(
        getattr(user, jwt_settings.USER_ID_FIELD)
    ):
        raise TokenError("not this user's token")
    refresh.blacklist()


@transaction.atomic
def staff_user_set_role(*, user: User, role: Role) -> User:
    user.role = role
    user.is_staff = role in {Role.AGENT, Role.SUPERVISOR, Role.ADMIN}
    user.is_superuser = role == Role.ADMIN
    user.save(update_fields=["role", "is_staff", "is_superuser"])
    user.groups.remove(*Group.objects.filter(name__in=set(STAFF_GROUPS.values())))
    group_name = STAFF_GROUPS.get(role)
    if group_name:
        user.groups.add(Group.objects.get_or_create(name=group_name)[0])
    return user


@transaction.atomic
def staff_user_create(*, username: str, password: str, role: Role, **fields) -> User:
    user = User(username=username, **fields)
    user.set_password(password)
    user.full_clean(exclude=["password"])
    user.save()
    return staff_user_set_role(user=user, role=role)


# last_used_at is for humans ("is this key still used?"): minute precision is plenty, and it
# spares the database one write per API request.
API_KEY_TOUCH_INTERVAL = timedelta(minutes=1)


def api_key_assign_secret(*, api_key: ApiKey) -> str:
    """Give an unsaved key its secret; returns the raw key (the only time it exists)."""
    raw = api_keys.key_generate()
    api_key.prefix = api_keys.key_prefix(raw)
    api_key.key_hash = api_keys.key_hash(raw)
    return raw


@transaction.atomic
def api_key_create(
    *,
    name: str,
    scopes: list[str],
    allowed_ips: str = "",
    rate_limit: str = "60/m",
    created_by: User | None = None,
) -> tuple[ApiKey, str]:
    api_key = ApiKey(
        name=name,
        scopes=list(scopes),
        allowed_ips=allowed_ips,
        rate_limit=rate_limit,
        created_by=created_by,
    )
    raw = api_key_assign_secret(api_key=api_key)
    api_key.full_clean()
    api_key.save()
    return api_key, raw


@transaction.atomic
def api_key_revoke(*, api_key: ApiKey) -> ApiKey:
    if api_key.revoked_at is None:
        api_key.revoked_at = timezone.now()
        api_key.save(update_fields=["revoked_at"])  # a history row: who revoked it, when
    return api_key


def api_key_touch(*, api_key: ApiKey) -> None:
    now = timezone.now()
    if api_key.last_used_at is None or now - api_key.last_used_at >= API_KEY_TOUCH_INTERVAL:
        ApiKey.objects.filter(pk=api_key.pk).update(last_used_at=now)
        api_key.last_used_at = now
