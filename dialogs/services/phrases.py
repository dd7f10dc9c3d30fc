"""Canned phrases: variables, precomputed audio, and re-rendering when what they sound like
changes (an emotion preset's controls, a lexicon entry)."""

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils.translation import gettext as _

from accounts.models import User
from common.tasks import task_enqueue
from tts import services as tts_services
from tts.models import EmotionPreset

from ..models import VARIABLE_RE, CannedPhrase
from ..selectors.phrases import phrases_for_lexicon_words, phrases_for_preset

BOT_NAME = "智能客服"


def _variables_for(*, customer: User, agent: User | None) -> dict[str, str]:
    profile = getattr(customer, "customer_profile", None)
    nickname = (profile.nickname if profile is not None else "") or customer.display_name
    agent_name = agent.display_name if agent is not None else BOT_NAME
    return {
        "customer.nickname": nickname,
        "customer.name": nickname,
        "agent.name": agent_name,
    }


def phrase_text_render(*, text: str, customer: User, agent: User | None) -> str:
    """Fill `{{customer.nickname}}`-style variables; an unknown variable is a validation error."""
    values = _variables_for(customer=customer, agent=agent)
    unknown = sorted({name for name in VARIABLE_RE.findall(text) if name not in values})
    if unknown:
        raise ValidationError(
            {
                "text": _("Unknown variable(s): %(unknown)s. Known: %(known)s.")
                % {
                    "unknown": ", ".join(f"{{{{{name}}}}}" for name in unknown),
                    "known": ", ".join(f"{{{{{name}}}}}" for name in sorted(values)),
                }
            },
            code="unknown_variable",
        )
    return VARIABLE_RE.sub(lambda match: values[match.group(1)], text)


def phrase_precompute_items(*, phrase: CannedPhrase) -> list[tuple[str, EmotionPreset]]:
    # Phrases with variables are rendered at send time (then cached by their final text).
    if not phrase.is_active or phrase.has_variables:
        return []
    return [(phrase.text, preset) for preset in phrase.emotions.order_by("name")]


def phrase_precompute(
    *, phrase_id: int, progress: Callable[[int, int], None] | None = None
) -> list:
    phrase = CannedPhrase.objects.filter(pk=phrase_id).first()
    if phrase is None:
        return []
    items = phrase_precompute_items(phrase=phrase)
    if not items:
        return []
    return tts_services.speech_clips_precompute(items=items, progress=progress)


def phrases_precompute_all(
    *, batch_size: int = 16, progress: Callable[[int, int], None] | None = None
) -> int:
    """Render every active phrase in every emotion it lists; returns how many clips exist now."""
    items: list[tuple[str, EmotionPreset]] = []
    for phrase in CannedPhrase.objects.filter(is_active=True).prefetch_related("emotions"):
        items.extend(phrase_precompute_items(phrase=phrase))
    total = len(items)
    done = 0
    for start in range(0, total, batch_size):
        batch = items[start : start + batch_size]
        tts_services.speech_clips_precompute(items=batch)
        done += len(batch)
        if progress is not None:
            progress(done, total)
    return total


_paused = threading.local()


@contextmanager
def phrase_rendering_paused() -> Iterator[None]:
    """Queue no phrase rendering in this block (bulk loads and seeds that render afterwards
    with `manage.py tts_precompute`, or never)."""
    previous = getattr(_paused, "on", False)
    _paused.on = True
    try:
        yield
    finally:
        _paused.on = previous


def phrase_precompute_queue(*, phrase_ids: list[int]) -> None:
    from ..tasks import phrase_precompute_task

    if getattr(_paused, "on", False):
        return
    for phrase_id in phrase_ids:
        transaction.on_commit(lambda pk=phrase_id: task_enqueue(phrase_precompute_task, pk))


def preset_changed(*, preset: EmotionPreset) -> list[int]:
    """A preset's controls changed: its clips are stale (new cache key), so re-render."""
    phrase_ids = phrases_for_preset(preset=preset)
    phrase_precompute_queue(phrase_ids=phrase_ids)
    return phrase_ids


def lexicon_words_changed_rerender(*, words: list[str]) -> list[int]:
    """Lexicon entries for `words` changed: re-render the phrases that say one of them."""
    phrase_ids = phrases_for_lexicon_words(words=words)
    phrase_precompute_queue(phrase_ids=phrase_ids)
    return phrase_ids
