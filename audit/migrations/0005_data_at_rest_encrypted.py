"""Patient data at rest is encrypted: the case facts keep the external id's keyed hash, and
rows written before this migration are encrypted in place.

Encrypting old rows is the one time append-only rows are rewritten: their triggers are off
for this migration's own UPDATEs and on again before it ends (the migration runs as the
tables' owner, in one transaction). Their content does not change, only how it is stored.
"""

from typing import Any

from django.db import migrations, models

FACTS_FROM_CASE = """
CREATE OR REPLACE FUNCTION audit_casefacts_from_case() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_casefacts
        (case_id, created_at, external_id_hash, priority, status, submitted_by_id, submitter,
         system, model_name, model_revision)
    SELECT NEW.id, NEW.created_at, NEW.external_id_hash, NEW.priority, NEW.status,
           NEW.submitted_by_id, u.username,
           CASE WHEN EXISTS (SELECT 1 FROM clinical_apikey k WHERE k.user_id = u.id)
                THEN 'api' ELSE 'person' END, '', ''
      FROM auth_user u WHERE u.id = NEW.submitted_by_id
    ON CONFLICT (case_id) DO UPDATE
       SET status = EXCLUDED.status, priority = EXCLUDED.priority,
           external_id_hash = EXCLUDED.external_id_hash;
    RETURN NULL;
END;
$$;
CREATE TRIGGER clinical_case_facts AFTER INSERT OR UPDATE OF status, priority, external_id_hash
    ON clinical_case FOR EACH ROW EXECUTE FUNCTION audit_casefacts_from_case();
"""

FACTS_FROM_CASE_BEFORE = """
DROP TRIGGER IF EXISTS clinical_case_facts ON clinical_case;
CREATE OR REPLACE FUNCTION audit_casefacts_from_case() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO audit_casefacts
        (case_id, created_at, external_id, priority, status, submitted_by_id, submitter, system,
         model_name, model_revision)
    SELECT NEW.id, NEW.created_at, NEW.external_id, NEW.priority, NEW.status,
           NEW.submitted_by_id, u.username,
           CASE WHEN EXISTS (SELECT 1 FROM clinical_apikey k WHERE k.user_id = u.id)
                THEN 'api' ELSE 'person' END, '', ''
      FROM auth_user u WHERE u.id = NEW.submitted_by_id
    ON CONFLICT (case_id) DO UPDATE
       SET status = EXCLUDED.status, priority = EXCLUDED.priority,
           external_id = EXCLUDED.external_id;
    RETURN NULL;
END;
$$;
"""

# (table, primary key, [(column, is JSON)]) written before encryption.
PATIENT_COLUMNS = [
    ("clinical_case", "id", [("input", True), ("external_id", False)]),
    ("reasoning_reasoningrun", "id", [
        ("assessment", True), ("reasoning_trace", False), ("samples", True),
        ("raw_response", True),
    ]),
    ("clinical_clinicianreview", "id", [("reason_text", False), ("modified_assessment", True)]),
]
APPEND_ONLY = ("reasoning_reasoningrun", "clinical_clinicianreview")


def encrypt_existing_rows(apps: Any, schema_editor: Any) -> None:
    from bedside.vault.encryption import PREFIX, current_data_key, encrypt, lookup_hash

    key = None
    with schema_editor.connection.cursor() as cursor:
        for table in APPEND_ONLY:
            cursor.execute(f"ALTER TABLE {table} DISABLE TRIGGER {table}_no_update_delete")
        for table, pk, columns in PATIENT_COLUMNS:
            for column, _is_json in columns:
                cursor.execute(
                    f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL "
                    f"AND {column} <> '' AND {column} NOT LIKE %s",
                    [f"{PREFIX}:%"],
                )
                for row_id, value in cursor.fetchall():
                    key = key or current_data_key()
                    sealed = encrypt(value, purpose=f"{table}.{column}", key=key)
                    cursor.execute(
                        f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", [sealed, row_id]
                    )
                    if (table, column) == ("clinical_case", "external_id"):
                        cursor.execute(
                            "UPDATE clinical_case SET external_id_hash = %s WHERE id = %s",
                            [lookup_hash(value), row_id],
                        )
        # Run the deferred foreign-key checks of those UPDATEs now: PostgreSQL will not alter
        # a table with trigger events pending.
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        for table in APPEND_ONLY:
            cursor.execute(f"ALTER TABLE {table} ENABLE TRIGGER {table}_no_update_delete")


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0004_case_facts_trigger_paused"),
        ("clinical", "0005_data_at_rest_encrypted"),
        ("reasoning", "0003_data_at_rest_encrypted"),
    ]

    operations = [
        migrations.RemoveField(model_name="casefacts", name="external_id"),
        migrations.AddField(
            model_name="casefacts",
            name="external_id_hash",
            field=models.CharField(blank=True, db_index=True, max_length=64),
        ),
        migrations.RunSQL(FACTS_FROM_CASE, FACTS_FROM_CASE_BEFORE),
        migrations.RunPython(encrypt_existing_rows, migrations.RunPython.noop, elidable=False),
    ]
