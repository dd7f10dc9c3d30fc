"""Retention: delete synthesis records and change-history rows older than N days."""

import sys
from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from dialogs.services.audit import audit_prune


class Command(BaseCommand):
    help = "Delete SynthesisRecord rows and simple-history rows older than --older-than DAYS."

    def add_arguments(self, parser):
        parser.add_argument("--older-than", type=int, required=True, metavar="DAYS")

    def handle(self, *args, older_than: int, **options):
        if older_than < 1:
            raise CommandError("--older-than must be at least 1 day.")
        cutoff = timezone.now() - timedelta(days=older_than)
        end = "\r" if sys.stderr.isatty() else "\n"

        def progress(label: str, done: int) -> None:
            self.stderr.write(f"{label}: {done:,}…", ending=end)

        deleted = audit_prune(before=cutoff, progress=progress)
        for label, count in deleted.items():
            self.stdout.write(f"{label}: {count}")
        self.stdout.write(
            self.style.SUCCESS(
                f"Deleted {sum(deleted.values())} audit row(s) older than {cutoff:%Y-%m-%d %H:%M}."
            )
        )
