"""Customer chat API settings (the mini-program and the web chat page)."""

from .env import env

CHAT_MAX_MESSAGE_CHARS = env.int("CHAT_MAX_MESSAGE_CHARS", default=1000)
# Per customer, for posting messages (django-ratelimit syntax: "30/m", "500/h").
CHAT_RATE_LIMIT = env.str("CHAT_RATE_LIMIT", default="30/m")
