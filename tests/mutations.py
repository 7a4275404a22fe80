"""Each protection of issues 7 and 17, removed one at a time: the tests that guard it must fail.

    python tests/mutations.py [NAME ...]      # from the repository root, services as for tests

For each mutation the source is edited in place, the named tests are run, and the file is
put back whatever happens. A mutation whose tests still pass is a protection no test holds,
and this script exits 1. Not part of `make test` (it runs the guarded tests once per
mutation); the issue-7 closing note gives its last results.
"""

from __future__ import annotations

import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutation:
    name: str
    area: str
    path: str
    before: str
    after: str
    tests: tuple[str, ...]


MUTATIONS = [
    Mutation(
        "expired-lease-never-taken-over",
        "worker killed mid-case",
        "clinical/lifecycle.py",
        "if case.status == CaseStatus.RUNNING and case.claimed_until and case.claimed_until > now:",
        "if case.status == CaseStatus.RUNNING:",
        (
            "tests/reasoning/test_case_run.py::test_expired_claim_is_taken_over_and_the_old_worker_cannot_record",
        ),
    ),
    Mutation(
        "claim-token-not-checked",
        "duplicate delivery, two workers racing",
        "clinical/lifecycle.py",
        "if case.status != CaseStatus.RUNNING or case.claim_token != claim.token:",
        "if case.status != CaseStatus.RUNNING:",
        (
            "tests/reasoning/test_case_run.py::test_a_superseded_worker_cannot_record_while_the_new_one_still_runs",
        ),
    ),
    Mutation(
        "no-attempt-counter",
        "a case that keeps killing workers",
        "clinical/lifecycle.py",
        "if case.attempts >= settings.BEDSIDE_MAX_ATTEMPTS:",
        "if False:",
        ("tests/reasoning/test_case_run.py::test_case_that_keeps_losing_its_worker_ends_failed",),
    ),
    Mutation(
        "model-down-fails-the-case",
        "model server down",
        "clinical/lifecycle.py",
        "        return case_release_for_retry(claim=claimed, reason=str(exc))",
        "        return case_record_outcome(claim=claimed, "
        "prompt=prompts.render(claimed.case_input), result=None, failure=str(exc))",
        (
            "tests/reasoning/test_case_run.py::test_model_down_puts_the_case_back_with_the_reason_then_it_completes",
        ),
    ),
    Mutation(
        "busy-retry-waits-the-whole-lease",
        "RabbitMQ consumer timeout",
        "clinical/lifecycle.py",
        "retry_in=min(lease_left, settings.BEDSIDE_RETRY_BACKOFF_MAX_S)",
        "retry_in=lease_left",
        (
            "tests/reasoning/test_case_run.py::test_delivery_while_another_worker_holds_the_case_waits",
        ),
    ),
    Mutation(
        "prefetch-reduction-after-reconnect",
        "RabbitMQ restart (celery#9512)",
        "bedside/settings.py",
        "CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False",
        "CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = True",
        (
            "tests/faults/test_broker_restart.py::"
            "test_every_case_accepted_during_a_broker_restart_completes_exactly_once[rabbitmq]",
        ),
    ),
    Mutation(
        "enqueue-before-commit",
        "enqueue after commit",
        "clinical/services.py",
        "    case_id, priority = str(case.id), case.priority\n"
        "    transaction.on_commit(lambda: _enqueue(case_id, priority))\n",
        "    case_id, priority = str(case.id), case.priority\n    _enqueue(case_id, priority)\n",
        ("tests/faults/test_enqueue_after_commit.py",),
    ),
    Mutation(
        "no-sweeper",
        "cases left queued (broker down at commit)",
        "clinical/selectors.py",
        '    """Cases that nothing is working on, oldest first:',
        '    return []\n    """Cases that nothing is working on, oldest first:',
        (
            "tests/reasoning/test_case_run.py::test_sweeper_resends_only_cases_left_queued_with_nothing_due",
        ),
    ),
    Mutation(
        "nan-accepted",
        "bad input (property tests)",
        "clinical/schemas.py",
        "allow_inf_nan=False",
        "allow_inf_nan=True",
        ("tests/clinical/test_case_input_properties.py", "tests/clinical/test_case_input.py"),
    ),
    Mutation(
        "no-body-limit",
        "oversized bodies",
        "bedside/middleware.py",
        "        if length > limit:",
        "        if False:",
        ("tests/clinical/test_case_api.py::test_oversized_body_is_413",),
    ),
    Mutation(
        "everyone-sees-every-case",
        "authorization",
        "clinical/api.py",
        "    return cases.filter(submitted_by=user)",
        "    return cases",
        (
            "tests/audit/test_completeness.py::test_every_endpoint_as_every_role_writes_exactly_the_expected_events",
        ),
    ),
    Mutation(
        "every-case-screen-open",
        "authorization (screens)",
        "clinical/screens/presenting.py",
        "    return cases.filter(submitted_by=user)\n\n\ndef my_cases",
        "    return cases\n\n\ndef my_cases",
        (
            "tests/test_url_access.py::test_every_route_as_every_principal_answers_as_the_table_says",
        ),
    ),
    Mutation(
        "case-page-without-sign-in",
        "authorization (screens)",
        "clinical/screens/views.py",
        "@login_required\n@require_GET\ndef case_page(",
        "@require_GET\ndef case_page(",
        (
            "tests/test_url_access.py::test_every_route_as_every_principal_answers_as_the_table_says",
        ),
    ),
    Mutation(
        "api-open-by-default",
        "authorization (DRF default)",
        "bedside/settings.py",
        '"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"]',
        '"DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.AllowAny"]',
        ("tests/test_authorization_default.py",),
    ),
    Mutation(
        "public-model-host-allowed",
        "nothing leaves the premises",
        "bedside/hosts.py",
        "    if public:\n",
        "    if False:\n",
        ("tests/reasoning/test_hosts.py",),
    ),
    Mutation(
        "no-login-lockout",
        "login lockout",
        "bedside/accounts/sign_in.py",
        "    limit = settings.BEDSIDE_LOGIN_MAX_FAILURES\n",
        "    limit = 10**6\n",
        ("tests/clinical/test_sign_in_lockout.py",),
    ),
    Mutation(
        "admin-login-own-form",
        "issue 17 finding 1: the admin login's own path",
        "bedside/accounts/admin.py",
        "admin.site.login_form = AdminSignInForm\n",
        "",
        (
            "tests/clinical/test_sign_in_lockout.py::test_a_username_locked_at_the_main_sign_in_is_locked_at_the_admin_sign_in",
            "tests/clinical/test_sign_in_lockout.py::test_an_admin_sign_in_is_recorded_with_the_admin_as_actor",
        ),
    ),
    Mutation(
        "password-checked-without-lockout",
        "issue 17 finding 1: authenticate() round the lockout",
        "bedside/settings.py",
        'AUTHENTICATION_BACKENDS = ["bedside.accounts.sign_in.SignInBackend"]',
        'AUTHENTICATION_BACKENDS = ["django.contrib.auth.backends.ModelBackend"]',
        (
            "tests/clinical/test_sign_in_lockout.py::test_a_username_locked_at_the_main_sign_in_is_locked_at_the_admin_sign_in",
        ),
    ),
    Mutation(
        "sign-in-recorded-as-anonymous",
        "issue 18: who signed in",
        "bedside/accounts/sign_in.py",
        "        actor=actor_for(user, request),\n",
        "        actor=actor_for(None, request),\n",
        (
            "tests/clinical/test_sign_in_lockout.py::test_a_clinician_sign_in_is_recorded_with_the_clinician_as_actor",
        ),
    ),
    Mutation(
        "sign-in-attempts-not-serialised",
        "issue 17 finding 4: lockout race",
        "bedside/accounts/sign_in.py",
        '"SELECT pg_advisory_xact_lock(%s, hashtext(%s))"',
        '"SELECT %s, hashtext(%s)"',
        (
            "tests/clinical/test_sign_in_lockout.py::test_a_burst_of_concurrent_attempts_is_counted_as_if_they_came_one_by_one",
        ),
    ),
    Mutation(
        "admin-lists-external-ids",
        "issue 17 finding 2: patient data in the admin",
        "clinical/admin.py",
        'list_display = ("id", "status",',
        'list_display = ("id", "external_id", "status",',
        ("tests/test_admin_site.py::test_the_admin_case_pages_show_no_patient_data",),
    ),
    Mutation(
        "admin-deletes-cases",
        "issue 17 finding 2: no delete in the admin",
        "clinical/admin.py",
        "        return False  # patient records are never deleted",
        "        return True",
        ("tests/test_admin_site.py::test_no_one_can_delete_a_case_through_the_admin",),
    ),
    Mutation(
        "database-deletes-cases",
        "issue 17 finding 2: the database refuses a delete",
        "clinical/migrations/0008_cases_never_deleted.py",
        "CREATE TRIGGER clinical_case_no_delete\n"
        "    BEFORE DELETE ON clinical_case\n"
        "    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_case_delete();\n",
        "",
        ("tests/test_admin_site.py::test_the_database_refuses_to_delete_a_case_a_run_or_a_review",),
    ),
    Mutation(
        "password-reset-not-audited",
        "issue 17 finding 2: admin writes audited",
        "bedside/accounts/access_audit.py",
        "instance._bedside_password_changed = old is not None and old != instance.password",
        "instance._bedside_password_changed = False",
        (
            "tests/test_admin_site.py::test_a_password_reset_in_the_admin_is_audited_without_the_secret",
        ),
    ),
    Mutation(
        "role-group-rename-not-audited",
        "issue 17 finding 2: admin writes audited",
        "bedside/accounts/access_audit.py",
        "    if old == instance.name:\n        return\n",
        "    return\n",
        (
            "tests/test_admin_site.py::test_renaming_and_deleting_a_role_group_in_the_admin_is_audited",
        ),
    ),
    Mutation(
        "role-group-delete-not-audited",
        "issue 17 finding 2: admin writes audited",
        "bedside/accounts/access_audit.py",
        "def _before_group_deleted(sender: Any, instance: Any, **_: Any) -> None:\n",
        "def _before_group_deleted(sender: Any, instance: Any, **_: Any) -> None:\n    return\n",
        (
            "tests/test_admin_site.py::test_renaming_and_deleting_a_role_group_in_the_admin_is_audited",
        ),
    ),
    Mutation(
        "admin-writes-not-audited",
        "issue 17 finding 2: admin writes audited",
        "bedside/accounts/admin.py",
        "        super().save_model(request, obj, form, change)\n",
        "        super().save_model(request, obj, form, change)\n        return\n",
        (
            "tests/test_admin_site.py::test_every_other_admin_write_is_audited_with_the_fields_changed",
        ),
    ),
    Mutation(
        "no-throttling-before-authentication",
        "issue 17 finding 9: throttling by source address",
        "bedside/accounts/throttling.py",
        "    if failures is None or failures < limit:\n        return False\n",
        "    return False\n",
        (
            "tests/clinical/test_source_throttling.py::test_bad_keys_from_one_address_are_refused_before_authentication_and_audited_once",
            "tests/clinical/test_source_throttling.py::test_an_address_over_its_failures_is_refused_before_any_password_is_tried",
        ),
    ),
    Mutation(
        "source-failures-read-with-the-key-ignored",
        "issue 20: the address's failures read in the API key's own query",
        "bedside/accounts/authentication.py",
        "        failures = found.source_failures if found is not None else NOT_READ\n",
        "        failures = None if found is not None else NOT_READ\n",
        (
            "tests/clinical/test_source_throttling.py::test_wrong_secrets_for_a_real_key_are_refused_by_address_with_the_keys_own_read",
        ),
    ),
    Mutation(
        "lockout-by-username-alone",
        "issue 17 finding 9: a stranger locks a clinician out",
        "bedside/accounts/sign_in.py",
        "    from_here = Q(code__in=(FAILED, SUCCEEDED), source_address=source_address)\n",
        "    from_here = Q(code__in=(FAILED, SUCCEEDED))\n",
        ("tests/clinical/test_source_throttling.py::test_a_stranger_cannot_lock_a_clinician_out",),
    ),
    Mutation(
        "unlock-ignored",
        "issue 17 finding 9: unlock",
        "bedside/accounts/sign_in.py",
        "            from_here | Q(code=UNLOCKED),\n",
        "            from_here,\n",
        (
            "tests/clinical/test_source_throttling.py::test_an_administrator_unlocks_a_username_by_command",
            "tests/clinical/test_source_throttling.py::test_an_administrator_unlocks_a_username_in_the_admin_site",
        ),
    ),
    Mutation(
        "audit-source-is-the-proxy",
        "issue 17 finding 6: trusted proxies",
        "audit/actors.py",
        "    source = client_address(request.META) if request is not None else None",
        '    source = request.META.get("REMOTE_ADDR") if request is not None else None',
        (
            "tests/test_client_address.py::test_audit_events_behind_nginx_name_the_client_not_the_proxy",
        ),
    ),
    Mutation(
        "forwarded-for-believed-from-anyone",
        "issue 17 finding 6: trusted proxies",
        "bedside/http/addresses.py",
        "    if not peer or not trusted_proxy(peer):\n",
        "    if not peer:\n",
        (
            "tests/test_client_address.py::test_the_client_is_the_rightmost_address_that_is_not_a_trusted_proxy",
        ),
    ),
    Mutation(
        "access-log-names-the-proxy",
        "issue 17 finding 6: trusted proxies, in the access log",
        "bedside/gunicorn_conf.py",
        '        atoms["h"] = _client(environ) or atoms.get("h", "-")\n',
        "",
        (
            "tests/test_log_injection.py::test_the_access_log_names_the_client_behind_a_trusted_proxy",
        ),
    ),
    Mutation(
        "metrics-checks-only-x-forwarded-for",
        "issue 17 finding 15: /metrics behind a proxy",
        "bedside/http/addresses.py",
        "    if any(header in meta for header in FORWARDING_HEADERS):",
        '    if "HTTP_X_FORWARDED_FOR" in meta:',
        (
            "tests/test_client_address.py::test_metrics_refuse_any_proxied_request_without_the_token",
        ),
    ),
    Mutation(
        "json-stored-in-clear",
        "patient data at rest",
        "bedside/vault/fields.py",
        "        return encrypt(text, purpose=self.purpose())",
        "        return text",
        (
            "tests/clinical/test_encryption.py::test_raw_sql_sees_only_ciphertext_while_the_application_reads_the_case",
        ),
    ),
    Mutation(
        "cds-patient-id-in-clear",
        "patient data at rest",
        "clinical/ehr/cds_hooks/services.py",
        "    patient = lookup_hash(hook.context.patientId)",
        "    patient = hook.context.patientId",
        (
            "tests/clinical/test_encryption.py::test_a_cds_hooks_patient_id_is_stored_only_encrypted_or_hashed",
        ),
    ),
    Mutation(
        "rotation-rewrites-nothing",
        "key rotation",
        "bedside/vault/encryption.py",
        "            row.wrapped_key = wrap(row.id, secret, master)\n"
        "            row.master_key_id = master.id\n",
        "",
        (
            "tests/clinical/test_encryption.py::test_rotation_rewraps_data_keys_only_and_every_record_still_reads",
        ),
    ),
    Mutation(
        "model-error-body-stored",
        "no patient data in logs",
        "reasoning/client.py",
        'f"{method} {path}: HTTP {response.status_code}{refusal_summary(response)}"',
        'f"{method} {path}: HTTP {response.status_code}: {response.text[:500]}"',
        (
            "tests/reasoning/test_case_run.py::test_request_rejected_by_the_server_fails_without_retry",
        ),
    ),
    Mutation(
        "embedded-postgres-trusts-local-users",
        "embedded database (issue 17, finding 3)",
        "devtools/localstack.py",
        "host all all 127.0.0.1/32 scram-sha-256",
        "host all all 127.0.0.1/32 trust",
        (
            "tests/deploy/test_embedded_database.py::test_every_login_needs_its_password_and_only_loopback_listens",
        ),
    ),
    Mutation(
        "older-trusting-cluster-left-as-is",
        "embedded database (issue 17, finding 3)",
        "devtools/localstack.py",
        "    upgrade = not _pg_hba_is_ours(datadir)",
        "    upgrade = False",
        (
            "tests/deploy/test_embedded_database.py::test_a_state_folder_from_before_passwords_is_upgraded_and_keeps_its_data",
        ),
    ),
    Mutation(
        "app-connects-as-superuser",
        "embedded database (issue 17, finding 3)",
        "bedside/paths.py",
        "    return embedded_database_url(EMBEDDED_APP_ROLE)",
        "    return embedded_database_url(EMBEDDED_SUPERUSER)",
        (
            "tests/deploy/test_embedded_database.py::test_the_app_connects_as_a_role_that_cannot_change_the_record",
        ),
    ),
    Mutation(
        "database-superuser-passes-deploy-check",
        "deployment checks (issue 17, finding 3)",
        "bedside/vault/checks.py",
        "    if row is None or row[0]:",
        "    if False:",
        (
            "tests/test_deploy_checks.py::test_check_deploy_fails_when_the_database_login_is_a_superuser",
        ),
    ),
    Mutation(
        "trusted-database-login-passes-deploy-check",
        "deployment checks (issue 17, finding 3)",
        "bedside/vault/checks.py",
        "            psycopg.connect(**probe).close()",
        '            raise psycopg.OperationalError("not probed")',
        (
            "tests/test_deploy_checks.py::test_check_deploy_fails_when_the_database_does_not_check_the_password",
        ),
    ),
    Mutation(
        "checkpoints-unsigned-by-default",
        "signed audit checkpoints (issue 17, finding 3)",
        "bedside/settings.py",
        'BEDSIDE_AUDIT_CHECKPOINT_KEY = _local_secret("audit_checkpoint_key", '
        '"BEDSIDE_AUDIT_CHECKPOINT_KEY")',
        'BEDSIDE_AUDIT_CHECKPOINT_KEY = env_str("BEDSIDE_AUDIT_CHECKPOINT_KEY")',
        (
            "tests/audit/test_checkpoints.py::test_checkpoints_are_signed_by_default_with_a_key_kept_in_the_state_folder",
            "tests/audit/test_checkpoints.py::test_a_rebuilt_chain_fails_against_the_last_signed_checkpoint",
        ),
    ),
    Mutation(
        "unsigned-checkpoint-accepted",
        "signed audit checkpoints (issue 17, finding 3)",
        "audit/services.py",
        "    if key and not checkpoint.signature:",
        "    if False:",
        (
            "tests/audit/test_checkpoints.py::test_a_rebuilt_chain_fails_against_the_last_signed_checkpoint",
        ),
    ),
    Mutation(
        "no-periodic-checkpoint",
        "signed audit checkpoints (issue 17, finding 3)",
        "bedside/settings.py",
        'CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {',
        "_unscheduled = {",
        ("tests/audit/test_checkpoints.py::test_beat_writes_a_signed_checkpoint_periodically",),
    ),
    Mutation(
        "data-keys-from-disk-pass-deploy-check",
        "deployment checks",
        "bedside/vault/checks.py",
        "    if settings.BEDSIDE_DATA_KEYS_FROM_ENVIRONMENT:",
        "    if True:",
        (
            "tests/test_deploy_checks.py::test_check_deploy_fails_when_patient_data_keys_come_from_disk",
        ),
    ),
    # --- Issue 17, the edge findings. ------------------------------------------------------
    Mutation(
        "patient-pages-cacheable",
        "no caching of patient data (issue 17, finding 8)",
        "bedside/middleware.py",
        '        response.headers["Cache-Control"] = "no-store"\n',
        "",
        ("tests/test_no_caching.py::test_an_unknown_path_is_not_cached_either",),
    ),
    Mutation(
        "csv-formulas-pass-through",
        "CSV formula injection (issue 17, finding 5)",
        "audit/exports.py",
        "spreadsheet_safe(value))",
        "value)",
        ("tests/audit/test_export_safety.py",),
    ),
    Mutation(
        "tampered-row-fails-the-fhir-export",
        "FHIR export of a tampered row (issue 17, finding 12)",
        "audit/exports.py",
        '"resource": checked_event_resource(e)}',
        '"resource": audit_event_resource(e)}',
        (
            "tests/audit/test_export_safety.py::test_fhir_export_flags_a_tampered_row_and_exports_the_rest",
        ),
    ),
    Mutation(
        "nul-in-filters-reaches-the-database",
        "NUL byte in a filter (issue 17, finding 11)",
        "bedside/middleware.py",
        r'if "\x00" in name or any("\x00" in value for value in values):',
        "if False:",
        ("tests/test_nul_in_filters.py",),
    ),
    Mutation(
        "access-log-fields-unescaped",
        "log injection, gunicorn's access log (issue 17, finding 10)",
        "bedside/gunicorn_conf.py",
        "name: escape_controls(value) if isinstance(value, str) else value",
        "name: value",
        ("tests/test_log_injection.py::test_a_crlf_in_the_path_is_one_escaped_access_log_line",),
    ),
    Mutation(
        "plain-log-lines-unescaped",
        "log injection, Bedside's own lines (issue 17, finding 10)",
        "bedside/logformat.py",
        "        return escape_controls(super().formatMessage(record))",
        "        return super().formatMessage(record)",
        (
            "tests/test_log_injection.py::test_control_characters_in_any_plain_log_message_are_escaped",
        ),
    ),
    Mutation(
        "status-polling-keeps-the-session-alive",
        "idle timeout (issue 17, finding 14)",
        "clinical/screens/views.py",
        "@background_poll  # the page's own polling: not a request that keeps the session alive\n",
        "",
        (
            "tests/clinical/test_session_idle.py::test_status_polling_does_not_extend_the_session_but_a_page_does",
        ),
    ),
    Mutation(
        "card-markdown-from-model-verbatim",
        "CDS Hooks card Markdown (issue 17, finding 7)",
        "clinical/ehr/cds_hooks/cards.py",
        '    return _MARKDOWN_PUNCTUATION.sub(lambda found: "\\\\" + found.group(), text)',
        "    return text",
        (
            "tests/clinical/test_cds_card_text.py::test_model_text_in_a_card_renders_as_words_not_markup",
        ),
    ),
    Mutation(
        "state-folder-keeps-loose-rights",
        "state folder rights (issue 17, finding 16)",
        "bedside/paths.py",
        "    path.mkdir(parents=True, exist_ok=True, mode=mode)\n    path.chmod(mode)\n",
        "    path.mkdir(parents=True, exist_ok=True, mode=mode)\n",
        ("tests/test_state_permissions.py::test_local_keys_and_their_folder_are_the_owners_only",),
    ),
    Mutation(
        "broker-files-world-readable",
        "state folder rights (issue 17, finding 16)",
        "devtools/localstack.py",
        "        umask=0o077,\n",
        "",
        (
            "tests/test_state_permissions.py::test_the_brokers_append_only_file_and_log_are_the_owners_only",
        ),
    ),
    Mutation(
        "directory-roles-only-added",
        "issue 19: roles re-read from the directory groups at every sign-in",
        "bedside/accounts/directory.py",
        "new_roles=roles_from_groups(group_dns, role_groups()),",
        "new_roles=roles_from_groups(group_dns, role_groups())"
        " | set(user.groups.values_list('name', flat=True)),",
        (
            "tests/test_directory_sign_in.py::test_a_person_taken_out_of_their_group_loses_the_role_at_the_next_sign_in",
        ),
    ),
    Mutation(
        "disabled-directory-person-asked-locally",
        "issue 19: a person disabled in the directory refused with the reason",
        "bedside/accounts/directory.py",
        "if _known_directory_person(username):",
        "if False:",
        (
            "tests/test_directory_sign_in.py::test_a_person_disabled_after_signing_in_before_is_refused_once_with_the_reason",
        ),
    ),
    Mutation(
        "directory-attempt-judged-twice",
        "issue 19: one attempt, one event, one count towards the lockout",
        "bedside/accounts/directory.py",
        "            raise PermissionDenied\n",
        "            return None\n",
        (
            "tests/test_directory_sign_in.py::test_five_wrong_directory_passwords_lock_the_username_like_a_local_one",
        ),
    ),
    Mutation(
        "stale-local-password-kept",
        "issue 19: a directory person's old local password stops working",
        "bedside/accounts/directory.py",
        "        if user.has_usable_password():",
        "        if False:",
        (
            "tests/test_directory_sign_in.py::test_a_local_password_never_signs_a_directory_person_in",
        ),
    ),
    Mutation(
        "no-directory-recheck",
        "issue 19: sessions of people disabled in the directory end",
        "bedside/accounts/directory.py",
        "        if present:\n",
        "        if True:\n",
        (
            "tests/test_directory_sign_in.py::test_a_session_ends_at_the_first_request_after_the_recheck_once_disabled",
        ),
    ),
    Mutation(
        "directory-outage-mid-session-not-handled",
        "issue 19: a directory outage keeps sessions",
        "bedside/accounts/directory.py",
        "        except ldap.LDAPError as exc:\n"
        '            logger.warning(\n                "could not re-check',
        "        except ZeroDivisionError as exc:\n"
        '            logger.warning(\n                "could not re-check',
        (
            "tests/test_directory_sign_in.py::test_a_session_is_kept_with_a_warning_when_the_directory_cannot_be_asked",
        ),
    ),
    Mutation(
        "directory-down-not-named",
        "issue 19: the sign-in page names the directory that is down",
        "bedside/accounts/sign_in.py",
        'if getattr(self.request, "bedside_directory_down", False):',
        "if False:",
        (
            "tests/test_directory_sign_in.py::test_an_unreachable_directory_is_named_and_the_break_glass_account_still_signs_in",
        ),
    ),
    Mutation(
        "directory-down-blocks-break-glass",
        "issue 19: the break-glass account signs in with the directory down",
        "bedside/accounts/directory.py",
        "            raise self._pass() from exc",
        "            return None",
        (
            "tests/test_directory_sign_in.py::test_an_unreachable_directory_is_named_and_the_break_glass_account_still_signs_in",
        ),
    ),
    Mutation(
        "directory-certificate-not-checked",
        "issue 19: LDAPS checks the directory's certificate against the CA",
        "bedside/accounts/directory.py",
        "options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_DEMAND",
        "options[ldap.OPT_X_TLS_REQUIRE_CERT] = ldap.OPT_X_TLS_NEVER",
        (
            "tests/test_directory_sign_in.py::test_ldaps_checks_the_directory_certificate_against_the_hospital_ca",
        ),
    ),
    Mutation(
        "sso-nonce-not-checked",
        "single sign-on: a token from another sign-in (issue 19)",
        "bedside/accounts/sso.py",
        'if not hmac.compare_digest(str(claims.get("nonce", "")).encode(), '
        '(nonce or "").encode()):',
        "if False:",
        (
            "tests/clinical/test_sign_in_sso.py::test_an_id_token_with_another_nonce_is_refused",
            "tests/clinical/test_sign_in_sso.py::test_the_verify_path_checks_signature_and_nonce_of_a_real_token",
        ),
    ),
    Mutation(
        "sso-signature-not-checked",
        "single sign-on: a tampered ID token (issue 19)",
        "bedside/accounts/sso.py",
        'options={"require": ["iss", "aud", "exp", "iat", "sub"]},',
        'options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_signature": False},',
        ("tests/clinical/test_sign_in_sso.py::test_a_tampered_id_token_is_refused_and_audited",),
    ),
    Mutation(
        "sso-expiry-not-checked",
        "single sign-on: an expired ID token (issue 19)",
        "bedside/accounts/sso.py",
        'options={"require": ["iss", "aud", "exp", "iat", "sub"]},',
        'options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_exp": False},',
        ("tests/clinical/test_sign_in_sso.py::test_an_expired_id_token_is_refused_and_audited",),
    ),
    Mutation(
        "sso-audience-not-checked",
        "single sign-on: a token issued to another client (issue 19)",
        "bedside/accounts/sso.py",
        'options={"require": ["iss", "aud", "exp", "iat", "sub"]},',
        'options={"require": ["iss", "aud", "exp", "iat", "sub"], "verify_aud": False},',
        ("tests/clinical/test_sign_in_sso.py::test_an_id_token_for_another_client_is_refused",),
    ),
    Mutation(
        "sso-state-not-checked-here",
        "single sign-on: a callback Bedside did not start (issue 19)",
        "bedside/accounts/sso_views.py",
        "elif not isinstance(states, dict) or state not in states:",
        "elif False:",
        (
            "tests/clinical/test_sign_in_sso.py::test_a_callback_with_a_state_bedside_did_not_send_is_refused_and_audited",
        ),
    ),
    Mutation(
        "sso-roles-not-from-groups",
        "single sign-on: roles follow the hospital's groups (issue 19)",
        "bedside/accounts/sso.py",
        "new_roles = roles_from_groups(groups_of(claims), role_groups())",
        'new_roles = {"clinician"}',
        (
            "tests/clinical/test_sign_in_sso.py::test_first_sign_in_makes_the_person_with_the_roles_of_their_groups",
            "tests/clinical/test_sign_in_sso.py::test_a_group_change_at_the_provider_changes_the_role_at_the_next_sign_in",
            "tests/clinical/test_sign_in_sso.py::test_a_person_in_no_mapped_group_is_signed_in_with_no_role_and_told_to_ask_it",
        ),
    ),
    Mutation(
        "sso-username-taken-over",
        "single sign-on: a local account's name (issue 19)",
        "bedside/accounts/sso.py",
        "if user_model.objects.filter(username__iexact=username).exists():",
        "if False:",
        (
            "tests/clinical/test_sign_in_sso.py::test_a_hospital_user_name_held_by_a_local_account_is_not_merged",
        ),
    ),
    Mutation(
        "local-login-not-switched-off",
        "BEDSIDE_LOCAL_LOGIN=false (issue 19)",
        "bedside/accounts/sign_in.py",
        "return bool(settings.BEDSIDE_LOCAL_LOGIN or user.is_superuser)",
        "return True",
        (
            "tests/clinical/test_sign_in_sso.py::test_without_local_login_a_clinician_password_is_refused_but_a_superuser_signs_in",
        ),
    ),
    Mutation(
        "sso-no-single-logout",
        "single logout (issue 19)",
        "bedside/accounts/sso_views.py",
        "            if url:\n",
        "            if False:\n",
        (
            "tests/clinical/test_sign_in_sso.py::test_signing_out_ends_the_session_here_and_at_the_provider",
        ),
    ),
    Mutation(
        "sso-provider-down-is-a-500",
        "single sign-on: provider unreachable (issue 19)",
        "bedside/accounts/sso_views.py",
        "        except sso.ProviderUnavailable as exc:\n",
        "        except ZeroDivisionError as exc:\n",
        (
            "tests/clinical/test_sign_in_sso.py::test_the_provider_down_is_a_clear_page_and_break_glass_still_signs_in",
        ),
    ),
    # --- Issue 19: break-glass access and the auditors' review of it; the people screen. ---
    Mutation(
        "emergency-scope-held-by-every-key",
        "break-glass behind an explicit scope (issue 19)",
        "bedside/accounts/authentication.py",
        "        return scope not in EXPLICIT_SCOPES\n",
        "        return True\n",
        (
            "tests/clinical/test_emergency_access.py::test_api_key_issued_without_scopes_does_not_hold_emergency_access",
        ),
    ),
    Mutation(
        "emergency-access-without-a-reason",
        "break-glass needs a stated reason (issue 19)",
        "clinical/schemas.py",
        '            EMERGENCY_REASON_MIN,\n            error="reason_too_short",',
        '            0,\n            error="reason_too_short",',
        (
            "tests/clinical/test_emergency_access.py::test_emergency_access_without_a_real_reason_is_refused_next_to_the_box",
            "tests/clinical/test_emergency_access.py::test_api_emergency_access_without_a_reason_is_a_400_naming_it",
        ),
    ),
    Mutation(
        "emergency-access-never-ends",
        "break-glass lasts BEDSIDE_EMERGENCY_ACCESS_MINUTES (issue 19)",
        "clinical/selectors.py",
        "case_id=case_id, person=person, granted_at__lte=now, expires_at__gt=now",
        "case_id=case_id, person=person",
        (
            "tests/clinical/test_emergency_access.py::test_an_expired_emergency_access_is_refused_again_with_when_it_ended",
            "tests/clinical/test_emergency_access.py::test_api_emergency_access_ends_after_its_minutes",
        ),
    ),
    Mutation(
        "emergency-access-not-audited",
        "break-glass writes its own audit event (issue 19)",
        "clinical/services.py",
        "        record(\n            actor=actor,\n            action=Action.EXECUTE,\n"
        "            code=EMERGENCY_ACCESS_GRANTED,",
        "        (lambda **_: None)(\n            actor=actor,\n"
        "            action=Action.EXECUTE,\n            code=EMERGENCY_ACCESS_GRANTED,",
        (
            "tests/clinical/test_emergency_access.py::test_emergency_access_opens_the_case_with_its_banner_and_is_audited",
        ),
    ),
    Mutation(
        "emergency-access-may-review",
        "break-glass is read only (issue 19)",
        "clinical/screens/views.py",
        "        answer is not None and roles.CLINICIAN in roles.roles_of(request.user)"
        " and not emergency\n",
        "        answer is not None and roles.CLINICIAN in roles.roles_of(request.user)\n",
        ("tests/clinical/test_emergency_access.py::test_emergency_access_is_read_only",),
    ),
    Mutation(
        "emergency-offered-to-every-role",
        "break-glass is for clinicians (issue 19)",
        "clinical/screens/presenting.py",
        "    if roles.CLINICIAN not in roles.roles_of(user)"
        " or not Case.objects.filter(id=case_id).exists():",
        "    if not Case.objects.filter(id=case_id).exists():",
        (
            "tests/clinical/test_emergency_access.py::test_auditors_are_not_offered_emergency_access",
        ),
    ),
    Mutation(
        "emergency-access-rows-deletable",
        "break-glass rows are never deleted (issue 19)",
        "clinical/migrations/0010_emergency_access.py",
        "CREATE TRIGGER clinical_emergencyaccess_no_delete\n"
        "    BEFORE DELETE ON clinical_emergencyaccess\n"
        "    FOR EACH ROW EXECUTE FUNCTION bedside_refuse_case_delete();\n",
        "",
        (
            "tests/clinical/test_emergency_access.py::test_emergency_accesses_cannot_be_deleted_or_rewritten",
        ),
    ),
    Mutation(
        "emergency-access-rewritable",
        "break-glass rows change only by their one review (issue 19)",
        "clinical/migrations/0010_emergency_access.py",
        "    IF OLD.reviewed_at IS NOT NULL\n",
        "    IF false\n",
        (
            "tests/clinical/test_emergency_access.py::test_emergency_accesses_cannot_be_deleted_or_rewritten",
        ),
    ),
    Mutation(
        "emergency-reviewed-without-a-note",
        "the auditor's own note (issue 19)",
        "clinical/schemas.py",
        '            EMERGENCY_REASON_MIN,\n            error="note_too_short",',
        '            0,\n            error="note_too_short",',
        (
            "tests/audit/test_emergency_review.py::test_marking_reviewed_needs_the_auditors_own_note",
        ),
    ),
    Mutation(
        "emergency-reviewed-by-its-own-user",
        "no one reviews their own break-glass (issue 19)",
        "clinical/services.py",
        "        if grant.person_id == reviewer.pk:",
        "        if False:",
        (
            "tests/audit/test_emergency_review.py::test_an_access_is_reviewed_once_and_never_by_its_own_user",
        ),
    ),
    Mutation(
        "emergency-reviewed-stays-waiting",
        "the review list until reviewed (issue 19)",
        "audit/selectors.py",
        "        grants = grants.filter(reviewed_at__isnull=True)\n",
        "        pass\n",
        (
            "tests/audit/test_emergency_review.py::test_marked_reviewed_it_leaves_the_waiting_list_and_stays_under_reviewed",
        ),
    ),
    Mutation(
        "people-sign-in-method-ignored",
        "how each person signed in (issue 19)",
        "audit/selectors.py",
        'named = details.get("method", "local") if isinstance(details, dict) else "local"',
        'named = "local"',
        ("tests/audit/test_people.py::test_each_person_shows_how_they_last_signed_in",),
    ),
]


def run(mutation: Mutation) -> tuple[bool, float, str]:
    path = ROOT / mutation.path
    original = path.read_text()
    if mutation.before not in original:
        return False, 0.0, f"the protected code was not found in {mutation.path}"
    path.write_text(original.replace(mutation.before, mutation.after, 1))
    started = time.monotonic()
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *mutation.tests],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        path.write_text(original)
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    caught = result.returncode != 0
    return caught, time.monotonic() - started, (lines[-1] if lines else result.stderr[-300:])


def main(names: list[str]) -> int:
    chosen = [m for m in MUTATIONS if not names or m.name in names]
    missed = 0
    print("| mutation | area | tests | caught | seconds |\n| --- | --- | --- | --- | --- |")
    for mutation in chosen:
        caught, seconds, last = run(mutation)
        missed += not caught
        tests = ", ".join(t.split("::")[-1] for t in mutation.tests)
        verdict = "yes" if caught else f"**no** ({last})"
        print(f"| {mutation.name} | {mutation.area} | {tests} | {verdict} | {seconds:.0f} |")
        if caught:
            print(f"<!-- {mutation.name}: {last} -->")
    return 1 if missed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
