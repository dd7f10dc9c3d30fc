"""Hold to talk end to end: a customer on a phone-sized /chat/ records a voice message with
Chromium's fake microphone, which plays a WAV our own TTS engine speaks at test time; the real
server stores it, transcribes it (Whisper, in the server process: eager tasks) and the
transcript reaches the chat and the agent console without a reload.

The gestures are real input events: touches through the DevTools protocol on the phone, the
mouse on the desktop. Every test ends by asserting that no page logged a console error or a
CSP violation.
"""

import re
from pathlib import Path

import numpy as np
import pytest

from dialogs.models import Message, MessageKind
from dialogs.tests.browser_support import (
    CHROMIUM,
    CHROMIUM_ARGS,
    UvicornServer,
    customer_start,
    open_page,
    server_env,
    staff_login,
)
from tts.asr.encoding import wav_bytes
from tts.engine.audio import resample

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True),  # the server process must see committed rows
    pytest.mark.usefixtures("reseed_after_flush"),
]

SENTENCE = "你好，我要退款。"
KEY_WORD = "退款"  # the refund intent's keyword: also in the recogniser's domain prompt
FAKE_RATE = 48000  # Chromium's fake capture reads 16-bit PCM WAV; 48 kHz needs no resampling
TRANSCRIPT_TIMEOUT_MS = 180_000  # Whisper loads in the server on the first voice message


@pytest.fixture(scope="module")
def speech_wav(tmp_path_factory) -> Path:
    """SENTENCE spoken by our engine as the fake microphone's input: half a second of silence
    first (the recorder starts a moment after the press), then the sentence, then silence, so
    the ~3 s press records the sentence once (the fake device loops the file)."""
    from django.conf import settings

    from tts.installer import voice_dir

    if not (voice_dir(settings.TTS_MODEL_DIR) / "config.json").exists():
        pytest.fail("TTS model not installed: run `python manage.py tts_install_model`")
    from tts.adapters import get_engine

    speech = get_engine().synthesize(SENTENCE)
    samples = resample(speech.samples, speech.sample_rate, FAKE_RATE)
    silence = np.zeros(FAKE_RATE // 2, dtype=np.float32)
    tail = np.zeros(FAKE_RATE * 8, dtype=np.float32)
    audio = np.concatenate([silence, samples, tail])
    pcm = (np.clip(audio, -1.0, 1.0) * 32767).astype("<i2")
    path = tmp_path_factory.mktemp("fake-mic") / "speech.wav"
    path.write_bytes(wav_bytes(pcm, FAKE_RATE))
    return path


@pytest.fixture
def mic_chromium(monkeypatch, speech_wav):
    """Chromium whose microphone is allowed without a prompt and plays `speech_wav`."""
    from playwright.sync_api import sync_playwright

    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    args = [
        *CHROMIUM_ARGS,
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-audio-capture={speech_wav}",
    ]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def short_limit_server(transactional_db):
    """A server whose voice messages may last 4 s at most (ASR_MAX_SECONDS)."""
    server = UvicornServer(server_env(ASR_MAX_SECONDS="4"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


class Touch:
    """One finger on the phone page: real touch events (and so pointer events of type touch)."""

    def __init__(self, page):
        self.page = page
        self.cdp = page.context.new_cdp_session(page)

    def _send(self, kind: str, x: float | None = None, y: float | None = None) -> None:
        points = [] if x is None else [{"x": x, "y": y, "id": 1}]
        self.cdp.send("Input.dispatchTouchEvent", {"type": kind, "touchPoints": points})

    def centre(self, selector: str) -> tuple[float, float]:
        box = self.page.locator(selector).bounding_box()
        return box["x"] + box["width"] / 2, box["y"] + box["height"] / 2

    def down(self, selector: str) -> tuple[float, float]:
        x, y = self.centre(selector)
        self._send("touchStart", x, y)
        return x, y

    def move(self, x: float, y: float) -> None:
        self._send("touchMove", x, y)

    def up(self) -> None:
        self._send("touchEnd")


def message_posts(page) -> list[str]:
    """Every POST the page makes to a messages endpoint, recorded from now on."""
    posts: list[str] = []
    page.on(
        "request",
        lambda r: posts.append(r.url) if r.method == "POST" and "/messages/" in r.url else None,
    )
    return posts


def switch_to_voice(page) -> None:
    page.click("#mode")
    page.wait_for_selector("#hold", state="visible")
    assert page.inner_text("#hold").strip() == "按住 说话"
    assert not page.locator("#text").is_visible()


def test_hold_to_talk_sends_a_voice_message_transcribed_live_on_both_screens(
    uvicorn_server, mic_chromium, agent
):
    customer, customer_watch = open_page(mic_chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    switch_to_voice(customer)
    finger = Touch(customer)

    finger.down("#hold")
    customer.wait_for_selector("body[data-recording]", timeout=10000)
    assert customer.inner_text("#hold").strip() == "松开 发送"
    assert customer.is_visible("#rec[data-state=recording]")
    assert "手指上滑，取消发送" in customer.inner_text("#rec")
    customer.wait_for_timeout(3000)
    finger.up()
    customer.wait_for_selector("#rec", state="hidden")

    # At once a voice bubble (being sent), then the stored message with its length.
    bubble = customer.wait_for_selector(
        ".row.from-customer[data-message-id] .voice[data-state=ready]", timeout=30000
    )
    assert re.fullmatch(r"[34]″", bubble.inner_text().strip()), bubble.inner_text()
    row = customer.locator(".row.from-customer[data-message-id]")
    assert row.count() == 1 and row.locator(".bubble").count() == 0  # a voice bubble, no text
    message = Message.objects.get(conversation_id=conversation_id, kind=MessageKind.VOICE)
    assert message.voice_format == "webm"  # MediaRecorder's audio/webm;codecs=opus
    assert 2500 <= message.voice_duration_ms <= 4500, message.voice_duration_ms
    assert message.client_id and row.get_attribute("data-message-id") == str(message.pk)

    # The transcript arrives over the socket and shows under the bubble, no reload.
    customer.wait_for_selector(
        ".row.from-customer .transcript[data-state=ready]", timeout=TRANSCRIPT_TIMEOUT_MS
    )
    transcript = customer.inner_text(".row.from-customer .transcript")
    assert KEY_WORD in transcript, transcript
    message.refresh_from_db()
    assert KEY_WORD in message.text and message.intent.name == "refund"
    # The transcript took the typed-text path: the bot answers it (live, no reload).
    customer.wait_for_selector(".row.from-bot[data-message-id]", timeout=60000)
    assert customer.locator(".row.from-customer[data-message-id]").count() == 1  # stored once

    # Tapping the own voice bubble plays the recording; tapping again stops it.
    plays_before = len(customer_watch.plays())
    customer.click(".row.from-customer .voice")
    customer.wait_for_function(f"() => window.__plays.length > {plays_before}")
    assert "/media/voice/" in customer_watch.plays()[-1]
    customer.wait_for_selector(".row.from-customer .voice.playing")
    customer.click(".row.from-customer .voice")
    assert customer.locator(".voice.playing").count() == 0

    # The agent console shows the same voice message, playable, with its transcript.
    staff, staff_watch = open_page(mic_chromium, name="console", phone=False)
    staff_login(staff, uvicorn_server.url, agent, f"/console/c/{conversation_id}/")
    voice = staff.wait_for_selector(
        f'.msg.from-customer[data-message-id="{message.pk}"] .voice[data-state=ready]'
    )
    assert re.fullmatch(r"[34]″", voice.inner_text().strip()), voice.inner_text()
    line = staff.inner_text(f'.msg[data-message-id="{message.pk}"] .transcript')
    assert KEY_WORD in line, line
    assert not staff.is_visible(f'.msg[data-message-id="{message.pk}"] .bubble')  # not twice
    voice.click()
    staff.wait_for_function("() => window.__plays.some(src => src.includes('/media/voice/'))")
    staff.wait_for_selector(f'.msg[data-message-id="{message.pk}"] .voice.playing')
    customer_watch.assert_clean()
    staff_watch.assert_clean()


def test_a_tap_or_a_cancelled_press_sends_nothing(uvicorn_server, mic_chromium):
    customer, watch = open_page(mic_chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, uvicorn_server.url)
    posts = message_posts(customer)
    switch_to_voice(customer)
    finger = Touch(customer)

    # A tap: 说话时间太短, nothing sent.
    finger.down("#hold")
    customer.wait_for_selector("body[data-recording]", timeout=10000)
    customer.wait_for_timeout(300)
    finger.up()
    customer.wait_for_selector("#rec[data-state=short]")
    assert "说话时间太短" in customer.inner_text("#rec")
    customer.wait_for_selector("#rec", state="hidden", timeout=5000)

    # Held long enough, but the finger slides up: 松开手指，取消发送, and releasing cancels.
    x, y = finger.down("#hold")
    customer.wait_for_selector("body[data-recording]", timeout=10000)
    customer.wait_for_timeout(1500)
    finger.move(x, y - 150)
    customer.wait_for_selector("#rec[data-state=cancel]")
    assert "松开手指，取消发送" in customer.inner_text("#rec")
    finger.move(x, y)  # back over the button: it would send again
    customer.wait_for_selector("#rec[data-state=recording]")
    finger.move(x, y - 150)
    customer.wait_for_selector("#rec[data-state=cancel]")
    finger.up()
    customer.wait_for_selector("#rec", state="hidden")
    assert customer.get_attribute("body", "data-voice-cancelled") == "1"

    # The desktop mouse: a click is too short; pressing and leaving the button cancels.
    desk, desk_watch = open_page(mic_chromium, name="chat (desktop)", phone=False)
    customer_start(desk, uvicorn_server.url)
    desk_posts = message_posts(desk)
    switch_to_voice(desk)
    box = desk.locator("#hold").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    desk.mouse.move(cx, cy)
    desk.mouse.down()
    desk.wait_for_selector("body[data-recording]", timeout=10000)
    desk.mouse.up()
    desk.wait_for_selector("#rec[data-state=short]")
    desk.mouse.down()
    desk.wait_for_selector("body[data-recording]", timeout=10000)
    desk.wait_for_timeout(1300)
    desk.mouse.move(cx, box["y"] - 80)
    desk.wait_for_selector("#rec[data-state=cancel]")
    desk.mouse.up()
    desk.wait_for_selector("#rec", state="hidden")

    customer.wait_for_timeout(1000)  # anything sent would be on its way by now
    assert posts == [] and desk_posts == []
    assert not Message.objects.filter(conversation_id=conversation_id).exists()
    assert customer.locator(".row.from-customer").count() == 0
    watch.assert_clean()
    desk_watch.assert_clean()


BROKEN_MICROPHONES = {
    "denied": (
        """navigator.permissions.query = () => Promise.resolve({ state: "prompt" });
        navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException("Permission denied", "NotAllowedError"));""",
        "麦克风权限被拒绝",
    ),
    "no microphone": (
        """navigator.permissions.query = () => Promise.resolve({ state: "prompt" });
        navigator.mediaDevices.getUserMedia = () =>
          Promise.reject(new DOMException("Requested device not found", "NotFoundError"));""",
        "未检测到麦克风",
    ),
    "no MediaRecorder": ("delete window.MediaRecorder;", "当前浏览器不支持录音"),
}


def test_without_a_usable_microphone_the_page_says_why_and_keeps_the_keyboard(
    uvicorn_server, mic_chromium
):
    for case, (script, expected) in BROKEN_MICROPHONES.items():
        page, watch = open_page(mic_chromium, name=f"chat ({case})", phone=True)
        page.context.add_init_script(script)
        customer_start(page, uvicorn_server.url)
        page.click("#mode")
        page.wait_for_selector("body[data-mic-error]")
        assert expected in page.inner_text("#send-error"), (case, page.inner_text("#send-error"))
        assert page.is_visible("#text") and not page.is_visible("#hold"), case
        page.fill("#text", "那我打字吧")  # typing still works
        page.press("#text", "Enter")
        page.wait_for_selector(".row.from-customer[data-message-id] >> text=那我打字吧")
        watch.assert_clean()
        page.context.close()


def test_a_long_press_counts_down_and_is_sent_at_the_servers_limit(
    short_limit_server, mic_chromium
):
    customer, watch = open_page(mic_chromium, name="chat", phone=True)
    conversation_id = customer_start(customer, short_limit_server.url)
    switch_to_voice(customer)
    finger = Touch(customer)
    finger.down("#hold")
    customer.wait_for_selector("body[data-recording]", timeout=10000)
    # 4 s allowed: the countdown shows at once and the recording stops by itself.
    customer.wait_for_selector("#rec-left >> text=/还可以说 \\d 秒/", timeout=5000)
    customer.wait_for_selector("body:not([data-recording])", timeout=10000)
    customer.wait_for_timeout(1000)
    finger.up()  # too late: already sent, the release does nothing more
    customer.wait_for_selector(
        ".row.from-customer[data-message-id] .voice[data-state=ready]", timeout=30000
    )
    message = Message.objects.get(conversation_id=conversation_id, kind=MessageKind.VOICE)
    assert 3000 <= message.voice_duration_ms <= 4000, message.voice_duration_ms
    assert customer.locator(".row.from-customer").count() == 1
    watch.assert_clean()
