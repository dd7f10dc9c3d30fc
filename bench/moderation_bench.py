"""Sensitive-word check speed: a 10,000-word list against 1 KB of customer text.

Usage:  .venv/bin/python bench/moderation_bench.py [--words 10000] [--repeats 2000]
The list is synthetic but shaped like real ones (2-6 hanzi, some Latin words, thousands of
distinct first characters, which is what makes a naive trie slow); the text is 1 KB of UTF-8
mixing hanzi, digits, Latin and separators. Reports the median and p99 per check for a clean
text (the common case) and for a text with hits (masking on the original spans).
"""

from __future__ import annotations

import argparse
import random
import statistics
import string
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

HANZI = [chr(c) for c in range(0x4E00, 0x9FA5)]


def _word_list(n: int, rng: random.Random) -> list[str]:
    words: set[str] = set()
    while len(words) < n:
        if rng.random() < 0.1:
            words.add("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(3, 8))))
        else:
            words.add("".join(rng.choice(HANZI) for _ in range(rng.randint(2, 6))))
    return sorted(words)


def _text_1kb(rng: random.Random, alphabet: list[str]) -> str:
    parts: list[str] = []
    while len("".join(parts).encode()) < 1024:
        parts.append(rng.choice(alphabet))
    text = "".join(parts)
    while len(text.encode()) > 1024:
        text = text[:-1]
    return text


def _time(fn, repeats: int) -> tuple[float, float]:
    samples = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--words", type=int, default=10000)
    parser.add_argument("--repeats", type=int, default=2000)
    args = parser.parse_args()

    from tts.moderation import WordEntry, WordMatcher

    rng = random.Random(20261203)
    words = _word_list(args.words, rng)
    started = time.perf_counter()
    matcher = WordMatcher([WordEntry(w, "bench", "mask") for w in words])
    build_ms = (time.perf_counter() - started) * 1000

    # Clean: characters that begin no word, so nothing matches (the common case).
    first = {w[0] for w in words}
    clean_alphabet = [c for c in HANZI[:6000] if c not in first] + list("，。 0123456789")
    clean = _text_1kb(rng, clean_alphabet)
    assert not matcher.check(clean).flagged
    # Dirty: the clean text with ten listed words, some with separators slipped in.
    dirty = clean[: len(clean) - 60]
    for word in rng.sample(words, 10):
        dirty += " ".join(word) if rng.random() < 0.5 else word
    dirty = dirty[-len(clean) :]
    hits = len(matcher.check(dirty).hits)

    for _ in range(200):  # warm the fold table
        matcher.check(clean), matcher.check(dirty)
    clean_med, clean_p99 = _time(lambda: matcher.check(clean), args.repeats)
    dirty_med, dirty_p99 = _time(lambda: matcher.check(dirty), args.repeats)
    print(f"words={len(words)} build={build_ms:.0f} ms text={len(clean.encode())} bytes")
    print("| text | hits | median ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    print(f"| clean 1 KB | 0 | {clean_med:.3f} | {clean_p99:.3f} |")
    print(f"| 1 KB with listed words | {hits} | {dirty_med:.3f} | {dirty_p99:.3f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
