"""Django settings for Bedside, read only from environment variables.

Every default is safe for a single machine (embedded PostgreSQL, embedded broker, a
local vLLM on loopback); production sets the same names to the hospital's services.
docs/settings.md lists every name with its default and meaning.
"""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from bedside import local_secrets, paths
from bedside.env import env_bool, env_float, env_int, env_list, env_str
from bedside.vault import keyring

BASE_DIR = paths.PROJECT_ROOT
STATE_DIR = paths.state_dir()


def _local_secret(name: str, setting: str) -> str:
    """A key from the environment, else from the state folder of a single-machine install.
    Read only: ``python -m bedside.local_secrets`` (or `make run`) makes the files."""
    value = env_str(setting)
    if value:
        return value
    path = STATE_DIR / name
    try:
        value = path.read_text().strip()
    except FileNotFoundError:
        value = ""
    if not value:
        raise ImproperlyConfigured(
            f"{setting} is not set and {path} does not exist: set {setting}, or make the "
            f"local keys with `{local_secrets.COMMAND}` (make run and make test do)"
        )
    return value


SECRET_KEY = _local_secret("secret_key", "DJANGO_SECRET_KEY")
DEBUG = env_bool("DJANGO_DEBUG", False)
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost"])
if "*" in ALLOWED_HOSTS:
    raise ImproperlyConfigured("DJANGO_ALLOWED_HOSTS must name hosts; '*' is refused")
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "bedside.vault",
    "audit",
    "bedside.accounts",
    "reasoning",
    "clinical",
]

MIDDLEWARE = [
    # First, so that every response (HTTPS redirects, static files) carries its id.
    "bedside.middleware.RequestIdMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below WhiteNoise, so static files keep their long cache; every other response: no-store.
    "bedside.middleware.NoStoreMiddleware",
    "bedside.middleware.BodySizeLimitMiddleware",
    "bedside.middleware.NulInQueryMiddleware",
    "bedside.middleware.DatabaseUnavailableMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "bedside.middleware.IdleTimeoutMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "bedside.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "bedside.urls"
WSGI_APPLICATION = "bedside.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "clinical" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "bedside.context_processors.navigation",
                # The chain-broken banner on every page an auditor or admin opens.
                "audit.views.chain_alarm",
            ],
        },
    },
]

DATABASES = {
    "default": dj_database_url.parse(
        env_str("DATABASE_URL") or paths.default_database_url(),
        conn_max_age=env_int("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
DATABASES["default"].setdefault("OPTIONS", {})
# Fail fast when PostgreSQL is down instead of hanging a request or a worker thread.
DATABASES["default"]["OPTIONS"].setdefault(
    "connect_timeout", env_int("DATABASE_CONNECT_TIMEOUT_S", 10, minimum=1)
)
if DATABASES["default"]["ENGINE"] != "django.db.backends.postgresql":
    raise ImproperlyConfigured("Bedside runs on PostgreSQL only (DATABASE_URL=postgresql://...)")

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]
# The only password check: Django's, behind the sign-in lockout (the sign-in page, the
# admin site's login and any other authenticate() call go through it).
AUTHENTICATION_BACKENDS = ["bedside.accounts.sign_in.SignInBackend"]
LOGIN_URL = "/accounts/login/"
LOGIN_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = STATE_DIR / "static"  # made by bedside.local_secrets, filled by collectstatic
# Hashed, compressed copies (bedside.<hash>.css): a page never pairs with a stale script, and
# whitenoise serves them with a far-future cache header. collectstatic writes the manifest;
# `make run`, the deploy runbook and the test session run it.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Request bodies over the route's limit are refused with 413 by our middleware
# (bedside.middleware.body_limit). Reviews, feedback, forms: small.
BEDSIDE_MAX_BODY_BYTES = env_int("BEDSIDE_MAX_BODY_BYTES", 1_048_576, minimum=1024)
# The routes that take a patient's record, where several MB is normal: case intake (our
# JSON or a FHIR Bundle) and CDS Hooks calls (their prefetch).
BEDSIDE_MAX_FHIR_BODY_BYTES = env_int("BEDSIDE_MAX_FHIR_BODY_BYTES", 8_388_608, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = max(BEDSIDE_MAX_BODY_BYTES, BEDSIDE_MAX_FHIR_BODY_BYTES)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "bedside.accounts.authentication.ApiKeyAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PARSER_CLASSES": ["bedside.http.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_PAGINATION_CLASS": "bedside.http.pagination.CasePagination",
    "EXCEPTION_HANDLER": "bedside.http.errors.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
    "DEFAULT_THROTTLE_CLASSES": ["bedside.accounts.throttling.ApiKeyRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
}

# --- OpenAPI (/api/v1/schema/), Swagger UI and Redoc served from our own static files ------
SPECTACULAR_SETTINGS = {
    "TITLE": "Bedside API",
    "DESCRIPTION": "On-premises clinical decision support: submit cases (our JSON or FHIR R4), "
    "read the model's answer with its reasoning trace and confidence, record clinician "
    'reviews. Errors are always `{"errors": [{"loc": [...], "msg": "..."}]}`.',
    "VERSION": "1",
    "OAS_VERSION": "3.1.0",
    # The completion callback an integration key's callback URL receives.
    "WEBHOOKS": ["clinical.openapi.CASE_FINISHED_WEBHOOK"],
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "clinical.openapi.append_cds_components",
    ],
}

# --- Celery -----------------------------------------------------------------------------
CELERY_BROKER_URL = env_str("CELERY_BROKER_URL") or paths.default_broker_url()
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True  # results live in PostgreSQL, never in the broker
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True  # a worker that dies mid-case leaves its message unacked
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_DEFAULT_QUEUE = env_str("BEDSIDE_QUEUE", "cases")
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# The longest a case may take end to end (all model retries included). Broker redelivery
# windows must be longer than this, or a slow case would be handed to a second worker.
BEDSIDE_CASE_TIMEOUT_S = env_int("BEDSIDE_CASE_TIMEOUT_S", 900, minimum=30)
CELERY_TASK_TIME_LIMIT = BEDSIDE_CASE_TIMEOUT_S
CELERY_TASK_SOFT_TIME_LIMIT = BEDSIDE_CASE_TIMEOUT_S - 15
CELERY_BROKER_TRANSPORT_OPTIONS: dict[str, Any] = {
    "visibility_timeout": BEDSIDE_CASE_TIMEOUT_S * 4,  # Redis: redelivery of unacked tasks
    "max_retries": 3,
}
# A worker that loses the broker lets its cases finish (their results are recorded by claim;
# the redelivered message then finds the case done) rather than cancelling them: stated
# here because Celery 6 changes the default.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = False
# Celery lowers the prefetch count after a reconnect and raises it as tasks finish; with
# RabbitMQ that left a worker stuck taking nothing more after a broker restart (celery#9512;
# tests/faults/test_broker_restart.py caught it: 6 of 24 cases completed). Prefetch is one
# per thread here, so there is nothing to over-fetch.
CELERY_WORKER_ENABLE_PREFETCH_COUNT_REDUCTION = False
# Publishing a task must not hang a request when the broker is down (the sweeper re-sends).
CELERY_BROKER_CONNECTION_TIMEOUT = 5
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5}

# Stat and urgent cases on a queue of their own ("cases.stat" by default), consumed ahead
# of routine ones; set empty for one queue for all. On by default: a stat case waiting
# behind a routine backlog is the failure that matters. Workers must list it (a worker
# started without --queues does; deploy/README.md, "Several worker hosts").
BEDSIDE_STAT_QUEUE = env_str("BEDSIDE_STAT_QUEUE", f"{CELERY_TASK_DEFAULT_QUEUE}.stat")
BEDSIDE_STAT_PRIORITIES = env_list("BEDSIDE_STAT_PRIORITIES", ["stat", "urgent"])
CELERY_TASK_ROUTES = ("clinical.routing.route_case_task",)
if BEDSIDE_STAT_QUEUE and BEDSIDE_STAT_QUEUE != CELERY_TASK_DEFAULT_QUEUE:
    from kombu import Queue

    # A worker started without --queues consumes both, the stat queue first.
    CELERY_TASK_QUEUES = (Queue(BEDSIDE_STAT_QUEUE), Queue(CELERY_TASK_DEFAULT_QUEUE))
# Redis: a worker on several queues empties them in the order given (stat first) rather than
# in turn. RabbitMQ ignores this; there, dedicated stat workers keep stat cases ahead.
CELERY_BROKER_TRANSPORT_OPTIONS["queue_order_strategy"] = "priority"

# The sweeper (Celery beat) re-sends cases left `queued` longer than this with no retry due.
BEDSIDE_STALE_QUEUED_S = env_int("BEDSIDE_STALE_QUEUED_S", 300, minimum=10)
CELERY_BEAT_SCHEDULE = {
    "resend-stale-cases": {"task": "reasoning.resend_stale_cases", "schedule": 60.0},
    # The audit chain's sequencer: links committed events into the hash chain, so none
    # stays unlinked longer than this (audit.services.CHAIN_INTERVAL_S; auditors' reads
    # link first too). It expires rather than queue up behind a busy worker.
    "link-audit-events": {
        "task": "audit.chain_pending",
        "schedule": 1.0,
        "options": {"expires": 5},
    },
}

# --- The model server -----------------------------------------------------------------------
BEDSIDE_MODEL_BASE_URL = env_str("BEDSIDE_MODEL_BASE_URL") or paths.default_model_base_url()
BEDSIDE_MODEL_NAME = env_str("BEDSIDE_MODEL_NAME", paths.LOCAL_MODEL_NAME)
BEDSIDE_MODEL_API_KEY = env_str("BEDSIDE_MODEL_API_KEY")
BEDSIDE_MODEL_ALLOWED_HOSTS = env_list("BEDSIDE_MODEL_ALLOWED_HOSTS", [])
BEDSIDE_SAMPLES = env_int("BEDSIDE_SAMPLES", 3, minimum=1)
BEDSIDE_TEMPERATURE = env_float("BEDSIDE_TEMPERATURE", 0.6)
BEDSIDE_TOP_P = env_float("BEDSIDE_TOP_P", 0.95)
BEDSIDE_MAX_TOKENS = env_int("BEDSIDE_MAX_TOKENS", 1024, minimum=64)
# Unset: every run samples afresh. Set: every request carries this seed (vLLM's per-request
# seed), so the same case on the same model server gives the same samples again: to
# reproduce an answer, and for the benchmark's like-for-like comparison. Recorded with each
# run's parameters. Cases only; the validation run (manage.py evaluate) keeps its own.
BEDSIDE_MODEL_SEED: int | None = (
    env_int("BEDSIDE_MODEL_SEED", 0, minimum=0) if env_str("BEDSIDE_MODEL_SEED").strip() else None
)
# `manage.py evaluate`: the answer to a multiple-choice vignette is short; items in flight at once.
BEDSIDE_EVAL_MAX_TOKENS = env_int("BEDSIDE_EVAL_MAX_TOKENS", 384, minimum=64)
BEDSIDE_EVAL_CONCURRENCY = env_int("BEDSIDE_EVAL_CONCURRENCY", 4, minimum=1)
# A calibration fitted on fewer validation items than this is neither fitted nor applied:
# on a handful of items its steps are noise, and the clinician would read them as accuracy.
BEDSIDE_CALIBRATION_MIN_ITEMS = env_int("BEDSIDE_CALIBRATION_MIN_ITEMS", 30, minimum=2)
BEDSIDE_MODEL_TIMEOUT_S = env_int("BEDSIDE_MODEL_TIMEOUT_S", 300, minimum=5)
# Retries while the model server is unreachable: backoff doubles from BASE up to MAX.
BEDSIDE_MODEL_MAX_RETRIES = env_int("BEDSIDE_MODEL_MAX_RETRIES", 8, minimum=0)
BEDSIDE_RETRY_BACKOFF_BASE_S = env_int("BEDSIDE_RETRY_BACKOFF_BASE_S", 5, minimum=1)
BEDSIDE_RETRY_BACKOFF_MAX_S = env_int("BEDSIDE_RETRY_BACKOFF_MAX_S", 300, minimum=1)
# A case that keeps killing its worker ends `failed` after this many claims.
BEDSIDE_MAX_ATTEMPTS = env_int("BEDSIDE_MAX_ATTEMPTS", 5, minimum=1)
# RabbitMQ's consumer_timeout (rabbitmq.conf; its default is 30 minutes). A worker holds a
# case's message unacknowledged while it waits for a retry's countdown (at most the backoff
# cap) and then runs it (at most the case timeout): longer, and RabbitMQ closes the channel.
BEDSIDE_BROKER_CONSUMER_TIMEOUT_S = env_int("BEDSIDE_BROKER_CONSUMER_TIMEOUT_S", 1800, minimum=60)
if CELERY_BROKER_URL.startswith(("amqp", "pyamqp")) and (
    BEDSIDE_CASE_TIMEOUT_S + BEDSIDE_RETRY_BACKOFF_MAX_S >= BEDSIDE_BROKER_CONSUMER_TIMEOUT_S
):
    raise ImproperlyConfigured(
        f"BEDSIDE_CASE_TIMEOUT_S ({BEDSIDE_CASE_TIMEOUT_S}) + BEDSIDE_RETRY_BACKOFF_MAX_S "
        f"({BEDSIDE_RETRY_BACKOFF_MAX_S}) must stay under RabbitMQ's consumer_timeout "
        f"(BEDSIDE_BROKER_CONSUMER_TIMEOUT_S={BEDSIDE_BROKER_CONSUMER_TIMEOUT_S}); raise "
        "consumer_timeout in rabbitmq.conf and this setting with it"
    )
# Several model servers (BEDSIDE_MODEL_BASE_URL comma-separated): one that cannot be reached
# is left alone this long, then asked /models before it gets requests again.
BEDSIDE_MODEL_COOLDOWN_S = env_int("BEDSIDE_MODEL_COOLDOWN_S", 30, minimum=1)

# --- Logging: structured enough to grep, never patient data (we log ids, not inputs) ---------
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {
            "class": "bedside.logformat.PlainFormatter",  # control characters escaped
            "format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s",
        }
    },
    # Every line, web and worker (bedside/celery.py), carries the id of its request.
    "filters": {"request_id": {"()": "bedside.logformat.RequestIdFilter"}},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "plain",
            "filters": ["request_id"],
        }
    },
    "root": {"handlers": ["console"], "level": env_str("BEDSIDE_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # httpx logs each request's URL at INFO: a FHIR search to complete a CDS Hooks
        # prefetch carries the patient's id in its query.
        "httpx": {"level": "WARNING"},
    },
}

# --- Production hardening switched on by DJANGO_DEBUG=false behind TLS ----------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env_int("BEDSIDE_SESSION_IDLE_S", 1800, minimum=60)
# Idle timeout, not absolute: bedside.middleware.IdleTimeoutMiddleware saves the session on
# each request a person makes (not on the case page's status polling).
SESSION_SAVE_EVERY_REQUEST = False
# Sign-in lockout: this many failures for one username within BEDSIDE_LOGIN_LOCKOUT_S
# refuse that username for BEDSIDE_LOGIN_LOCKOUT_S after the last failure.
BEDSIDE_LOGIN_MAX_FAILURES = env_int("BEDSIDE_LOGIN_MAX_FAILURES", 5, minimum=1)
BEDSIDE_LOGIN_LOCKOUT_S = env_int("BEDSIDE_LOGIN_LOCKOUT_S", 900, minimum=1)
# Break-glass: how long a clinician's emergency access to another clinician's case lasts.
BEDSIDE_EMERGENCY_ACCESS_MINUTES = env_int("BEDSIDE_EMERGENCY_ACCESS_MINUTES", 60, minimum=1)
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
# The reverse proxies in front of Bedside (addresses or CIDR ranges, comma-separated): only
# a request whose peer is one of them has its X-Forwarded-For read for the client's address
# (bedside/http/addresses.py). Empty: the peer is the client.
BEDSIDE_TRUSTED_PROXIES = env_list("BEDSIDE_TRUSTED_PROXIES", [])
for _proxy in BEDSIDE_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError as _exc:
        raise ImproperlyConfigured(
            f"BEDSIDE_TRUSTED_PROXIES: {_proxy!r} is not an address or CIDR range"
        ) from _exc
if env_bool("BEDSIDE_BEHIND_TLS_PROXY", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = 31_536_000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    # HSTS preload is a public list of internet domains; a hospital's internal host name
    # has no place on it, so the check that asks for it is silenced, not satisfied.
    SILENCED_SYSTEM_CHECKS = ["security.W021"]

# --- EHR integration --------------------------------------------------------------------------
# Failed authentications (bad passwords, bad API keys) a minute from one network address;
# past it, that address is refused with 429 before its credentials are checked, and its
# further failures that minute are counted in one auth.throttled event, not one each.
BEDSIDE_AUTH_FAILURES_PER_MIN = env_int("BEDSIDE_AUTH_FAILURES_PER_MIN", 30, minimum=1)
# Requests a minute per integration key (a key may set its own; 0 means unlimited).
BEDSIDE_KEY_RATE_LIMIT_PER_MIN = env_int("BEDSIDE_KEY_RATE_LIMIT_PER_MIN", 600, minimum=0)
# Completion callbacks go to loopback/private addresses, or to hosts named here.
BEDSIDE_CALLBACK_ALLOWED_HOSTS = env_list("BEDSIDE_CALLBACK_ALLOWED_HOSTS", [])
BEDSIDE_CALLBACK_TIMEOUT_S = env_int("BEDSIDE_CALLBACK_TIMEOUT_S", 10, minimum=1)
# Attempts per callback; the wait doubles from BASE between attempts (at most an hour).
BEDSIDE_CALLBACK_MAX_ATTEMPTS = env_int("BEDSIDE_CALLBACK_MAX_ATTEMPTS", 6, minimum=1)
BEDSIDE_CALLBACK_BACKOFF_BASE_S = env_int("BEDSIDE_CALLBACK_BACKOFF_BASE_S", 30, minimum=1)
# Where integrators reach Bedside: the absolute `links.self` of a callback (sent by a worker,
# with no request to take the host from).
BEDSIDE_PUBLIC_URL = env_str("BEDSIDE_PUBLIC_URL") or "http://127.0.0.1:8000"
if not BEDSIDE_PUBLIC_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        f"BEDSIDE_PUBLIC_URL must be an http(s) URL, not {BEDSIDE_PUBLIC_URL!r}"
    )

# --- CDS Hooks ----------------------------------------------------------------------------------
# EHRs allowed to call are registered at run time (manage.py cds_client, the admin site).
# This setting seeds that registry: an issuer named here, as JSON
# {"<JWT iss>": {"jwks": {"keys": [<public JWK>, ...]}}}, is copied into it on its first call
# (give BEDSIDE_CDS_HOOKS_CLIENTS_FILE for a file); from then on the registry decides.
try:
    BEDSIDE_CDS_HOOKS_CLIENTS = json.loads(env_str("BEDSIDE_CDS_HOOKS_CLIENTS") or "{}")
except ValueError as exc:
    raise ImproperlyConfigured(f"BEDSIDE_CDS_HOOKS_CLIENTS is not JSON: {exc}") from exc
if not isinstance(BEDSIDE_CDS_HOOKS_CLIENTS, dict) or not all(
    isinstance(v, dict) and isinstance(v.get("jwks", {}).get("keys"), list)
    for v in BEDSIDE_CDS_HOOKS_CLIENTS.values()
):
    raise ImproperlyConfigured(
        'BEDSIDE_CDS_HOOKS_CLIENTS must be {"<issuer>": {"jwks": {"keys": [...]}}}'
    )
# A hook call whose prefetch lacks what the templates ask for is completed from the EHR's
# fhirServer: only loopback/private addresses or hosts named here; one deadline for all the
# queries of a call, and a cap on each answer's size.
BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS = env_list("BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS", [])
BEDSIDE_FHIR_FETCH_TIMEOUT_S = env_float("BEDSIDE_FHIR_FETCH_TIMEOUT_S", 3.0)
if BEDSIDE_FHIR_FETCH_TIMEOUT_S <= 0:
    raise ImproperlyConfigured("BEDSIDE_FHIR_FETCH_TIMEOUT_S must be more than 0")
BEDSIDE_FHIR_FETCH_MAX_BYTES = env_int("BEDSIDE_FHIR_FETCH_MAX_BYTES", 5_000_000, minimum=1024)
# A hook call whose fhirAuthorization grants write access has its case's answer written back
# to that fhirServer (a FHIR Communication) when the case finishes: the same host rule as the
# fetch, a time limit per attempt, a bounded number of attempts with a doubling wait.
BEDSIDE_FHIR_WRITEBACK_TIMEOUT_S = env_int("BEDSIDE_FHIR_WRITEBACK_TIMEOUT_S", 10, minimum=1)
BEDSIDE_FHIR_WRITEBACK_MAX_ATTEMPTS = env_int("BEDSIDE_FHIR_WRITEBACK_MAX_ATTEMPTS", 4, minimum=1)
BEDSIDE_FHIR_WRITEBACK_BACKOFF_BASE_S = env_int(
    "BEDSIDE_FHIR_WRITEBACK_BACKOFF_BASE_S", 15, minimum=1
)
# JWKS URLs of EHR clients: loopback/private addresses or hosts named here; their keys are
# cached this long (and fetched again early for a token whose kid is not among them).
BEDSIDE_JWKS_ALLOWED_HOSTS = env_list("BEDSIDE_JWKS_ALLOWED_HOSTS", [])
BEDSIDE_JWKS_CACHE_S = env_int("BEDSIDE_JWKS_CACHE_S", 3600, minimum=0)
# A card whose confidence is below this is a warning, not info (red flags make it critical).
BEDSIDE_CDS_LOW_CONFIDENCE = env_float("BEDSIDE_CDS_LOW_CONFIDENCE", 0.5)
# How the model's answers are labelled to clinicians (on every CDS Hooks card's source).
BEDSIDE_MODEL_VALIDATION_LABEL = env_str(
    "BEDSIDE_MODEL_VALIDATION_LABEL", "not validated for clinical use"
)

# --- Patient data at rest -----------------------------------------------------------------
# Case input, external ids, answers, traces and review text are stored encrypted (AES-256-GCM)
# under data keys wrapped by the first master key (bedside/vault/encryption.py). Unset: random keys
# kept in the state folder (made by bedside.local_secrets), for a single machine only (check
# --deploy refuses it).
BEDSIDE_MASTER_KEYS = keyring.parse_master_keys(_local_secret("master_keys", "BEDSIDE_MASTER_KEYS"))
BEDSIDE_LOOKUP_KEY = keyring.parse_lookup_key(_local_secret("lookup_key", "BEDSIDE_LOOKUP_KEY"))
BEDSIDE_DATA_KEYS_FROM_ENVIRONMENT = bool(
    env_str("BEDSIDE_MASTER_KEYS") and env_str("BEDSIDE_LOOKUP_KEY")
)

# --- Audit trail ----------------------------------------------------------------------------
# HMAC key that signs audit checkpoints (beat's and `manage.py audit_checkpoint`'s). Unset: a
# random key kept in the state folder, for a single machine only (check --deploy warns): a
# database administrator who rebuilt the chain cannot forge a checkpoint to match it without
# the key, so keep it off the database's host.
BEDSIDE_AUDIT_CHECKPOINT_KEY = _local_secret("audit_checkpoint_key", "BEDSIDE_AUDIT_CHECKPOINT_KEY")
BEDSIDE_AUDIT_CHECKPOINT_KEY_FROM_ENVIRONMENT = bool(env_str("BEDSIDE_AUDIT_CHECKPOINT_KEY"))
# Celery beat writes a signed checkpoint of the chain's head this often, into this folder
# (`manage.py verify_audit --latest-checkpoint` checks the chain against the newest one).
BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S = env_int(
    "BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S", 3600, minimum=60
)
BEDSIDE_AUDIT_CHECKPOINT_DIR = Path(
    env_str("BEDSIDE_AUDIT_CHECKPOINT_DIR") or STATE_DIR / "checkpoints"
)
CELERY_BEAT_SCHEDULE["audit-checkpoint"] = {
    "task": "audit.write_checkpoint",
    "schedule": float(BEDSIDE_AUDIT_CHECKPOINT_INTERVAL_S),
}
# Lets audit events written from signals (sign-in failures, admin role changes) name the
# person behind the request.
MIDDLEWARE.append("audit.middleware.AuditRequestMiddleware")

# --- Directory sign-in (issue 19) ----------------------------------------------------------
# People sign in with their hospital directory account (Active Directory or OpenLDAP) when
# BEDSIDE_LDAP_URI is set; local accounts (the break-glass administrator) keep working
# behind it. docs/settings.md and docs/operations.md ("Directory sign-in") explain each.
# bedside/accounts/directory.py turns these into django-auth-ldap's configuration; the
# package (the `directory` extra) is imported only when the URI is set.
BEDSIDE_LDAP_URI = env_str("BEDSIDE_LDAP_URI").strip()
BEDSIDE_LDAP_BIND_DN = env_str("BEDSIDE_LDAP_BIND_DN")
BEDSIDE_LDAP_BIND_PASSWORD = env_str("BEDSIDE_LDAP_BIND_PASSWORD")  # or _FILE
BEDSIDE_LDAP_USER_SEARCH_BASE = env_str("BEDSIDE_LDAP_USER_SEARCH_BASE")
BEDSIDE_LDAP_USER_FILTER = env_str("BEDSIDE_LDAP_USER_FILTER", "(uid=%(user)s)")
BEDSIDE_LDAP_GROUP_SEARCH_BASE = env_str("BEDSIDE_LDAP_GROUP_SEARCH_BASE")
BEDSIDE_LDAP_GROUP_TYPE = env_str("BEDSIDE_LDAP_GROUP_TYPE", "groupOfNames")
BEDSIDE_LDAP_ROLE_GROUPS = env_str("BEDSIDE_LDAP_ROLE_GROUPS")
BEDSIDE_LDAP_START_TLS = env_bool("BEDSIDE_LDAP_START_TLS", False)
BEDSIDE_LDAP_CA_FILE = env_str("BEDSIDE_LDAP_CA_FILE")
# Connecting and each search or bind: an unreachable directory fails a sign-in in seconds.
BEDSIDE_LDAP_TIMEOUT_S = env_int("BEDSIDE_LDAP_TIMEOUT_S", 5, minimum=1)
# A directory session's person is looked up again this often (at their next request); one
# disabled or removed in the directory has their session ended then.
BEDSIDE_LDAP_RECHECK_S = env_int("BEDSIDE_LDAP_RECHECK_S", 300, minimum=0)
if BEDSIDE_LDAP_URI:
    if not BEDSIDE_LDAP_URI.startswith(("ldap://", "ldaps://")):
        raise ImproperlyConfigured(
            f"BEDSIDE_LDAP_URI must be ldap://host or ldaps://host, not {BEDSIDE_LDAP_URI!r}"
        )
    for _name in ("BEDSIDE_LDAP_USER_SEARCH_BASE", "BEDSIDE_LDAP_ROLE_GROUPS"):
        if not globals()[_name]:
            raise ImproperlyConfigured(f"BEDSIDE_LDAP_URI is set: {_name} must be set too")
    if BEDSIDE_LDAP_CA_FILE and not Path(BEDSIDE_LDAP_CA_FILE).is_file():
        raise ImproperlyConfigured(f"BEDSIDE_LDAP_CA_FILE={BEDSIDE_LDAP_CA_FILE!r} is not a file")
    # Before the local accounts: a directory person never signs in with a local password.
    AUTHENTICATION_BACKENDS.insert(0, "bedside.accounts.directory.DirectorySignInBackend")
    MIDDLEWARE.insert(
        MIDDLEWARE.index("django.contrib.auth.middleware.AuthenticationMiddleware") + 1,
        "bedside.accounts.directory.DirectoryRecheckMiddleware",
    )

# --- Operations: metrics and log format --------------------------------------------------------
# /metrics answers a direct request from this host, or anyone with this bearer token.
BEDSIDE_METRICS_TOKEN = env_str("BEDSIDE_METRICS_TOKEN")
# Health, readiness and metrics stay plain HTTP on loopback for probes and scrapers.
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]
# json: one JSON object per line (bedside/logformat.py), for the hospital's log collector.
BEDSIDE_LOG_FORMAT = env_str("BEDSIDE_LOG_FORMAT", "plain")
if BEDSIDE_LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"BEDSIDE_LOG_FORMAT={BEDSIDE_LOG_FORMAT!r}: use plain or json")
if BEDSIDE_LOG_FORMAT == "json":
    LOGGING["formatters"]["json"] = {"()": "bedside.logformat.JsonFormatter"}
    LOGGING["handlers"]["console"]["formatter"] = "json"
    # Celery's worker and beat log through this configuration too (bedside/celery.py).

# --- Single sign-on (issue 19) ----------------------------------------------------------------
# OpenID Connect (authorization code flow with PKCE, bedside/accounts/sso.py), on only when
# BEDSIDE_OIDC_ISSUER is set. The provider's endpoints come from its discovery document, and
# every one of them must be on the premises (loopback, private ranges, or a host named in
# BEDSIDE_OIDC_ALLOWED_HOSTS).
BEDSIDE_OIDC_ISSUER = env_str("BEDSIDE_OIDC_ISSUER").strip()
BEDSIDE_OIDC_CLIENT_ID = env_str("BEDSIDE_OIDC_CLIENT_ID")
BEDSIDE_OIDC_CLIENT_SECRET = env_str("BEDSIDE_OIDC_CLIENT_SECRET")
BEDSIDE_OIDC_SCOPES = env_str("BEDSIDE_OIDC_SCOPES", "openid profile email")
BEDSIDE_OIDC_GROUPS_CLAIM = env_str("BEDSIDE_OIDC_GROUPS_CLAIM", "groups")
BEDSIDE_OIDC_PROVIDER_NAME = env_str("BEDSIDE_OIDC_PROVIDER_NAME", "hospital sign-in")
BEDSIDE_OIDC_CA_FILE = env_str("BEDSIDE_OIDC_CA_FILE")
BEDSIDE_OIDC_ALLOWED_HOSTS = env_list("BEDSIDE_OIDC_ALLOWED_HOSTS", [])
BEDSIDE_OIDC_TIMEOUT_S = env_float("BEDSIDE_OIDC_TIMEOUT_S", 5.0)
BEDSIDE_OIDC_DISCOVERY_CACHE_S = env_int("BEDSIDE_OIDC_DISCOVERY_CACHE_S", 3600, minimum=0)
# Local passwords: with false, only superusers (the break-glass administrator accounts) may
# sign in with a password kept by Bedside; everyone else signs in through the hospital.
BEDSIDE_LOCAL_LOGIN = env_bool("BEDSIDE_LOCAL_LOGIN", True)
# role=group pairs (bedside.accounts.identity.parse_role_groups, checked at start-up by the
# accounts app: parsing needs the roles, which the settings may not import).
BEDSIDE_OIDC_ROLE_GROUPS = env_str("BEDSIDE_OIDC_ROLE_GROUPS")
if BEDSIDE_OIDC_ISSUER:
    if not BEDSIDE_OIDC_ISSUER.startswith(("http://", "https://")):
        raise ImproperlyConfigured(
            f"BEDSIDE_OIDC_ISSUER must be an http(s) URL, not {BEDSIDE_OIDC_ISSUER!r}"
        )
    if not BEDSIDE_OIDC_CLIENT_ID:
        raise ImproperlyConfigured("BEDSIDE_OIDC_ISSUER is set: set BEDSIDE_OIDC_CLIENT_ID too")
    if BEDSIDE_OIDC_TIMEOUT_S <= 0:
        raise ImproperlyConfigured("BEDSIDE_OIDC_TIMEOUT_S must be more than 0")
    if BEDSIDE_OIDC_CA_FILE and not Path(BEDSIDE_OIDC_CA_FILE).is_file():
        raise ImproperlyConfigured(f"BEDSIDE_OIDC_CA_FILE={BEDSIDE_OIDC_CA_FILE!r} is not a file")
    AUTHENTICATION_BACKENDS.append("bedside.accounts.sso.SsoBackend")
