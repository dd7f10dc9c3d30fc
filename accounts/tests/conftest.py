import pytest

from .wechat_server import FakeWeChatServer


@pytest.fixture
def wechat_server(settings):
    with FakeWeChatServer() as server:
        settings.WECHAT_API_BASE = server.base_url
        settings.WECHAT_APPID = "wx-test-appid"
        settings.WECHAT_SECRET = "wx-test-secret"
        settings.WECHAT_TIMEOUT_SECONDS = 0.5
        yield server
