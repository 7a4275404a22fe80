"""Drops the case-facts trigger on ``clinical_case`` while clinical's migration changes the
``external_id`` column it watches (PostgreSQL refuses to retype a column a trigger names).
``0005_data_at_rest_encrypted`` creates it again on ``external_id_hash``."""

from django.db import migrations

RESTORE = """
CREATE TRIGGER clinical_case_facts AFTER INSERT OR UPDATE OF status, priority, external_id
    ON clinical_case FOR EACH ROW EXECUTE FUNCTION audit_casefacts_from_case();
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0003_case_facts")]
    run_before = [("clinical", "0005_data_at_rest_encrypted")]

    operations = [
        migrations.RunSQL("DROP TRIGGER IF EXISTS clinical_case_facts ON clinical_case;", RESTORE)
    ]
