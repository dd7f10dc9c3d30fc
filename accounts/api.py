"""Thin API views: validate -> one service -> serialize."""

from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django_ratelimit.decorators import ratelimit
from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import exceptions, serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.views import TokenObtainPairView, TokenRefreshView

from common.errors import ServiceUnavailable

from . import services
from .audit import auth_event_record
from .models import AuthChannel, AuthEventKind
from .serializers import (
    TokenPairOutputSerializer,
    TokenRefreshInputSerializer,
    UserOutputSerializer,
)
from .wechat import WeChatError, WeChatNotConfigured

login_ratelimit = method_decorator(
    ratelimit(key="ip", rate=lambda group, request: _login_rate(), block=True), name="post"
)


def _login_rate() -> str:
    from django.conf import settings

    return settings.RATELIMIT_LOGIN_PER_IP


def _token_response(user, status_code=status.HTTP_200_OK) -> Response:
    try:
        payload = {**services.tokens_for_user(user=user), "user": user}
    except services.AccountDisabled as exc:
        raise exceptions.PermissionDenied(
            _("This account is disabled."), "account_disabled"
        ) from exc
    return Response(TokenPairOutputSerializer(payload).data, status=status_code)


@login_ratelimit
class WeChatLoginApi(APIView):
    permission_classes = [AllowAny]
    authentication_classes: list = []

    class WeChatLoginInputSerializer(serializers.Serializer):
        code = serializers.CharField(max_length=128, help_text="The code from wx.login()")

    @extend_schema(request=WeChatLoginInputSerializer, responses={200: TokenPairOutputSerializer})
    def post(self, request):
        serializer = self.WeChatLoginInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            user = services.customer_login_with_wechat(code=serializer.validated_data["code"])
        except WeChatNotConfigured as exc:
            raise ServiceUnavailable(
                _("WeChat login is not configured on this server."), "wechat_not_configured"
            ) from exc
        except services.AccountDisabled as exc:
            auth_event_record(
                kind=AuthEventKind.LOGIN_FAILED,
                request=request,
                channel=AuthChannel.WECHAT,
                reason="account_disabled",
            )
            raise exceptions.PermissionDenied(
                _("This account is disabled."), "account_disabled"
            ) from exc
        except WeChatError as exc:
            auth_event_record(
                kind=AuthEventKind.LOGIN_FAILED,
                request=request,
                channel=AuthChannel.WECHAT,
                reason=exc.code,
            )
            if exc.retryable:
                raise ServiceUnavailable(exc.message, exc.code, retry_after=5) from exc
            raise exceptions.ValidationError({"code": [exc.message]}, code=exc.code) from exc
        auth_event_record(
            kind=AuthEventKind.LOGIN, request=request, user=user, channel=AuthChannel.WECHAT
        )
        return _token_response(user)


@login_ratelimit
class DevLoginApi(APIView):
    """Any code -> the demo customer. Exists only when DEBUG and WECHAT_DEV_LOGIN are both set."""

    permission_classes = [AllowAny]
    authentication_classes: list = []

    @extend_schema(
        request=inline_serializer("DevLoginInput", {"code": serializers.CharField(required=False)}),
        responses={200: TokenPairOutputSerializer},
    )
    def post(self, request):
        if not services.dev_login_enabled():
            raise exceptions.NotFound()
        user = services.customer_dev_login()
        auth_event_record(
            kind=AuthEventKind.LOGIN,
            request=request,
            user=user,
            channel=AuthChannel.WECHAT,
            reason="dev_login",
        )
        return _token_response(user)


@login_ratelimit
class StaffTokenObtainApi(TokenObtainPairView):
    pass


class TokenRefreshApi(TokenRefreshView):
    serializer_class = TokenRefreshInputSerializer


class LogoutApi(APIView):
    permission_classes = [IsAuthenticated]

    class LogoutInputSerializer(serializers.Serializer):
        refresh = serializers.CharField()

    @extend_schema(request=LogoutInputSerializer, responses={204: None})
    def post(self, request):
        serializer = self.LogoutInputSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        try:
            services.refresh_token_revoke(
                token=serializer.validated_data["refresh"], user=request.user
            )
        except TokenError as exc:
            raise exceptions.ValidationError(
                {"refresh": [_("Token is invalid or expired.")]}
            ) from exc
        return Response(status=status.HTTP_204_NO_CONTENT)


class MeApi(APIView):
    @extend_schema(responses={200: UserOutputSerializer})
    def get(self, request):
        return Response(UserOutputSerializer(request.user).data)
