#!/usr/bin/env bash
# The spine end to end inside a network namespace that has only loopback: Bedside, its
# embedded PostgreSQL and broker, and vLLM with the real model must do their whole job with
# no way off this machine (no outside DNS, no model hub, no telemetry endpoint).
# Needs root (unshare -n); `make test-offline` runs it, and so does .ci/run.
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "${1:-}" != "--inside" ]; then
  exec unshare --net "$0" --inside
fi

ip link set lo up
others=$(ip -brief link | awk '$1 != "lo" {print $1}')
if [ -n "$others" ]; then
  echo "isolation check failed: interfaces besides loopback: $others" >&2
  exit 1
fi
if .venv/bin/python - <<'PY'
import socket
for address in [("1.1.1.1", 443), ("8.8.8.8", 53), ("pypi.org", 443), ("huggingface.co", 443)]:
    try:
        socket.create_connection(address, timeout=3).close()
    except OSError:
        continue
    raise SystemExit(0)  # something outside answered: not isolated
raise SystemExit(1)
PY
then
  echo "isolation check failed: a public address answered" >&2
  exit 1
fi
echo "== isolated: loopback only; public addresses and names unreachable =="
exec .venv/bin/python -m devtools.localstack exec -- \
  .venv/bin/python -m pytest -p no:cacheprovider -m e2e \
  "tests/e2e/test_spine.py::test_case_goes_from_rest_to_the_real_model_and_back"
