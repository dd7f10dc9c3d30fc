"""Render the audio of every active canned phrase in each of its emotions, in batches."""

import sys

from django.core.management.base import BaseCommand

from dialogs.services.phrases import phrases_precompute_all


class Command(BaseCommand):
    help = "Precompute clips for all active canned phrases (phrases with variables are skipped)."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=16)

    def handle(self, *args, batch_size: int, **options):
        tty = self.stdout.isatty() if hasattr(self.stdout, "isatty") else sys.stdout.isatty()

        def progress(done: int, total: int) -> None:
            width = 30
            filled = int(width * done / total) if total else width
            bar = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total}"
            # A redrawn bar on a terminal, one line per batch in logs.
            if tty:
                self.stdout.write(f"\r{bar}", ending="")
            else:
                self.stdout.write(bar)

        total = phrases_precompute_all(batch_size=max(1, batch_size), progress=progress)
        if tty:
            self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"{total} phrase clip(s) ready."))
