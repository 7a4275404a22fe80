"""Append-only in PostgreSQL itself: triggers refuse UPDATE, DELETE and TRUNCATE on the
audit events, clinician reviews and reasoning runs, whatever client connects.

A reasoning run is written once, complete or failed, and never touched again
(reasoning.services only creates runs), so every run row is final.

TRUNCATE is allowed only where the session (or the database) sets
``bedside.allow_truncate = on``: the test suite sets it on its throw-away test database,
because pytest-django empties tables with TRUNCATE between tests. Production never sets it.
"""

from django.db import migrations

PROTECTED_TABLES = ("audit_auditevent", "clinical_clinicianreview", "reasoning_reasoningrun")

FUNCTION = """
CREATE OR REPLACE FUNCTION bedside_refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND coalesce(current_setting('bedside.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'bedside: % on % refused: this record is append-only', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'Audit events, clinician reviews and reasoning runs are never changed.';
END;
$$;
"""


def _create(table: str) -> str:
    return f"""
CREATE TRIGGER {table}_no_update_delete
    BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_change();
CREATE TRIGGER {table}_no_truncate
    BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION bedside_refuse_change();
"""


def _drop(table: str) -> str:
    return f"""
DROP TRIGGER IF EXISTS {table}_no_update_delete ON {table};
DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};
"""


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0001_initial"),
        ("clinical", "0002_clinician_review"),
        ("reasoning", "0001_initial"),
    ]

    operations = [
        migrations.RunSQL(FUNCTION, "DROP FUNCTION IF EXISTS bedside_refuse_change();"),
        *[migrations.RunSQL(_create(t), _drop(t)) for t in PROTECTED_TABLES],
    ]
