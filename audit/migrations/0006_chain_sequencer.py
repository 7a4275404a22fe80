"""The chain is linked after commit, by one sequencer, instead of inside every writer's
transaction under one lock (issue 20).

- ``prev_hash`` and ``hash`` may be NULL (an event written, not linked yet), and
  ``chain_position`` orders the chain: commit order, which ``id`` order is not.
- Events already chained keep their links; their position is their id (the order they
  were chained in).
- The append-only trigger on the events lets exactly one change through: linking an
  unlinked event (its three chain columns from NULL to set, nothing else touched). Every
  other UPDATE, and every DELETE, is refused as before.
"""

from django.conf import settings
from django.db import migrations, models

LINK_ONLY = """
CREATE OR REPLACE FUNCTION bedside_audit_link_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE'
       AND OLD.chain_position IS NULL AND OLD.prev_hash IS NULL AND OLD.hash IS NULL
       AND NEW.chain_position IS NOT NULL AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND (to_jsonb(NEW) - 'chain_position' - 'prev_hash' - 'hash')
           = (to_jsonb(OLD) - 'chain_position' - 'prev_hash' - 'hash') THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'bedside: % on % refused: this record is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'Audit events are only ever linked into the chain, never changed.';
END;
$$;
DROP TRIGGER IF EXISTS audit_auditevent_no_update_delete ON audit_auditevent;
CREATE TRIGGER audit_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION bedside_audit_link_only();
"""

REFUSE_ALL = """
DROP TRIGGER IF EXISTS audit_auditevent_no_update_delete ON audit_auditevent;
CREATE TRIGGER audit_auditevent_no_update_delete
    BEFORE UPDATE OR DELETE ON audit_auditevent
    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_change();
DROP FUNCTION IF EXISTS bedside_audit_link_only();
"""

# The only time chained rows are rewritten: their position becomes their id.
BACKFILL = """
ALTER TABLE audit_auditevent DISABLE TRIGGER audit_auditevent_no_update_delete;
UPDATE audit_auditevent SET chain_position = id WHERE chain_position IS NULL AND hash IS NOT NULL;
SET CONSTRAINTS ALL IMMEDIATE;
ALTER TABLE audit_auditevent ENABLE TRIGGER audit_auditevent_no_update_delete;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0005_data_at_rest_encrypted"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="auditevent",
            name="chain_position",
            field=models.BigIntegerField(null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="hash",
            field=models.CharField(max_length=64, null=True, unique=True),
        ),
        migrations.AlterField(
            model_name="auditevent",
            name="prev_hash",
            field=models.CharField(max_length=64, null=True),
        ),
        migrations.AddIndex(
            model_name="auditevent",
            index=models.Index(
                condition=models.Q(("chain_position__isnull", True)),
                fields=["id"],
                name="audit_event_unlinked",
            ),
        ),
        migrations.RunSQL(BACKFILL, migrations.RunSQL.noop),
        migrations.RunSQL(LINK_ONLY, REFUSE_ALL),
    ]
