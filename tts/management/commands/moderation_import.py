"""Import sensitive words from a UTF-8 text file: `word[<TAB>category[<TAB>action]]` per line."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tts.services import moderation_words_import


class Command(BaseCommand):
    help = "Import sensitive words (one per line; optional TAB category TAB block|mask|flag)."

    def add_arguments(self, parser):
        parser.add_argument("file", type=Path)
        parser.add_argument("--category", default="default", help="for lines without one")
        parser.add_argument("--action", default="mask", choices=["block", "mask", "flag"])

    def handle(self, *args, file, category, action, **opts):
        try:
            lines = file.read_text(encoding="utf-8").splitlines()
            result = moderation_words_import(lines=lines, category=category, action=action)
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"{result['created']} words added, {result['updated']} updated from {file}"
            )
        )
