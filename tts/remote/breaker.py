"""A per-voice circuit breaker: after ``threshold`` failures in a row the voice is skipped
(callers fall back at once instead of waiting for a timeout) for ``cooldown`` seconds; then
one probe is let through (half-open), and its outcome closes or re-opens the circuit.

In-process state: each worker learns about an outage from its own calls, which costs at most
``threshold`` slow calls per worker per outage.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass


class CircuitOpen(Exception):
    def __init__(self, key: str, retry_in: float) -> None:
        super().__init__(f"circuit open for {key}; next probe in {retry_in:.1f} s")
        self.key = key
        self.retry_in = retry_in


@dataclass
class _State:
    failures: int = 0
    opened_at: float | None = None
    probing: bool = False


class CircuitBreaker:
    def __init__(
        self,
        *,
        threshold: int = 3,
        cooldown: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.threshold = threshold
        self.cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._states: dict[str, _State] = {}

    def state(self, key: str) -> str:
        with self._lock:
            s = self._states.get(key)
            if s is None or s.opened_at is None:
                return "closed"
            return "half-open" if self._clock() - s.opened_at >= self.cooldown else "open"

    def before_call(self, key: str) -> None:
        """Raise CircuitOpen unless a call may go out now."""
        with self._lock:
            s = self._states.setdefault(key, _State())
            if s.opened_at is None:
                return
            waited = self._clock() - s.opened_at
            if waited < self.cooldown or s.probing:
                raise CircuitOpen(key, max(0.0, self.cooldown - waited))
            s.probing = True  # half-open: this caller is the one probe

    def success(self, key: str) -> None:
        with self._lock:
            self._states[key] = _State()

    def failure(self, key: str) -> None:
        with self._lock:
            s = self._states.setdefault(key, _State())
            s.failures += 1
            if s.probing or s.failures >= self.threshold:
                s.opened_at = self._clock()
            s.probing = False
