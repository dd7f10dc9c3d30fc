"""Canned phrase reads: lookup by short code, trigger matching, search, re-render targets."""

from django.db.models import Q, QuerySet

from tts.models import EmotionPreset

from ..models import CannedPhrase
from .snapshot import rules_snapshot


def phrase_get_by_code(*, short_code: str) -> CannedPhrase | None:
    return CannedPhrase.objects.filter(short_code=short_code.lstrip("/"), is_active=True).first()


def phrase_match_for_text(*, text: str) -> CannedPhrase | None:
    """The active phrase whose longest matching trigger keyword is longest (most specific)."""
    folded = text.casefold()
    best: tuple[int, str] | None = None
    best_phrase = None
    for phrase in rules_snapshot().trigger_phrases:
        hits = [len(k) for k in phrase.trigger_list if k.casefold() in folded]
        if not hits:
            continue
        # Longer trigger first; the short code breaks ties so the choice is deterministic.
        score = (-max(hits), phrase.short_code)
        if best is None or score < best:
            best, best_phrase = score, phrase
    return best_phrase


def phrase_search(*, query: str, limit: int = 10) -> QuerySet[CannedPhrase]:
    query = query.strip().lstrip("/")
    phrases = CannedPhrase.objects.filter(is_active=True)
    if query:
        phrases = phrases.filter(
            Q(short_code__istartswith=query)
            | Q(title__icontains=query)
            | Q(text__icontains=query)
            | Q(category__icontains=query)
        )
    return phrases.order_by("short_code")[:limit]


def phrases_for_preset(*, preset: EmotionPreset) -> list[int]:
    return list(
        CannedPhrase.objects.filter(is_active=True, emotions=preset).values_list("pk", flat=True)
    )


def phrases_for_lexicon_words(*, words: list[str]) -> list[int]:
    query = Q()
    for word in filter(None, words):
        query |= Q(text__contains=word)
    if not query:
        return []
    return list(CannedPhrase.objects.filter(query, is_active=True).values_list("pk", flat=True))
