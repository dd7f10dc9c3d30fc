"""What our remote-engine client adds per request, against a local fake server.

For each protocol: median wall time of a bare HTTP call that only reads the bytes (what any
relay must do) next to ``tts.remote.synthesize`` (the same call plus decoding, the speech
check and our error mapping). The difference is our overhead; the server's own time cancels.

    .venv/bin/python bench/remote_relay_overhead.py [--n 40]
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tts.remote import RemoteVoice, synthesize
from tts.tests.remote.fake_engines import FakeEngine


def _median_ms(fn, n: int) -> float:
    fn()  # warm: connection setup, imports
    times = []
    for _ in range(n):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=40)
    n = parser.parse_args().n
    cases = {
        "openai": ("/v1/audio/speech", {"json": {"model": "tts-1", "input": "您好", "voice": "a"}}),
        "indextts2": ("/api/tts", {"json": {"text": "您好", "output_type": "base64"}}),
        "cosyvoice": ("/inference_sft", {"data": {"tts_text": "您好", "spk_id": "中文女"}}),
    }
    print(f"{'engine':<10} {'bare HTTP ms':>13} {'our client ms':>14} {'overhead ms':>12}  (n={n})")
    for kind, (path, kwargs) in cases.items():
        server = FakeEngine(kind, chunk_seconds=1.0)
        try:
            url = server.url + path

            def bare(url=url, kwargs=kwargs):
                with httpx.Client(timeout=30) as c:
                    c.post(url, **kwargs).read()

            voice = RemoteVoice(kind, server.url, speaker="1")
            ours = _median_ms(lambda voice=voice: synthesize(voice, "您好"), n)
            raw = _median_ms(bare, n)
            print(f"{kind:<10} {raw:>13.2f} {ours:>14.2f} {ours - raw:>12.2f}")
        finally:
            server.close()


if __name__ == "__main__":
    main()
