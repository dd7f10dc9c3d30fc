#!/usr/bin/env python
import os
import sys


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cs_platform.settings")
    from django.core.management import execute_from_command_line

    from common.startup import exit_on_error

    # A settings error (unknown STORAGE_BACKEND, placeholder SECRET_KEY) is one line, not a
    # traceback; ImproperlyConfigured only - every other error keeps its traceback.
    with exit_on_error("manage.py"):
        execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
