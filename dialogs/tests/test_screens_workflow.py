"""The workflow on the two screens end to end (#9): handoff with auto-assignment, the
out-of-hours reply, a transfer between two agents' consoles, and resolve -> CSAT. A customer on
a phone-sized /chat/ and agents on desktop /console/ pages, each in its own Chromium context,
against a real uvicorn process on the test database.

Every test ends by asserting that no page logged a console error or a CSP violation.
"""

import datetime
import json
import re
import urllib.error
import urllib.request

import pytest
from django.utils import timezone

from accounts.models import Role
from accounts.services import staff_user_set_role
from accounts.tests.factories import AgentFactory
from dialogs.models import (
    AgentProfile,
    AudioStatus,
    BusinessHours,
    Conversation,
    ConversationAction,
    ConversationEvent,
    ConversationStatus,
    CsatResponse,
    Holiday,
    Message,
    SenderKind,
)
from dialogs.services.messages import customer_message_create
from dialogs.services.workflow import conversation_assign
from dialogs.tests.browser_support import (
    customer_start,
    in_thread,
    open_page,
    send,
    staff_login,
    wait_until,
)

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the server process must see committed rows
    pytest.mark.usefixtures("reseed_after_flush"),
]

COMPLAINT = "你们的服务太差了，我要投诉！"
HANDOFF_ACK = "已为您转接人工客服，请稍候。"  # canned phrase /handoff (0009_seed_workflow)
OFF_HOURS = "现在是非工作时间"  # canned phrase /offhours
SORRY = "非常抱歉给您带来不便"  # canned phrase /sorry
VOICE_TIMEOUT = 90000  # ms: a clip is synthesised on CPU in the request's on_commit


def console_online(page, server_url: str, user, path: str = "/console/") -> None:
    """Log `user` into the console and wait until the server counts them online (the console
    socket's first heartbeat), so auto-assignment can pick them."""
    staff_login(page, server_url, user, path)
    page.wait_for_selector("#conn[data-state=live]", timeout=30000)
    wait_until(
        lambda: AgentProfile.objects.filter(user=user, last_seen_at__isnull=False).exists(),
        what=f"{user.username}'s console heartbeat",
    )


def nicknamed(user, name: str):
    AgentProfile.objects.update_or_create(user=user, defaults={"display_name": name})
    return user


def rings(page) -> int:
    """How often the console rang (a sound, and a notification when enabled)."""
    return int(page.get_attribute("body", "data-rings") or 0)


def play_count(page) -> int:
    return page.evaluate("window.__plays.length")


def test_a_complaint_is_acknowledged_aloud_auto_assigned_and_answered_with_a_picked_phrase(
    uvicorn_server, chromium, agent
):
    nicknamed(agent, "客服小李")
    staff, staff_watch = open_page(chromium, name="console", phone=False)
    console_online(staff, uvicorn_server.url, agent)

    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    send(customer, COMPLAINT)

    # The handoff acknowledgement arrives as a voiced bot reply and plays by itself, once.
    customer.wait_for_selector(
        f".row.from-bot:has-text('{HANDOFF_ACK}') .voice[data-state=ready]",
        timeout=VOICE_TIMEOUT,
    )
    customer.wait_for_function("() => window.__plays.length === 1", timeout=10000)
    ack = Message.objects.get(conversation_id=conversation_id, sender_kind=SenderKind.BOT)
    assert ack.text == HANDOFF_ACK and ack.audio_status == AudioStatus.READY
    assert customer.get_attribute("body", "data-last-played") == str(ack.pk)

    # The only online agent gets it, and the customer's header says who serves them by the
    # agent's nickname, live.
    serving = customer.wait_for_selector("#serving[data-state=agent]", timeout=20000)
    assert serving.inner_text() == "客服小李 正在为您服务"
    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.assigned_agent_id == agent.pk
    assert conversation.status == ConversationStatus.OPEN
    actions = list(
        ConversationEvent.objects.filter(conversation=conversation).values_list("action", flat=True)
    )
    assert actions == [ConversationAction.HANDOFF, ConversationAction.AUTO_ASSIGNED]

    # It shows up under 我的 in the console without a reload; the agent opens it.
    item = staff.wait_for_selector(
        f'#queue-list li[data-conversation="{conversation_id}"]', timeout=20000
    )
    item.click()
    staff.wait_for_selector(f".msg.from-customer >> text={COMPLAINT}")
    assert staff.locator("#claim").is_hidden()  # already theirs

    # The answer is picked in the phrase picker (the button, a search, a click), then sent.
    # The agent clicks before the search they typed has answered (a slow network): that late
    # answer must not open the picker again.
    held = []
    search = re.compile(r"phrases/\?q=%E6%8A%B1%E6%AD%89")  # q=抱歉
    staff.route(search, lambda route: held.append(route))
    staff.click("#phrases-open")
    staff.wait_for_selector('#phrase-list li[data-short-code="sorry"]')
    staff.fill("#phrase-search", "抱歉")
    wait_until(lambda: held or staff.wait_for_timeout(50), what="the phrase search request")
    staff.click('#phrase-list li[data-short-code="sorry"]')
    with staff.expect_response(lambda response: bool(search.search(response.url))):
        held[0].continue_()
    staff.wait_for_timeout(300)  # the page handles the late answer
    assert staff.locator("#phrase-panel").is_hidden()
    assert staff.input_value("#reply-text").startswith(SORRY)
    assert staff.inner_text("#phrase-chip") == "/sorry"
    staff.click("#send")
    staff.wait_for_selector(
        f".msg.from-agent:has-text('{SORRY}') .voice[data-state=ready]", timeout=VOICE_TIMEOUT
    )

    # The customer hears that reply: exactly one more clip, the reply's, ready without a reload.
    row = customer.wait_for_selector(
        f".row.from-agent:has-text('{SORRY}') .voice[data-state=ready]", timeout=30000
    )
    customer.wait_for_function("() => window.__plays.length === 2", timeout=10000)
    customer.wait_for_timeout(1500)  # a late event must not play anything again
    reply = Message.objects.get(conversation_id=conversation_id, sender_kind=SenderKind.AGENT)
    assert reply.canned_phrase.short_code == "sorry"
    assert reply.author_id == agent.pk
    assert reply.audio_status == AudioStatus.READY
    assert play_count(customer) == 2
    assert customer.get_attribute("body", "data-last-played") == str(reply.pk)
    assert "/media/audio/" in customer_watch.plays()[1]
    assert row.get_attribute("data-state") == "ready"
    # The customer sees the nickname on the reply, never the username.
    name = customer.inner_text(f'.row[data-message-id="{reply.pk}"] .name')
    assert name == "客服小李"
    assert agent.username not in customer.inner_text("#app")
    customer_watch.assert_clean()
    staff_watch.assert_clean()


def _closed_now() -> None:
    """A schedule under which now is closed: open all day every day, but today (and the days
    either side, should the test cross midnight) are public holidays."""
    BusinessHours.objects.bulk_create(
        BusinessHours(weekday=day, opens_at=datetime.time(0), closes_at=datetime.time(23, 59))
        for day in range(7)
    )
    today = timezone.localdate()
    for offset in (-1, 0, 1):
        Holiday.objects.create(date=today + datetime.timedelta(days=offset), name="测试假日")


def test_out_of_hours_the_customer_is_told_once_aloud_and_the_conversation_waits(
    uvicorn_server, chromium, agent
):
    _closed_now()  # before the server reads (and caches) its schedule
    # An agent is online: even so, nothing is auto-assigned outside business hours.
    staff, staff_watch = open_page(chromium, name="console", phone=False)
    console_online(staff, uvicorn_server.url, agent)

    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    send(customer, COMPLAINT)
    customer.wait_for_selector(
        f".row.from-bot:has-text('{OFF_HOURS}') .voice[data-state=ready]", timeout=VOICE_TIMEOUT
    )
    customer.wait_for_function("() => window.__plays.length === 1", timeout=10000)
    customer.wait_for_selector("#serving[data-state=waiting]", timeout=10000)

    # A second message while waiting: no second notice, no acknowledgement either.
    send(customer, "请问什么时候能回复我？")
    customer.wait_for_timeout(3000)
    assert customer.locator(".row.from-bot").count() == 1
    assert play_count(customer) == 1
    bot = list(Message.objects.filter(conversation_id=conversation_id, sender_kind=SenderKind.BOT))
    assert len(bot) == 1 and OFF_HOURS in bot[0].text
    assert bot[0].canned_phrase.short_code == "offhours"
    assert bot[0].audio_status == AudioStatus.READY
    assert customer.get_attribute("body", "data-last-played") == str(bot[0].pk)

    conversation = Conversation.objects.get(pk=conversation_id)
    assert conversation.status == ConversationStatus.WAITING
    assert conversation.assigned_agent_id is None
    assert conversation.out_of_hours_notified_at is not None
    actions = list(
        ConversationEvent.objects.filter(conversation=conversation).values_list("action", flat=True)
    )
    assert actions == [ConversationAction.HANDOFF, ConversationAction.OUT_OF_HOURS]
    # The console lists it as waiting, unassigned.
    staff.click(".tabs [data-view=unassigned]")
    item = staff.wait_for_selector(
        f'#queue-list li[data-conversation="{conversation_id}"][data-status=waiting]',
        timeout=20000,
    )
    assert item is not None
    customer_watch.assert_clean()
    staff_watch.assert_clean()


def test_an_agent_transfers_a_conversation_to_another_agent_in_the_console(
    uvicorn_server, chromium, agent, customer
):
    first = nicknamed(agent, "客服小李")
    second = nicknamed(
        staff_user_set_role(user=AgentFactory(first_name="小王"), role=Role.AGENT), "客服小王"
    )
    conversation = Conversation.objects.create(customer=customer)
    in_thread(customer_message_create, conversation=conversation, author=customer, text=COMPLAINT)
    in_thread(conversation_assign, conversation=conversation, agent=first, actor=first)

    staff_a, watch_a = open_page(chromium, name="console A", phone=False)
    console_online(staff_a, uvicorn_server.url, first, f"/console/c/{conversation.pk}/")
    staff_b, watch_b = open_page(chromium, name="console B", phone=False)
    console_online(staff_b, uvicorn_server.url, second)
    mine_a = f'#queue-list li[data-conversation="{conversation.pk}"]'
    staff_a.wait_for_selector(mine_a)
    staff_b.wait_for_selector("#queue-list .empty")  # nothing of B's yet
    rings_a, rings_b = rings(staff_a), rings(staff_b)

    staff_a.click("#transfer")
    staff_a.wait_for_selector("#transfer-dialog[open]")
    names = staff_a.locator("#agent-list li").all_inner_texts()
    assert any("客服小王" in n for n in names), names
    assert not any("客服小李" in n for n in names), names  # not to oneself
    staff_a.check(f'#agent-list input[value="{second.pk}"]')
    staff_a.click("#transfer-confirm")

    # A's 我的 no longer lists it; B's does, live, with the bell.
    staff_a.wait_for_selector(mine_a, state="detached", timeout=20000)
    staff_a.wait_for_selector("#chat-agent:has-text('客服小王')")
    staff_b.wait_for_selector(mine_a, timeout=20000)
    staff_b.wait_for_function(f"() => Number(document.body.dataset.rings || 0) > {rings_b}")
    assert rings(staff_b) == rings_b + 1  # once, though two events announce it
    assert rings(staff_a) == rings_a  # no bell for one's own move
    staff_b.click(mine_a)
    staff_b.wait_for_selector(f".msg.from-customer >> text={COMPLAINT}")
    assert staff_b.locator("#claim").is_hidden()

    conversation.refresh_from_db()
    assert conversation.assigned_agent_id == second.pk
    event = ConversationEvent.objects.filter(conversation=conversation).latest("pk")
    assert event.action == ConversationAction.TRANSFERRED
    assert (event.actor_id, event.from_agent_id, event.to_agent_id) == (
        first.pk,
        first.pk,
        second.pk,
    )

    # A reload does not bring it back to A's list.
    staff_a.goto(f"{uvicorn_server.url}/console/")
    staff_a.wait_for_selector("#conn[data-state=live]", timeout=30000)
    staff_a.wait_for_selector("#queue-list .empty")
    assert staff_a.locator(mine_a).count() == 0
    watch_a.assert_clean()
    watch_b.assert_clean()


def _post_json(url: str, body: dict, token: str | None = None) -> tuple[int, dict]:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_resolving_asks_the_customer_for_a_rating_which_is_stored_once(
    uvicorn_server, chromium, agent
):
    nicknamed(agent, "客服小李")
    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    send(customer, "我想咨询一下会员的问题")
    assert customer.locator("#csat").is_hidden()

    staff, staff_watch = open_page(chromium, name="console", phone=False)
    console_online(staff, uvicorn_server.url, agent, f"/console/c/{conversation_id}/")
    staff.wait_for_selector(".msg.from-customer >> text=我想咨询一下会员的问题")
    if staff.locator("#claim").is_visible():
        staff.click("#claim")
    staff.wait_for_selector("#claim", state="hidden", timeout=20000)
    customer.wait_for_selector("#serving[data-state=agent]", timeout=20000)
    staff.click("#resolve")
    staff.wait_for_selector("body[data-conversation-status=resolved]")

    # The prompt appears on the customer's page without a reload.
    customer.wait_for_selector("#csat:not([hidden])", timeout=20000)
    customer.wait_for_selector("body[data-conversation-status=resolved]")
    assert customer.is_disabled("#csat-submit")  # no stars yet
    customer.click('#csat [data-rating="4"]')
    assert customer.locator("#csat .stars button.on").count() == 4
    assert customer.get_attribute('#csat [data-rating="4"]', "aria-checked") == "true"
    customer.fill("#csat-comment", "处理得很快")
    customer.dblclick("#csat-submit")  # an impatient double tap sends one rating
    customer.wait_for_selector("body[data-csat='4']", timeout=15000)
    customer.wait_for_selector("#csat", state="hidden")
    customer.wait_for_selector(".row.from-system >> text=感谢您的评价！")

    csat = wait_until(
        lambda: CsatResponse.objects.filter(conversation_id=conversation_id).first(),
        what="the stored rating",
    )
    assert (csat.rating, csat.comment, csat.agent_id) == (4, "处理得很快", agent.pk)
    assert ConversationEvent.objects.filter(
        conversation_id=conversation_id, action=ConversationAction.CSAT, note="4"
    ).exists()

    # The conversation's later updates do not bring the prompt back ...
    customer.wait_for_timeout(1500)
    assert customer.locator("#csat").is_hidden()
    assert customer.locator(".row.from-system >> text=感谢您的评价！").count() == 1
    # ... and the API refuses a second rating (the demo customer's own token).
    status, login = _post_json(f"{uvicorn_server.url}/api/auth/dev-login/", {"code": "web-chat"})
    assert status == 200
    status, body = _post_json(
        f"{uvicorn_server.url}/api/conversations/{conversation_id}/csat/",
        {"rating": 1},
        login["access"],
    )
    assert status == 409 and body["error"]["code"] == "already_rated", body
    assert CsatResponse.objects.get(conversation_id=conversation_id).rating == 4
    customer_watch.assert_clean()
    staff_watch.assert_clean()


def test_a_late_answer_does_not_undo_an_assignment_pushed_meanwhile(
    uvicorn_server, chromium, agent
):
    """转人工's answer carries the conversation as it was when the customer asked (waiting);
    when the assignment is pushed over the socket before that answer arrives (auto-assignment
    runs in the same request), the header must keep showing the agent, not go back to the queue.
    """
    nicknamed(agent, "客服小李")
    customer, customer_watch = open_page(chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    send(customer, "你好，请问退款多久到账？")  # the bot answers it: no handoff yet
    customer.wait_for_selector("#handoff:not([disabled])")
    assert customer.get_attribute("#serving", "data-state") != "agent"

    held = []

    def hold_the_answer(route):
        held.append((route, route.fetch()))  # done on the server now; answered when we say so

    handoff = f"**/api/conversations/{conversation_id}/handoff/"
    customer.route(handoff, hold_the_answer)
    customer.click("#handoff")
    for _ in range(150):
        if held:
            break
        customer.wait_for_timeout(100)
    assert held, "the handoff request never went out"
    assert Conversation.objects.get(pk=conversation_id).status == ConversationStatus.WAITING

    conversation = Conversation.objects.get(pk=conversation_id)
    in_thread(conversation_assign, conversation=conversation, agent=agent, actor=agent)
    customer.wait_for_selector("#serving[data-state=agent] >> text=客服小李", timeout=20000)

    route, answer = held[0]
    route.fulfill(response=answer)
    customer.wait_for_selector(f".row >> text={HANDOFF_ACK}", timeout=20000)
    customer.wait_for_timeout(1000)
    assert customer.get_attribute("#serving", "data-state") == "agent"
    assert "客服小李" in customer.text_content("#serving")
    customer.unroute(handoff)
    customer_watch.assert_clean()
