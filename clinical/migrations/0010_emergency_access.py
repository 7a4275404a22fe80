"""Break-glass access (issue 19): one row per emergency access a person was granted to a
case that is not theirs.

The rows are part of the record, like the cases they open: PostgreSQL refuses DELETE and
TRUNCATE on them (the function of migration 0008, whatever client connects), and refuses
every UPDATE but the one that marks an access reviewed: the review fields may be set once,
from empty, and nothing else on the row ever changes.
"""

import bedside.vault.fields
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

TRIGGERS = """
CREATE TRIGGER clinical_emergencyaccess_no_delete
    BEFORE DELETE ON clinical_emergencyaccess
    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_case_delete();
CREATE TRIGGER clinical_emergencyaccess_no_truncate
    BEFORE TRUNCATE ON clinical_emergencyaccess
    FOR EACH STATEMENT EXECUTE FUNCTION bedside_refuse_case_delete();

CREATE OR REPLACE FUNCTION bedside_emergency_access_reviewed_once() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.reviewed_at IS NOT NULL
       OR NEW.case_id IS DISTINCT FROM OLD.case_id
       OR NEW.person_id IS DISTINCT FROM OLD.person_id
       OR NEW.reason IS DISTINCT FROM OLD.reason
       OR NEW.granted_at IS DISTINCT FROM OLD.granted_at
       OR NEW.expires_at IS DISTINCT FROM OLD.expires_at THEN
        RAISE EXCEPTION 'bedside: UPDATE on % refused: an emergency access is only marked reviewed, once',
            TG_TABLE_NAME
            USING ERRCODE = 'restrict_violation';
    END IF;
    RETURN NEW;
END;
$$;
CREATE TRIGGER clinical_emergencyaccess_reviewed_once
    BEFORE UPDATE ON clinical_emergencyaccess
    FOR EACH ROW EXECUTE FUNCTION bedside_emergency_access_reviewed_once();
"""

DROP = """
DROP TRIGGER IF EXISTS clinical_emergencyaccess_reviewed_once ON clinical_emergencyaccess;
DROP FUNCTION IF EXISTS bedside_emergency_access_reviewed_once();
DROP TRIGGER IF EXISTS clinical_emergencyaccess_no_delete ON clinical_emergencyaccess;
DROP TRIGGER IF EXISTS clinical_emergencyaccess_no_truncate ON clinical_emergencyaccess;
"""


class Migration(migrations.Migration):
    dependencies = [
        ("clinical", "0009_cds_writeback"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.CreateModel(
            name="EmergencyAccess",
            fields=[
                (
                    "id",
                    models.BigAutoField(
                        auto_created=True, primary_key=True, serialize=False, verbose_name="ID"
                    ),
                ),
                ("reason", bedside.vault.fields.EncryptedTextField()),
                ("granted_at", models.DateTimeField(db_index=True)),
                ("expires_at", models.DateTimeField()),
                ("reviewed_at", models.DateTimeField(blank=True, db_index=True, null=True)),
                ("review_note", bedside.vault.fields.EncryptedTextField(blank=True)),
                (
                    "case",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="emergency_accesses",
                        to="clinical.case",
                    ),
                ),
                (
                    "person",
                    models.ForeignKey(
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="emergency_accesses",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
                (
                    "reviewed_by",
                    models.ForeignKey(
                        blank=True,
                        null=True,
                        on_delete=django.db.models.deletion.PROTECT,
                        related_name="emergency_access_reviews",
                        to=settings.AUTH_USER_MODEL,
                    ),
                ),
            ],
            options={
                "ordering": ["-granted_at", "-id"],
                "indexes": [
                    models.Index(
                        fields=["case", "person", "expires_at"], name="emergency_access_active"
                    )
                ],
                "constraints": [
                    models.CheckConstraint(
                        condition=models.Q(("expires_at__gt", models.F("granted_at"))),
                        name="emergency_access_ends_after_it_starts",
                    ),
                    models.CheckConstraint(
                        condition=models.Q(
                            models.Q(("reviewed_at__isnull", True), ("reviewed_by__isnull", True)),
                            models.Q(
                                ("reviewed_at__isnull", False), ("reviewed_by__isnull", False)
                            ),
                            _connector="OR",
                        ),
                        name="emergency_access_reviewed_by_someone",
                    ),
                ],
            },
        ),
        migrations.RunSQL(TRIGGERS, DROP),
    ]
