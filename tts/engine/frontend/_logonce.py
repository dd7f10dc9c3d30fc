"""Log a given problem once per process, so bad input cannot flood the log."""

import logging
import threading

logger = logging.getLogger("tts.engine.frontend")

# Bounded so that adversarial input with endless distinct characters cannot grow
# memory without limit; after the cap we simply stop logging new cases.
_MAX_KEYS = 4096
_seen: set[tuple[str, str]] = set()
_lock = threading.Lock()


def log_once(level: int, kind: str, key: str, message: str, *args: object) -> None:
    """Log ``message`` the first time (kind, key) is seen."""
    with _lock:
        if (kind, key) in _seen or len(_seen) >= _MAX_KEYS:
            return
        _seen.add((kind, key))
    logger.log(level, message, *args)
