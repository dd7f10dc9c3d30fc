# The shared people, presets and conversation fixtures are registered once for the whole suite
# (root conftest.py `pytest_plugins`); the browser fixtures are dialogs' own.
from dialogs.tests.browser_support import chromium, uvicorn_server  # noqa: F401 (fixtures)
