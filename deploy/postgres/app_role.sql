-- Least privilege for the login Bedside's web server and worker use (here: bedside_app).
-- Run as the database owner after `manage.py migrate` (which runs as the owner, not as
-- bedside_app), and again after each migration that adds tables:
--   psql -v ON_ERROR_STOP=1 -d bedside -f deploy/postgres/app_role.sql
-- bedside_app may read and append the audit trail, clinician reviews and reasoning runs,
-- but holds no UPDATE, DELETE or TRUNCATE on them: permissions refuse the change before
-- the append-only triggers would. Cases change status but are never deleted: no DELETE or
-- TRUNCATE on clinical_case either. tests/audit/test_append_only.py runs this file.
GRANT USAGE ON SCHEMA public TO bedside_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO bedside_app;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO bedside_app;
REVOKE UPDATE, DELETE, TRUNCATE, REFERENCES, TRIGGER
    ON audit_auditevent, clinical_clinicianreview, reasoning_reasoningrun FROM bedside_app;
REVOKE DELETE, TRUNCATE ON clinical_case FROM bedside_app;
-- Emergency (break-glass) accesses are marked reviewed (an UPDATE), never removed.
REVOKE DELETE, TRUNCATE ON clinical_emergencyaccess FROM bedside_app;
