"""Voice-message reads: the speech-recognition domain prompt."""

from tts.asr.prompt import prompt_build

from ..models import CannedPhrase, Intent


def asr_prompt_current() -> str:
    """The speech-recognition domain prompt: active intents' keywords and phrase texts.

    Phrase texts with template variables are skipped ({{customer.nickname}} is no speech).
    """
    keywords = [
        keyword
        for intent in Intent.objects.filter(is_active=True).order_by("-priority", "name")
        for keyword in intent.keyword_list
    ]
    phrases = [
        text
        for text in CannedPhrase.objects.filter(is_active=True)
        .order_by("category", "short_code")
        .values_list("text", flat=True)
        if "{{" not in text
    ]
    return prompt_build(keywords=keywords, phrases=phrases)
