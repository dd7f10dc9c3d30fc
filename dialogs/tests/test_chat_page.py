"""The web chat page (/chat/): the mini-program's flow in a browser.

The page as served; the screens in Chromium are in test_screens.py.
"""

import pytest
from django.urls import reverse

COMPLAINT = "你们的服务太差了，我要投诉！"
ANSWER = "非常抱歉给您带来不便，我们马上为您处理。"


@pytest.fixture
def dev_login_server_env(monkeypatch):
    """The uvicorn fixture inherits this process's environment: switch the dev login on there
    (this process has loaded its settings already and is unaffected)."""
    monkeypatch.setenv("DEBUG", "1")
    monkeypatch.setenv("WECHAT_DEV_LOGIN", "1")


@pytest.mark.django_db
def test_the_page_says_so_when_dev_login_is_disabled(client, settings):
    settings.DEBUG = False
    settings.WECHAT_DEV_LOGIN = True
    page = client.get(reverse("chat")).content.decode()
    assert 'id="dev-login-disabled"' in page
    assert "此服务器未开启开发者登录" in page  # Chinese by default
    assert 'id="login"' not in page
    assert "onclick" not in page and "onsubmit" not in page  # no inline handlers (CSP)


@pytest.mark.django_db
def test_the_page_offers_the_dev_login_when_enabled(client, settings):
    settings.DEBUG = True
    settings.WECHAT_DEV_LOGIN = True
    page = client.get(reverse("chat")).content.decode()
    assert 'id="login"' in page
    assert "以演示客户身份登录" in page
    assert 'id="dev-login-disabled"' not in page
    assert '"devLoginUrl": "/api/auth/dev-login/"' in page
    # Strings the script fills in are translated with their placeholders intact.
    assert "{name} 正在为您服务" in page and "正在排队 · 前面还有 {n} 位" in page


@pytest.mark.django_db
def test_the_page_offers_hold_to_talk_within_the_servers_limit(client, settings):
    settings.ASR_MAX_SECONDS = 30.0
    page = client.get(reverse("chat")).content.decode()
    assert '"voiceInput": true' in page
    assert '"voiceMaxSeconds": 30.0' in page and '"voiceMinMs": 1000' in page
    for text in (
        "按住 说话",
        "松开 发送",
        "手指上滑，取消发送",
        "松开手指，取消发送",
        "说话时间太短",
    ):
        assert text in page, text
    assert "还可以说 {n} 秒" in page and "未识别到文字" in page
    assert "麦克风权限被拒绝" in page and "当前浏览器不支持录音" in page
