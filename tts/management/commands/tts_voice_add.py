"""Add or update a voice, local or on a remote engine, from the command line."""

from pathlib import Path

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from tts.models import CosyVoiceMode, VoiceEngine
from tts.services import voice_remote_save, voice_remote_test


class Command(BaseCommand):
    help = "Create or update a voice: --slug S --name NAME --engine {baker,indextts2,...}"

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True, help="the id clients send (voice=...)")
        parser.add_argument("--name", required=True)
        parser.add_argument("--engine", required=True, choices=VoiceEngine.values)
        parser.add_argument("--url", default="", help="the engine's base URL")
        parser.add_argument("--api-key", default=None, help="sent as a Bearer token")
        parser.add_argument("--speaker", default="", help="speaker id / upstream voice name")
        parser.add_argument("--mode", choices=CosyVoiceMode.values, default=None)
        parser.add_argument("--model", default=None, help="model name (OpenAI-compatible)")
        parser.add_argument("--prompt-wav", type=Path, help="cloning prompt recording, 3-30 s")
        parser.add_argument("--prompt-text", default=None, help="what the prompt recording says")
        parser.add_argument("--sample-rate", type=int, default=None, help="CosyVoice PCM rate")
        parser.add_argument("--timeout", type=float, default=None, help="seconds")
        parser.add_argument("--max-concurrency", type=int, default=None)
        parser.add_argument("--no-fallback", action="store_true", help="never speak with Baker")
        parser.add_argument(
            "--no-check", action="store_true", help="save without a test synthesis first"
        )

    def handle(self, *args, **opts):
        prompt = None
        if opts["prompt_wav"]:
            try:
                prompt = opts["prompt_wav"].read_bytes()
            except OSError as exc:
                raise CommandError(f"cannot read {opts['prompt_wav']}: {exc.strerror}") from exc
        if opts["engine"] != VoiceEngine.BAKER and not opts["url"]:
            raise CommandError("--url is required for a remote engine")
        try:
            with transaction.atomic():  # a voice that fails its test synthesis is not saved
                voice = self._save(opts, prompt)
        except ValidationError as exc:
            raise CommandError(
                "; ".join(f"{k}: {' '.join(v)}" for k, v in exc.message_dict.items())
            ) from exc
        self.stdout.write(f"voice {voice.engine_voice_id} saved ({opts['engine']})")

    def _save(self, opts, prompt):
        voice = voice_remote_save(
            slug=opts["slug"],
            name=opts["name"],
            engine=opts["engine"],
            url=opts["url"],
            api_key=opts["api_key"],
            speaker=opts["speaker"],
            sample_rate=opts["sample_rate"],
            mode=opts["mode"],
            model_name=opts["model"],
            timeout_s=opts["timeout"],
            max_concurrency=opts["max_concurrency"],
            prompt_audio=prompt,
            prompt_text=opts["prompt_text"],
            fallback_to_baker=False if opts["no_fallback"] else None,
        )
        if opts["engine"] != VoiceEngine.BAKER and not opts["no_check"]:
            result = voice_remote_test(voice=voice)
            if not result["ok"]:
                raise CommandError(f"test synthesis failed: {result['error']}")
            self.stdout.write(f"test synthesis: {result['latency_ms']} ms")
        return voice
