"""Settings: one env-driven base plus one module per integration (12-factor).

Nothing is production-only: every difference between `make run`, tests and production
comes from environment variables (see README "Configuration").
"""

from .api import *  # noqa: F403
from .asr import *  # noqa: F403
from .base import *  # noqa: F403
from .chat import *  # noqa: F403
from .realtime import *  # noqa: F403

# Last: it extends INSTALLED_APPS, MIDDLEWARE and LOGGING from the modules above.
from .security import *  # noqa: F403

# After base: it replaces STORAGES["default"] when object storage is configured.
from .storage import *  # noqa: F403
from .tts import *  # noqa: F403
