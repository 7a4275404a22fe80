"""Export the audit chain's head (id, hash, count, time), HMAC-signed with
BEDSIDE_AUDIT_CHECKPOINT_KEY (on one machine, the key generated into the state folder).
`verify_audit --checkpoint FILE` later proves that no event up to that head was removed or
rewritten, the tail included. Celery beat writes one periodically (audit/tasks.py)."""

import json
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser

from audit.models import Action
from audit.services import Actor, checkpoint_create, record


class Command(BaseCommand):
    help = "Write the audit chain's current head to a JSON file the auditor keeps."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--output", "-o", type=Path, help="file to write (default: stdout)")

    def handle(self, *args: Any, output: Path | None, **options: Any) -> None:
        key = settings.BEDSIDE_AUDIT_CHECKPOINT_KEY
        checkpoint = checkpoint_create(key=key)
        text = json.dumps(checkpoint.as_dict(), indent=2) + "\n"
        if output is None:
            self.stdout.write(text, ending="")
        else:
            output.write_text(text)
            self.stderr.write(f"checkpoint of event #{checkpoint.head_id} written to {output}")
        # Appended after the head it names: the next checkpoint covers this event too.
        record(
            actor=Actor(label="manage.py audit_checkpoint", role="admin"),
            action=Action.EXECUTE,
            code="audit.checkpointed",
            object_type="audit_event",
            object_id=str(checkpoint.head_id),
            details={"count": checkpoint.count, "signed": bool(checkpoint.signature)},
        )
