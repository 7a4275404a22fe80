#!/usr/bin/env bash
# Smoke test of a running Bedside: readiness, one synthetic case end to end, the audit chain.
#
#   deploy/smoke.sh BASE_URL API_KEY
#   deploy/smoke.sh https://bedside.hospital.local "$(cat /etc/bedside/smoke_key)"
#
# API_KEY: an integration key (manage.py issue_api_key --name smoke --role integration).
# Environment:
#   SMOKE_TIMEOUT_S     how long to wait for the case (default 900: a CPU model is slow)
#   SMOKE_POLL_S        seconds between polls of the case (default 2)
#   SMOKE_AUDITOR_KEY   an auditor's key for GET /api/v1/audit/verify/ (the integration key
#                       may not read the audit chain)
#   BEDSIDE_MANAGE      on a Bedside host, how to run manage.py, e.g.
#                       "sudo -u bedside /opt/bedside/venv/bin/python /opt/bedside/app/manage.py";
#                       then `verify_audit` is run too
#   SMOKE_CURL_OPTS     extra curl options (e.g. "--cacert /etc/bedside/tls/ca.crt")
# Exit status: 0 when every check passed, 1 otherwise. The case is synthetic: no patient.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 BASE_URL API_KEY" >&2
  exit 2
fi
BASE_URL=${1%/}
API_KEY=$2
TIMEOUT_S=${SMOKE_TIMEOUT_S:-900}
POLL_S=${SMOKE_POLL_S:-2}
read -r -a CURL_OPTS <<<"${SMOKE_CURL_OPTS:-}"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

say() { printf 'smoke: %s\n' "$*"; }
fail() { printf 'smoke: FAILED: %s\n' "$*" >&2; exit 1; }

# http METHOD PATH [KEY] [BODY_FILE] -> prints the status code; the body lands in $WORK/body
http() {
  local method=$1 path=$2 key=${3:-} body=${4:-}
  local args=(-sS -o "$WORK/body" -w '%{http_code}' -X "$method" --max-time 30 "${CURL_OPTS[@]}")
  [ -n "$key" ] && args+=(-H "Authorization: Bearer $key")
  [ -n "$body" ] && args+=(-H 'Content-Type: application/json' --data-binary "@$body")
  curl "${args[@]}" "$BASE_URL$path" || echo "000"
}

# json EXPRESSION -> evaluates a Python expression over the last body, bound to `d`
json() {
  python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
    "$WORK/body" "$1"
}

# 1. Readiness: database, broker and model server.
status=$(http GET /readyz)
if [ "$status" != 200 ]; then
  detail=$(json 'd.get("checks")' 2>/dev/null || cat "$WORK/body")
  fail "/readyz answered $status: $detail"
fi
say "ready: $(json '", ".join(k + " " + str(v.get("detail")) for k, v in d["checks"].items())')"

# 2. One synthetic case, submitted as an EHR would.
cat >"$WORK/case.json" <<EOF
{
  "external_id": "SMOKE-$(date -u +%Y%m%dT%H%M%SZ)",
  "priority": "routine",
  "patient": {"age_years": 58, "sex": "female", "pregnant": false},
  "setting": "emergency",
  "chief_complaint": "Synthetic smoke test: chest pain for one hour",
  "history_of_present_illness": "Pressure-like chest pain radiating to the jaw, with sweating.",
  "past_medical_history": ["hypertension"],
  "vitals": {"heart_rate": 104, "systolic_bp": 146, "diastolic_bp": 88, "spo2": 96},
  "labs": [{"name": "Troponin I", "value": 1.1, "unit": "ng/mL", "reference_range": "<0.04"}],
  "question": "What is the most likely diagnosis, and what should be done next?"
}
EOF
status=$(http POST /api/v1/cases/ "$API_KEY" "$WORK/case.json")
[ "$status" = 202 ] || fail "submitting the case answered $status: $(cat "$WORK/body")"
case_id=$(json 'd["id"]')
say "submitted case $case_id"

# 3. Wait for a final status.
deadline=$((SECONDS + TIMEOUT_S))
while :; do
  status=$(http GET "/api/v1/cases/$case_id/" "$API_KEY")
  [ "$status" = 200 ] || fail "reading case $case_id answered $status: $(cat "$WORK/body")"
  case_status=$(json 'd["status"]')
  case "$case_status" in
    completed)
      say "completed: confidence $(json 'd["result"]["confidence"]["value"]'), model $(json 'd["result"]["model"]["name"]')"
      break ;;
    failed)
      fail "case $case_id failed: $(json 'd.get("failure_reason") or d.get("status_detail")')" ;;
  esac
  if [ "$SECONDS" -ge "$deadline" ]; then
    fail "case $case_id still $case_status after ${TIMEOUT_S}s: $(json 'd.get("status_detail", "")')"
  fi
  sleep "$POLL_S"
done

# 4. The audit chain, over HTTP (an auditor's key) and on the host (manage.py verify_audit).
status=$(http GET /api/v1/audit/verify/ "${SMOKE_AUDITOR_KEY:-$API_KEY}")
case "$status" in
  200)
    [ "$(json 'd.get("ok")')" = True ] || fail "audit chain broken: $(cat "$WORK/body")"
    say "audit chain intact over HTTP ($(json 'd.get("events_checked")') events)" ;;
  404) say "audit chain over HTTP: not available on this server (no /api/v1/audit/verify/)" ;;
  401|403) say "audit chain over HTTP: not checked, this key may not read it (set SMOKE_AUDITOR_KEY)" ;;
  *) fail "/api/v1/audit/verify/ answered $status: $(cat "$WORK/body")" ;;
esac
if [ -n "${BEDSIDE_MANAGE:-}" ]; then
  read -r -a MANAGE <<<"$BEDSIDE_MANAGE"
  if "${MANAGE[@]}" help verify_audit >/dev/null 2>&1; then
    "${MANAGE[@]}" verify_audit >"$WORK/verify" 2>&1 || fail "verify_audit: $(cat "$WORK/verify")"
    say "audit chain intact (manage.py verify_audit)"
  else
    say "manage.py verify_audit: not available in this version"
  fi
fi
say "all checks passed"
