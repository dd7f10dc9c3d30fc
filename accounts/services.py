"""Account writes: customers from WeChat, staff roles, tokens."""

from django.conf import settings
from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction
from rest_framework_simplejwt.tokens import RefreshToken

from .models import CustomerProfile, Role, User
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


def customer_login_with_wechat(*, code: str) -> User:
    session = jscode2session(code=code)
    return customer_get_or_create(openid=session.openid, unionid=session.unionid)


def customer_dev_login() -> User:
    return customer_get_or_create(openid=DEMO_CUSTOMER_OPENID, nickname="演示客户")


def tokens_for_user(*, user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["role"] = user.role  # copied into every access token derived from it
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def refresh_token_revoke(*, token: str) -> None:
    RefreshToken(token).blacklist()


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
