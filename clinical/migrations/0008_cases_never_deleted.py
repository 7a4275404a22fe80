"""Cases are never deleted, in PostgreSQL itself: a trigger refuses DELETE and TRUNCATE on
``clinical_case`` whatever client connects (issue 17, finding 2). A case's status changes
over its life, so UPDATE stays allowed; runs and reviews were already append-only
(audit migration 0002), and so are audit events.

TRUNCATE is allowed only where the session sets ``bedside.allow_truncate = on``, as for
the append-only tables: the test suite empties its throw-away database that way.
"""

from django.db import migrations

FUNCTION = """
CREATE OR REPLACE FUNCTION bedside_refuse_case_delete() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE'
       AND coalesce(current_setting('bedside.allow_truncate', true), '') = 'on' THEN
        RETURN NULL;
    END IF;
    RAISE EXCEPTION 'bedside: % on % refused: patient records are never deleted',
        TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'restrict_violation',
              HINT = 'A case stays, with its runs, reviews and audit events.';
END;
$$;
"""

TRIGGERS = """
CREATE TRIGGER clinical_case_no_delete
    BEFORE DELETE ON clinical_case
    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_case_delete();
CREATE TRIGGER clinical_case_no_truncate
    BEFORE TRUNCATE ON clinical_case
    FOR EACH STATEMENT EXECUTE FUNCTION bedside_refuse_case_delete();
"""

DROP = """
DROP TRIGGER IF EXISTS clinical_case_no_delete ON clinical_case;
DROP TRIGGER IF EXISTS clinical_case_no_truncate ON clinical_case;
DROP FUNCTION IF EXISTS bedside_refuse_case_delete();
"""


class Migration(migrations.Migration):
    dependencies = [("clinical", "0007_cds_cards_of_ehr_users_and_feedback_once")]

    operations = [migrations.RunSQL(FUNCTION + TRIGGERS, DROP)]
