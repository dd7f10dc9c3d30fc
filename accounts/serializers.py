from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

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
