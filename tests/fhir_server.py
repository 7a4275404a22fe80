"""A small FHIR R4 server for tests, run as its own process: it serves the resources of
the Synthea bundles in a folder by id (``GET /Patient/<id>``) and by patient search
(``GET /Condition?patient=<id>&clinical-status=active``, ``Observation?...&category=``,
``MedicationRequest?...&status=``, ``_count``), as a hospital's FHIR server would, and
takes a resource created by POST (``POST /Communication``, logged with its body), and
refuses a request without the expected bearer token.

    python -m tests.fhir_server --data tests/data/public/synthea-r4 --token T [--delay S]

It prints ``listening on <port>`` when ready and appends each request it answered (method,
path, status) to ``--log`` so a test can see what Bedside asked for.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

URN = re.compile(r"^urn:uuid:(.+)$")


def _load(folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Resources by type and id, their ``urn:uuid:`` references rewritten to ``Type/id``
    (what a FHIR server serves; Synthea's transaction bundles use urns)."""
    resources: dict[str, dict[str, dict[str, Any]]] = defaultdict(dict)
    types: dict[str, str] = {}
    for path in sorted(folder.glob("*.json")):
        bundle = json.loads(path.read_text())
        for entry in bundle.get("entry") or []:
            resource = entry.get("resource") or {}
            if "id" in resource:
                types[str(resource["id"])] = str(resource["resourceType"])
                resources[resource["resourceType"]][str(resource["id"])] = resource

    def rewrite(value: Any) -> Any:
        if isinstance(value, dict):
            out = {k: rewrite(v) for k, v in value.items()}
            ref = out.get("reference")
            match = URN.match(ref) if isinstance(ref, str) else None
            if match and match.group(1) in types:
                out["reference"] = f"{types[match.group(1)]}/{match.group(1)}"
            return out
        if isinstance(value, list):
            return [rewrite(v) for v in value]
        return value

    return {t: {i: rewrite(r) for i, r in by_id.items()} for t, by_id in resources.items()}


def _patient_of(resource: dict[str, Any]) -> str:
    for field in ("subject", "patient"):
        ref = (resource.get(field) or {}).get("reference", "")
        if isinstance(ref, str) and ref.startswith("Patient/"):
            return ref.removeprefix("Patient/")
    return ""


def _codes(concepts: Any) -> set[str]:
    if isinstance(concepts, dict):
        concepts = [concepts]
    return {
        str(c.get("code"))
        for concept in concepts or []
        for c in (concept or {}).get("coding") or []
    }


def _matches(resource: dict[str, Any], params: dict[str, str]) -> bool:
    if "category" in params and params["category"] not in _codes(resource.get("category")):
        return False
    if "clinical-status" in params and params["clinical-status"] not in _codes(
        resource.get("clinicalStatus")
    ):
        return False
    return not ("status" in params and resource.get("status") != params["status"])


def _date(resource: dict[str, Any]) -> str:
    for field in ("effectiveDateTime", "authoredOn", "recordedDate", "onsetDateTime"):
        if resource.get(field):
            return str(resource[field])
    return str((resource.get("period") or {}).get("start") or "")


def serve(data: Path, token: str, delay: float, log: Path | None) -> None:
    resources = _load(data)

    class Handler(BaseHTTPRequestHandler):
        def _answer(self, status: int, body: dict[str, Any], posted: Any = None) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/fhir+json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)
            if log is not None:
                with log.open("a") as out:
                    entry = {"method": self.command, "path": self.path, "status": status}
                    if posted is not None:
                        entry["body"] = posted
                        entry["authorization"] = self.headers.get("Authorization", "")
                    out.write(json.dumps(entry) + "\n")

        def do_GET(self) -> None:
            if delay:
                time.sleep(delay)
            if self.headers.get("Authorization") != f"Bearer {token}":
                self._answer(401, {"resourceType": "OperationOutcome", "issue": []})
                return
            parts = urlsplit(self.path)
            segments = [s for s in parts.path.split("/") if s]
            if len(segments) == 2:  # a read: Type/id
                found = resources.get(segments[0], {}).get(segments[1])
                if found is None:
                    self._answer(404, {"resourceType": "OperationOutcome", "issue": []})
                else:
                    self._answer(200, found)
                return
            if len(segments) != 1:
                self._answer(400, {"resourceType": "OperationOutcome", "issue": []})
                return
            params = {k: v[0] for k, v in parse_qs(parts.query).items()}
            patient = params.get("patient", "").removeprefix("Patient/")
            hits = [
                r
                for r in resources.get(segments[0], {}).values()
                if _patient_of(r) == patient and _matches(r, params)
            ]
            if params.get("_sort") == "-date":
                hits.sort(key=_date, reverse=True)
            if "_count" in params:
                hits = hits[: int(params["_count"])]
            bundle = {
                "resourceType": "Bundle",
                "type": "searchset",
                "total": len(hits),
                "entry": [{"resource": r} for r in hits],
            }
            self._answer(200, bundle)

        def do_POST(self) -> None:
            # A create, as an EHR takes a Communication: the bearer token checked, the body
            # logged (so a test sees what arrived), 201 with the id the server gave it.
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length) or b"null") if length < 1_000_000 else None
            if self.headers.get("Authorization") != f"Bearer {token}":
                self._answer(401, {"resourceType": "OperationOutcome", "issue": []})
                return
            segments = [s for s in urlsplit(self.path).path.split("/") if s]
            if (
                len(segments) != 1
                or not isinstance(body, dict)
                or body.get("resourceType") != segments[0]
            ):
                self._answer(400, {"resourceType": "OperationOutcome", "issue": []})
                return
            created = body | {"id": f"created-{len(resources.get(segments[0], {})) + 1}"}
            resources.setdefault(segments[0], {})[created["id"]] = created
            self._answer(201, created, posted=body)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # quiet: the log file records what a test needs

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    print(f"listening on {server.server_address[1]}", flush=True)
    server.serve_forever()


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--token", required=True)
    parser.add_argument("--delay", type=float, default=0.0)
    parser.add_argument("--log", type=Path)
    args = parser.parse_args(argv)
    serve(args.data, args.token, args.delay, args.log)


if __name__ == "__main__":
    main(sys.argv[1:])
