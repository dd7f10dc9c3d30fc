import sys

from django.core.management.base import BaseCommand

from tts.services import clip_stale_delete


class Command(BaseCommand):
    help = (
        "Delete cached clips that can no longer be served (engine version, lexicon or "
        "preset changed) and, with --unused-days, clips nobody played for that long."
    )

    def add_arguments(self, parser):
        parser.add_argument("--unused-days", type=int, default=None)

    def handle(self, *args, unused_days=None, **options):
        interactive = sys.stderr.isatty()

        def progress(done: int) -> None:
            # One line that counts up on a terminal; a line per batch in logs.
            end = "\r" if interactive else "\n"
            self.stderr.write(f"deleted {done:,} clip(s)…", ending=end)

        deleted = clip_stale_delete(older_than_days=unused_days, progress=progress)
        self.stdout.write(f"deleted {deleted} clip(s)")
