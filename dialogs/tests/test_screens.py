"""The two screens end to end: a customer on a phone-sized /chat/ and an agent on a desktop
/console/, two Chromium contexts against a real uvicorn process on the test database.

Every test ends by asserting that no page logged a console error or a CSP violation.
"""

import re

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from accounts.tests.factories import CustomerFactory
from dialogs.models import AudioStatus, Conversation, Message, SenderKind
from dialogs.services.messages import agent_reply_create, customer_message_create
from dialogs.tests.browser_support import customer_start, in_thread, open_page, send, staff_login

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the server process must see committed rows
    pytest.mark.usefixtures("reseed_after_flush"),
]

REFUND = "你好，请问退款多久到账？"
REFUND_ANSWER = "退款将在三到五个工作日内原路退回"
COMPLAINT = "你们的服务太差了，我要投诉！"
SORRY = "非常抱歉给您带来不便"


def test_only_live_replies_autoplay_one_clip_at_a_time_and_status_never_goes_back(
    uvicorn_server, chromium, agent
):
    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)

    # A canned answer is voiced in the request's on_commit (eager tasks): the audio_ready
    # event reaches the page before the POST response that still says `pending`.
    send(customer, REFUND)
    bot = customer.wait_for_selector(
        f".row.from-bot:has-text('{REFUND_ANSWER}') .voice[data-state=ready]", timeout=90000
    )
    customer.wait_for_function("() => window.__plays.length === 1", timeout=10000)
    customer.wait_for_timeout(1000)
    assert bot.get_attribute("data-state") == "ready"  # not put back to pending
    assert re.fullmatch(r"\d+″", bot.inner_text().strip()), bot.inner_text()  # a duration, not 0:00

    # Reopening the chat: the voiced history is shown, nothing plays by itself.
    customer.reload()
    customer.click("#login")
    customer.wait_for_selector("#status[data-state=live]", timeout=30000)
    customer.wait_for_selector(".row.from-bot .voice[data-state=ready]")
    customer.wait_for_timeout(1500)
    assert customer_watch.plays() == []

    # The agent answers with a canned phrase from the console: the customer hears exactly
    # that clip, once, and sees it ready without a reload.
    staff, staff_watch = open_page(chromium, name="console", phone=False)
    staff_login(staff, uvicorn_server.url, agent, f"/console/c/{conversation_id}/")
    staff.wait_for_selector(f".msg.from-customer >> text={REFUND}")
    staff.fill("#reply-text", "/sor")
    staff.wait_for_selector('#phrase-list li[data-short-code="sorry"]')
    staff.press("#reply-text", "Enter")  # picks the phrase
    assert staff.input_value("#reply-text").startswith(SORRY)
    staff.press("#reply-text", "Enter")  # sends it
    staff.wait_for_selector(
        f".msg.from-agent:has-text('{SORRY}') .voice[data-state=ready]", timeout=90000
    )

    row = customer.wait_for_selector(
        f".row.from-agent:has-text('{SORRY}') .voice[data-state=ready]", timeout=30000
    )
    customer.wait_for_function("() => window.__plays.length === 1", timeout=10000)
    customer.wait_for_timeout(1500)
    reply = Message.objects.get(conversation_id=conversation_id, sender_kind=SenderKind.AGENT)
    assert reply.audio_status == AudioStatus.READY
    plays = customer_watch.plays()
    assert len(plays) == 1 and "/media/audio/" in plays[0]
    assert row.get_attribute("data-state") == "ready"
    # The agent's username never reaches the customer.
    assert agent.username not in customer.inner_text("#messages")

    # Tapping another clip stops the one playing: one `playing` bubble at most.
    customer.click(f".row.from-bot:has-text('{REFUND_ANSWER}') .voice")
    assert customer.locator(".voice.playing").count() <= 1
    customer_watch.assert_clean()
    staff_watch.assert_clean()


def test_both_screens_reconnect_after_a_server_restart_and_show_what_was_sent_meanwhile(
    uvicorn_server, chromium, agent
):
    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    send(customer, COMPLAINT)
    staff, staff_watch = open_page(chromium, name="console", phone=False)
    staff_login(staff, uvicorn_server.url, agent, f"/console/c/{conversation_id}/")
    staff.wait_for_selector(f".msg.from-customer >> text={COMPLAINT}")
    staff.wait_for_selector("body[data-chat-live=websocket]", timeout=15000)

    uvicorn_server.stop()
    customer.wait_for_selector("#status:not([data-state=live])", timeout=15000)
    staff.wait_for_selector("body[data-chat-live=reconnecting]", timeout=15000)
    # Written while no server is up (another process: a worker, a second web node).
    conversation = Conversation.objects.get(pk=conversation_id)
    in_thread(
        customer_message_create,
        conversation=conversation,
        author=conversation.customer,
        text="还在吗？",
    )
    in_thread(
        agent_reply_create,
        conversation=conversation,
        agent=agent,
        text="在的，正在为您核实。",
    )
    uvicorn_server.start()

    customer.wait_for_selector("#status[data-state=live]", timeout=45000)
    customer.wait_for_selector(".row.from-customer >> text=还在吗？", timeout=15000)
    customer.wait_for_selector(".row.from-agent >> text=在的，正在为您核实。", timeout=15000)
    staff.wait_for_selector("body[data-chat-live=websocket]", timeout=45000)
    staff.wait_for_selector(".msg.from-customer >> text=还在吗？", timeout=15000)
    staff.wait_for_selector(".msg.from-agent >> text=在的，正在为您核实。", timeout=15000)
    # Each message once, no duplicate rows from the catch-up.
    assert customer.locator(".row >> text=还在吗？").count() == 1
    assert staff.locator(".msg >> text=还在吗？").count() == 1
    # The refused reconnect attempts are the browser's own network log lines, nothing else.
    allow = ("WebSocket connection", "ERR_CONNECTION_REFUSED", "Failed to load resource")
    customer_watch.assert_clean(allow=allow)
    staff_watch.assert_clean(allow=allow)


def test_a_failed_send_is_retried_with_the_same_client_id_and_stored_once(uvicorn_server, chromium):
    customer, watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    # The first POST is dropped on the way out, as on a train going into a tunnel.
    dropped = []

    def drop_first(route):
        if route.request.method == "POST" and not dropped:
            dropped.append(route.request.post_data_json["client_id"])
            route.abort()
        else:
            route.continue_()

    customer.route(re.compile(r".*/messages/$"), drop_first)
    customer.fill("#text", "请问发货了吗")
    customer.press("#text", "Enter")
    failed = customer.wait_for_selector(".row[data-local] .send-state[data-state=failed]")
    failed.click()
    customer.wait_for_selector(".row.from-customer[data-message-id] >> text=请问发货了吗")
    message = Message.objects.get(conversation_id=conversation_id, text="请问发货了吗")
    assert message.client_id == dropped[0]
    assert customer.locator(".row[data-local]").count() == 0
    watch.assert_clean(allow=("Failed to load resource",))


def test_the_console_queue_claims_and_resolves(uvicorn_server, chromium, agent, customer):
    conversation = Conversation.objects.create(customer=customer)
    in_thread(customer_message_create, conversation=conversation, author=customer, text=COMPLAINT)
    staff, watch = open_page(chromium, name="console", phone=False)
    staff_login(staff, uvicorn_server.url, agent)
    staff.click(".tabs [data-view=all]")
    item = staff.wait_for_selector(f'#queue-list li[data-conversation="{conversation.pk}"]')
    item.click()
    staff.wait_for_selector(f".msg.from-customer >> text={COMPLAINT}")
    assert staff.input_value("#emotion") == "calm"  # the policy's suggestion for a complaint
    assert staff.inner_text("#suggestion-label") != "—"

    # With the workflow installed the complaint is handed off and auto-assigned to the only
    # online agent (this console's socket made them online); without it the agent claims it.
    claim = staff.locator("#claim")
    if claim.is_visible():
        try:
            claim.click(timeout=5000)
        except PlaywrightTimeout:
            pass  # assigned meanwhile: the button went away
    staff.wait_for_selector("#claim", state="hidden", timeout=20000)
    conversation.refresh_from_db()
    assert conversation.assigned_agent_id == agent.pk
    staff.click(".tabs [data-view=mine]")
    staff.wait_for_selector(f'#queue-list li[data-conversation="{conversation.pk}"]')

    staff.click("#resolve")
    staff.wait_for_selector("body[data-conversation-status=resolved]")
    conversation.refresh_from_db()
    assert conversation.status == "resolved"
    watch.assert_clean()


def test_a_new_conversation_appears_in_the_queue_without_a_reload(
    uvicorn_server, chromium, agent, customer
):
    first = Conversation.objects.create(customer=customer)
    in_thread(customer_message_create, conversation=first, author=customer, text="第一个会话")
    staff, watch = open_page(chromium, name="console", phone=False)
    staff_login(staff, uvicorn_server.url, agent)
    staff.click(".tabs [data-view=all]")
    staff.wait_for_selector(f'#queue-list li[data-conversation="{first.pk}"]')

    other_customer = CustomerFactory()
    second = Conversation.objects.create(customer=other_customer)
    in_thread(customer_message_create, conversation=second, author=other_customer, text="有人吗")
    # Without a reload: the queue refreshes live (console socket, or polling without it).
    staff.wait_for_selector(f'#queue-list li[data-conversation="{second.pk}"]', timeout=20000)
    watch.assert_clean()
