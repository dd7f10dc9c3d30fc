"""Intent classification and the emotion policy, against the seeded rules."""

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError

from dialogs.models import EmotionRule, Intent
from dialogs.selectors.policy import emotion_for_intent, emotion_suggestion, intent_classify
from dialogs.services.messages import customer_message_create

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("我要投诉你们的快递，太差了", "complaint"),
        ("请问运费是多少", "inquiry"),
        ("我想申请退款", "refund"),
        ("紧急！订单地址写错了，马上帮我改", "urgent"),
        ("谢谢，服务很好", "praise"),
        ("您好", "greeting"),
        ("你好，我要投诉", "complaint"),  # the complaint outranks the greeting
        ("今天天气晴", None),
    ],
)
def test_it_classifies_by_the_highest_priority_match(text, expected):
    intent = intent_classify(text=text)
    assert (intent.name if intent else None) == expected


def test_it_ignores_inactive_intents():
    Intent.objects.filter(name="complaint").update(is_active=False)
    assert intent_classify(text="我要投诉") is None


def test_it_matches_regex_patterns_and_priority_decides():
    Intent.objects.create(name="order_number", label="订单号", patterns=r"\bNO\d{6}\b", priority=95)
    assert intent_classify(text="请问 NO123456 到哪了").name == "order_number"
    Intent.objects.filter(name="order_number").update(priority=5)
    assert intent_classify(text="请问 NO123456 到哪了").name == "inquiry"


def test_it_rejects_an_invalid_regex():
    intent = Intent(name="broken", label="坏", patterns="([unclosed", priority=10)
    with pytest.raises(ValidationError, match="正则表达式"):  # zh-hans is the default language
        intent.full_clean()


def test_the_database_enforces_priority_ranges():
    with pytest.raises(IntegrityError):
        Intent.objects.create(name="too_high", label="高", keywords="x", priority=101)


def test_policy_maps_seeded_intents_to_presets():
    for intent_name, preset_name in [
        ("complaint", "calm"),
        ("inquiry", "serious"),
        ("praise", "happy"),
        ("greeting", "warm"),
    ]:
        assert emotion_for_intent(intent=Intent.objects.get(name=intent_name)).name == preset_name
    assert emotion_for_intent(intent=None).name == "neutral"


def test_policy_prefers_the_higher_priority_rule_and_falls_back(presets):
    complaint = Intent.objects.get(name="complaint")
    EmotionRule.objects.create(intent=complaint, preset=presets["serious"], priority=90)
    assert emotion_for_intent(intent=complaint).name == "serious"
    EmotionRule.objects.filter(intent=complaint).update(is_active=False)
    assert emotion_for_intent(intent=complaint).name == "neutral"


def test_suggestion_follows_the_latest_customer_message(conversation, customer):
    assert emotion_suggestion(conversation=conversation).name == "neutral"
    customer_message_create(conversation=conversation, author=customer, text="我很生气，太差了")
    assert emotion_suggestion(conversation=conversation).name == "calm"
    customer_message_create(conversation=conversation, author=customer, text="好吧，谢谢")
    assert emotion_suggestion(conversation=conversation).name == "happy"


# --- issue 13, item 9: a supervisor's pattern cannot hang a worker ----------------------------


def _classify_within(text: str, seconds: float):
    import threading

    result = {}
    worker = threading.Thread(target=lambda: result.update(intent=intent_classify(text=text)))
    worker.daemon = True  # a backtracking engine would never finish: do not wait for it
    worker.start()
    worker.join(seconds)
    assert not worker.is_alive(), f"classification still running after {seconds}s"
    return result["intent"]


@pytest.mark.parametrize(
    "pattern", [r"^(a+)+$", r"^(a|a)*$", r"^(\w+\s?)*$", r"(x+x+)+y", r"^([a-z]+)*[0-9]$"]
)
def test_a_catastrophic_pattern_cannot_hang_classification(pattern):
    Intent.objects.create(name="evil", label="恶意", patterns=pattern, priority=100)
    # With Python's re: 2^40 paths for 40 characters. The bound is a hang guard, not a timing.
    hit = _classify_within("a" * 40 + "!", 10)
    assert hit is None or hit.name != "evil"


def test_patterns_still_match_case_insensitively_with_re2():
    Intent.objects.create(
        name="order", label="订单", patterns=r"订单号\s*\d{4,}" + "\n" + "REFUND", priority=99
    )

    assert intent_classify(text="我的订单号 123456").name == "order"
    assert intent_classify(text="please refund me").name == "order"


@pytest.mark.parametrize(
    "pattern",
    [r"(a)\1", r"(?=a)b", r"(?<!x)y", r"((a{100}){100}){100}", "x" * 301, r"(unclosed"],
)
def test_patterns_re2_cannot_run_in_linear_time_are_refused_at_save(pattern):
    intent = Intent(name="bad", label="坏", patterns=pattern)

    with pytest.raises(ValidationError) as excinfo:
        intent.full_clean()
    assert "patterns" in excinfo.value.message_dict


def test_the_admin_form_shows_why_a_pattern_is_refused(client, supervisor):
    from django.urls import reverse

    client.force_login(supervisor)
    response = client.post(
        reverse("admin:dialogs_intent_add"),
        {"name": "lookahead", "label": "环视", "patterns": r"(?=退)款", "priority": 60},
    )

    assert response.status_code == 200  # the form again, with the error
    assert not Intent.objects.filter(name="lookahead").exists()
    assert "无效的正则表达式" in response.content.decode()
