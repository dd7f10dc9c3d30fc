from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import AuthenticationFailed
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer, TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings as jwt_settings
from rest_framework_simplejwt.tokens import RefreshToken

from .models import STAFF_ROLES, AuthChannel, AuthEventKind, User


class UserOutputSerializer(serializers.ModelSerializer):
    nickname = serializers.SerializerMethodField()

    class Meta:
        model = User
        fields = ["id", "username", "role", "nickname"]

    def get_nickname(self, user: User) -> str:
        return user.display_name


class TokenPairOutputSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserOutputSerializer()


class StaffTokenObtainSerializer(TokenObtainPairSerializer):
    """Username/password -> JWT, for staff only (customers log in through WeChat)."""

    @classmethod
    def get_token(cls, user):
        token = super().get_token(user)
        token["role"] = user.role
        return token

    def validate(self, attrs):
        from .audit import auth_event_record

        # A wrong password is audited by the user_login_failed signal inside authenticate().
        data = super().validate(attrs)
        request = self.context.get("request")
        if self.user.role not in STAFF_ROLES:
            auth_event_record(
                kind=AuthEventKind.LOGIN_FAILED,
                request=request,
                user=self.user,
                channel=AuthChannel.JWT,
                reason="not_staff",
            )
            raise serializers.ValidationError(_("Only staff accounts can log in with a password."))
        auth_event_record(
            kind=AuthEventKind.LOGIN, request=request, user=self.user, channel=AuthChannel.JWT
        )
        data["user"] = UserOutputSerializer(self.user).data
        return data


class TokenRefreshInputSerializer(TokenRefreshSerializer):
    """Refresh with the account as it is *now*: a deactivated or deleted user gets 401 (not a
    500 for a deleted one), and the new tokens carry the current role - a demoted agent's
    refreshed token no longer says `role: agent`."""

    def validate(self, attrs):
        refresh = RefreshToken(attrs["refresh"])
        user_id = refresh.payload.get(jwt_settings.USER_ID_CLAIM)
        user = User.objects.filter(**{jwt_settings.USER_ID_FIELD: user_id}).first()
        if user is None or not jwt_settings.USER_AUTHENTICATION_RULE(user):
            raise AuthenticationFailed(
                self.error_messages["no_active_account"], "no_active_account"
            )
        refresh["role"] = user.role  # before deriving the access token: it copies the claims
        refresh.blacklist()  # rotation, as BLACKLIST_AFTER_ROTATION asks
        refresh.set_jti()
        refresh.set_exp()
        refresh.set_iat()
        refresh.outstand()
        return {"access": str(refresh.access_token), "refresh": str(refresh)}
