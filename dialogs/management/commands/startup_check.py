"""`manage.py startup_check`: the start-up checks on their own (systemd ExecStartPre, CI).

Exit 0 and one line per check when all pass; exit 78 with one line naming the setting when
one fails (common/startup.py).
"""

from django.core.management.base import BaseCommand

from common.startup import CHECKS, exit_on_error, startup_check


class Command(BaseCommand):
    help = "Check storage and broker the way every process does at start; one line on failure."

    def add_arguments(self, parser):
        parser.add_argument(
            "checks", nargs="*", help=f"some of: {', '.join(CHECKS)} (default: all)"
        )

    def handle(self, *args, checks, **options):
        with exit_on_error("startup_check"):
            startup_check(checks or list(CHECKS))
        self.stdout.write(f"startup checks passed: {', '.join(checks or CHECKS)}")
