"""The web chat page (/chat/): the mini-program's flow in a browser.

End to end in Chromium against uvicorn (the chat needs the WebSocket): the customer signs in
with the dev login and complains, an agent answers from the console in a second browser
context, and the customer's page shows the reply live with a playable audio element.
"""

import re

import pytest
from django.urls import reverse

from dialogs.tests import test_browser

# Reused from the console's browser test: uvicorn on the test database and a Chromium page.
# (Seed rows are put back before every database test by the root conftest.)
asgi_server = test_browser.asgi_server
browser_page = test_browser.browser_page

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


@pytest.mark.browser
@pytest.mark.slow
@pytest.mark.django_db(transaction=True)  # the server process must see committed rows
def test_a_customer_complains_and_hears_the_agents_answer(
    dev_login_server_env, asgi_server, browser_page, agent
):
    customer_page = browser_page
    customer_page.goto(f"{asgi_server}/chat/")
    customer_page.click("#login")
    customer_page.wait_for_selector("#status[data-state=live]", timeout=15000)
    conversation_id = customer_page.get_attribute("body", "data-conversation-id")
    assert conversation_id and conversation_id.isdigit()

    customer_page.fill("#text", COMPLAINT)
    customer_page.press("#text", "Enter")
    customer_page.wait_for_selector(f".msg.from-customer >> text={COMPLAINT}")
    assert customer_page.input_value("#text") == ""

    # The agent: a separate browser context (own cookies), the console behind the admin login.
    agent_page = customer_page.context.browser.new_context(locale="zh-CN").new_page()
    agent_page.goto(f"{asgi_server}/console/c/{conversation_id}/")
    agent_page.fill("#id_username", agent.username)
    agent_page.fill("#id_password", "pw-123456!")
    agent_page.click("input[type=submit]")
    agent_page.wait_for_selector("body[data-live=websocket]", timeout=15000)
    assert agent_page.input_value("#emotion") == "calm"  # complaint -> calm, by the policy
    agent_page.fill("#reply-text", ANSWER)
    agent_page.click("#send")

    # The customer's page gets the reply live, then its audio once the clip is ready.
    reply = customer_page.wait_for_selector(f".msg.from-agent >> text={ANSWER}", timeout=15000)
    assert reply is not None
    audio = customer_page.wait_for_selector(".msg.from-agent audio", timeout=60000)
    src = audio.get_attribute("src")
    assert re.match(r"^/media/audio/[^/]+", src)
    assert audio.get_attribute("controls") is not None
    clip = customer_page.request.get(f"{asgi_server}{src}")
    assert clip.status == 200
    assert clip.headers["content-type"] == "audio/mpeg"
    body = clip.body()
    # An MP3: an ID3 tag or an MPEG frame sync word at the start.
    assert len(body) > 1000 and (body[:3] == b"ID3" or (body[0] == 0xFF and body[1] & 0xE0 == 0xE0))
    # The browser can decode it, too.
    duration = customer_page.evaluate(
        """async (src) => {
            const a = new Audio(src);
            await new Promise((ok, fail) => { a.onloadedmetadata = ok; a.onerror = fail; });
            return a.duration;
        }""",
        src,
    )
    assert duration > 0.5
