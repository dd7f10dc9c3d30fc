"""Speak text to a file, or render a whole batch file, with the in-process engine."""

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from tts.adapters import get_engine
from tts.engine import audio
from tts.engine.frontend import TextValidationError
from tts.engine.synthesizer import ControlError, Controls, EngineUnavailable
from tts.models import EmotionPreset, SynthesisSource, Voice
from tts.selectors import lexicon_current
from tts.services import (
    SpeechSynthesisFailed,
    SpeechTextRejected,
    controls_for_preset,
    speech_clip_get_or_create,
)


class Command(BaseCommand):
    help = "Synthesise TEXT to a file, or every `id<TAB>text` line of --batch FILE into --out-dir."

    def add_arguments(self, parser):
        parser.add_argument("text", nargs="?")
        parser.add_argument("-o", "--output", type=Path)
        parser.add_argument("--batch", type=Path, help="file with one id<TAB>text per line")
        parser.add_argument("--out-dir", type=Path)
        parser.add_argument("--emotion", help="emotion preset name (neutral, calm, ...)")
        parser.add_argument("--speed", type=float)
        parser.add_argument("--pitch", type=float, help="semitones, -6..6")
        parser.add_argument("--energy", type=float)
        parser.add_argument("--format", choices=audio.AUDIO_FORMATS, default=None)
        parser.add_argument("--sample-rate", type=int, choices=[24000, 16000], default=24000)
        parser.add_argument("--voice", help="voice slug (local or remote engine); default: local")

    def handle(self, *args, **opts):
        controls = self._controls(opts)
        if opts["voice"]:
            return self._say_with_voice(opts, controls)
        try:
            engine = get_engine()
        except EngineUnavailable as exc:
            raise CommandError(f"TTS engine unavailable: {exc}") from exc
        lexicon = lexicon_current() or None
        if opts["batch"]:
            self._batch(engine, controls, lexicon, opts)
        elif opts["text"] and opts["output"]:
            fmt = opts["format"] or opts["output"].suffix.lstrip(".") or "wav"
            self._write(engine, opts["text"], controls, lexicon, opts["output"], fmt, opts)
        else:
            raise CommandError("give TEXT -o FILE, or --batch FILE --out-dir DIR")

    def _say_with_voice(self, opts, controls: Controls) -> None:
        """Through the speech service: the voice's own engine (remote ones too), its fallback,
        our normaliser and lexicon, the cache and the audit trail."""
        if not (opts["text"] and opts["output"]):
            raise CommandError("--voice needs TEXT -o FILE")
        voice = Voice.objects.filter(engine_voice_id=opts["voice"], is_active=True).first()
        if voice is None:
            known = ", ".join(Voice.objects.values_list("engine_voice_id", flat=True))
            raise CommandError(f"unknown voice {opts['voice']!r}; known: {known}")
        preset = (
            EmotionPreset.objects.filter(name=opts["emotion"]).first() if opts["emotion"] else None
        )
        fmt = opts["format"] or opts["output"].suffix.lstrip(".") or "wav"
        try:
            result = speech_clip_get_or_create(
                text=opts["text"], preset=preset, voice=voice, controls=controls, fmt=fmt,
                source=SynthesisSource.CLI,
            )  # fmt: skip
        except SpeechTextRejected as exc:
            raise CommandError(exc.message) from exc
        except SpeechSynthesisFailed as exc:
            raise CommandError(exc.reason) from exc
        clip = result.clip
        opts["output"].parent.mkdir(parents=True, exist_ok=True)
        with clip.file.open("rb") as handle:
            opts["output"].write_bytes(handle.read())
        self.stdout.write(f"{opts['output']}  {clip.duration_ms} ms  engine: {clip.engine}")

    def _controls(self, opts) -> Controls:
        preset = None
        if opts["emotion"]:
            preset = EmotionPreset.objects.filter(name=opts["emotion"]).first()
            if preset is None:
                names = ", ".join(EmotionPreset.objects.values_list("name", flat=True))
                raise CommandError(f"unknown emotion {opts['emotion']!r}; known: {names}")
        base = controls_for_preset(preset)
        try:
            return Controls(
                speed=opts["speed"] if opts["speed"] is not None else base.speed,
                pitch=opts["pitch"] if opts["pitch"] is not None else base.pitch,
                energy=opts["energy"] if opts["energy"] is not None else base.energy,
                pause=base.pause,
            )
        except ControlError as exc:
            raise CommandError(str(exc)) from exc

    def _write(self, engine, text, controls, lexicon, path: Path, fmt: str, opts) -> None:
        if fmt not in audio.AUDIO_FORMATS:
            raise CommandError(f"format must be one of {audio.AUDIO_FORMATS}")
        try:
            speech = engine.synthesize(text, controls=controls, lexicon=lexicon)
        except TextValidationError as exc:
            raise CommandError(str(exc)) from exc
        samples, rate = speech.samples, speech.sample_rate
        if opts["sample_rate"] != rate:
            samples, rate = audio.resample(samples, rate, opts["sample_rate"]), opts["sample_rate"]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(audio.encode(samples, sample_rate=rate, fmt=fmt))
        self.stdout.write(f"{path}  {speech.duration_ms} ms")

    def _batch(self, engine, controls, lexicon, opts) -> None:
        if not opts["out_dir"]:
            raise CommandError("--batch needs --out-dir")
        fmt = opts["format"] or "wav"
        lines = opts["batch"].read_text(encoding="utf-8").splitlines()
        failed = 0
        for number, line in enumerate(lines, start=1):
            if not line.strip():
                continue
            item_id, sep, text = line.partition("\t")
            if not sep or not item_id.strip() or "/" in item_id:
                self.stderr.write(f"line {number}: expected id<TAB>text, skipped")
                failed += 1
                continue
            try:
                self._write(
                    engine,
                    text,
                    controls,
                    lexicon,
                    opts["out_dir"] / f"{item_id.strip()}.{fmt}",
                    fmt,
                    opts,
                )
            except CommandError as exc:
                self.stderr.write(f"line {number} ({item_id}): {exc}")
                failed += 1
        if failed:
            raise CommandError(f"{failed} line(s) failed")
