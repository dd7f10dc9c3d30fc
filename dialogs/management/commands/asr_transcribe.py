"""Transcribe audio files with the in-process recogniser: `name<TAB>transcript` per file."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from dialogs.selectors.voice import asr_prompt_current
from tts.adapters import asr_limits, asr_recognizer
from tts.asr.decoding import ACCEPTED_FORMATS, AudioRejected, decode_audio
from tts.asr.recognizer import RecognizerUnavailable

_SUFFIXES = {".wav", ".mp3", ".aac", ".m4a", ".mp4", ".silk", ".webm", ".ogg", ".opus", ".pcm"}


class Command(BaseCommand):
    help = "Transcribe FILE [FILE ...] (or every audio file in --batch DIR, sorted)."

    def add_arguments(self, parser):
        parser.add_argument("files", nargs="*", type=Path)
        parser.add_argument("--batch", type=Path, help="a folder: transcribe every audio file")
        parser.add_argument(
            "--sample-rate", type=int, help="for raw .pcm (16-bit mono) and .silk files"
        )
        parser.add_argument("--no-prompt", action="store_true", help="no domain prompt")

    def handle(self, *args, files, batch=None, sample_rate=None, no_prompt=False, **opts):
        paths = list(files)
        if batch:
            if not batch.is_dir():
                raise CommandError(f"{batch} is not a folder")
            paths += sorted(p for p in batch.iterdir() if p.suffix.lower() in _SUFFIXES)
        if not paths:
            raise CommandError(f"give FILE ... or --batch DIR ({', '.join(ACCEPTED_FORMATS)})")
        try:
            recognizer = asr_recognizer()
        except RecognizerUnavailable as exc:
            raise CommandError(str(exc)) from exc
        prompt = "" if no_prompt else asr_prompt_current()
        failed = 0
        for path in paths:
            try:
                data = path.read_bytes()
                decoded = decode_audio(
                    data,
                    # Only raw PCM needs the name: it has no header to sniff.
                    declared="pcm" if path.suffix.lower() == ".pcm" else None,
                    sample_rate=sample_rate,
                    limits=asr_limits(),
                )
            except (OSError, AudioRejected) as exc:
                failed += 1
                self.stderr.write(f"{path.name}\terror: {exc}")
                continue
            transcript = recognizer.transcribe(decoded.samples, prompt=prompt)
            self.stdout.write(f"{path.name}\t{transcript.text}")
        if failed:
            raise CommandError(f"{failed} of {len(paths)} files could not be read")
