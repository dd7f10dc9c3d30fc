from django.utils.translation import gettext_lazy as _
from rest_framework import serializers
from rest_framework_simplejwt.serializers import TokenObtainPairSerializer

from .models import STAFF_ROLES, User


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
        data = super().validate(attrs)
        if self.user.role not in STAFF_ROLES:
            raise serializers.ValidationError(_("Only staff accounts can log in with a password."))
        data["user"] = UserOutputSerializer(self.user).data
        return data
