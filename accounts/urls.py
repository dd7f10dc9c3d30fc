from django.urls import path

from . import api

urlpatterns = [
    path("auth/wechat/", api.WeChatLoginApi.as_view(), name="auth-wechat"),
    path("auth/dev-login/", api.DevLoginApi.as_view(), name="auth-dev-login"),
    path("auth/token/", api.StaffTokenObtainApi.as_view(), name="auth-token"),
    path("auth/token/refresh/", api.TokenRefreshApi.as_view(), name="auth-token-refresh"),
    path("auth/logout/", api.LogoutApi.as_view(), name="auth-logout"),
    path("me/", api.MeApi.as_view(), name="me"),
]
