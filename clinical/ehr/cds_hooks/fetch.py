"""What a hook's prefetch lacks, fetched from the EHR's FHIR server.

CDS Hooks lets an EHR send only part of what the prefetch templates ask for (a key absent,
or null), leaving the service to query ``fhirServer`` with the ``fhirAuthorization`` token.
Bedside does so, for each missing key, bounded in time (one deadline for all queries) and
size (per answer), and only on a host that may receive patient data (the rule of the model
endpoints: loopback, private ranges, or a host in ``BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS``).
Without that access the call is a 412 that names what is missing: an assessment without the
history, medications or allergies it asked for is not offered as if there were none.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
from django.conf import settings

from bedside.hosts import FHIR_ALLOW_LIST, EndpointRefused, check_model_endpoint
from bedside.http.bounded import AnswerTooLarge, AnswerTooLate, read_bounded
from clinical.ehr.cds_hooks.errors import HookError
from clinical.ehr.cds_hooks.schemas import HookRequest


@dataclass(frozen=True)
class Fetched:
    """Provenance of one query made to the EHR's FHIR server (no patient data: the query is
    the template, before the patient's id is put in)."""

    key: str
    query: str
    resources: int
    bytes: int

    def as_details(self) -> dict[str, Any]:
        return {"key": self.key, "query": self.query, "resources": self.resources}


class _FetchFailed(Exception):
    pass


def missing_keys(hook: HookRequest, templates: dict[str, str]) -> list[str]:
    """The prefetch keys the request lacks (absent or null). The Patient counts as sent when
    any prefetch value holds it (the spec's own examples name the key as they like)."""
    missing = [key for key in templates if hook.prefetch.get(key) is None]
    if "patient" in missing and _has_patient(hook):
        missing.remove("patient")
    return missing


def _has_patient(hook: HookRequest) -> bool:
    for value in hook.prefetch.values():
        if not isinstance(value, dict):
            continue
        resources = (
            [e.get("resource") for e in value.get("entry") or [] if isinstance(e, dict)]
            if value.get("resourceType") == "Bundle"
            else [value]
        )
        for resource in resources:
            if (
                isinstance(resource, dict)
                and resource.get("resourceType") == "Patient"
                and resource.get("id") in (None, hook.context.patientId)
            ):
                return True
    return False


def _render(template: str, hook: HookRequest) -> str:
    values = {
        "context.patientId": hook.context.patientId,
        "context.userId": hook.context.userId,
        "context.encounterId": hook.context.encounterId or "",
    }
    for name, value in values.items():
        template = template.replace("{{" + name + "}}", quote(value, safe=""))
    return template


def prefetch_complete(
    hook: HookRequest, templates: dict[str, str]
) -> tuple[HookRequest, list[Fetched]]:
    """The hook with every missing prefetch key fetched from its FHIR server, and what was
    fetched; ``HookError`` 412 naming what is missing when it cannot be fetched."""
    missing = missing_keys(hook, templates)
    if not missing:
        return hook, []
    names = ", ".join(missing)
    if not hook.fhirServer or hook.fhirAuthorization is None:
        raise HookError(
            412,
            [
                {
                    "loc": ["prefetch", key],
                    "msg": f"missing ({names}), and no fhirServer with fhirAuthorization to "
                    "fetch it from",
                }
                for key in missing
            ],
        )
    try:
        check_model_endpoint(
            hook.fhirServer,
            allowed_hosts=settings.BEDSIDE_FHIR_SERVER_ALLOWED_HOSTS,
            setting=FHIR_ALLOW_LIST,
        )
    except EndpointRefused as exc:
        raise HookError(
            412,
            [{"loc": ["fhirServer"], "msg": f"cannot fetch the missing {names}: {exc}"}],
        ) from exc
    token = hook.fhirAuthorization.access_token
    base = hook.fhirServer.rstrip("/")
    deadline = time.monotonic() + settings.BEDSIDE_FHIR_FETCH_TIMEOUT_S
    executor = ThreadPoolExecutor(max_workers=len(missing), thread_name_prefix="fhir-fetch")
    futures: dict[str, Future[tuple[Any, int]]] = {
        key: executor.submit(_get, f"{base}/{_render(templates[key], hook)}", token, deadline, key)
        for key in missing
    }
    wait(futures.values(), timeout=max(0.0, deadline - time.monotonic()))
    executor.shutdown(wait=False, cancel_futures=True)
    errors: list[dict[str, Any]] = []
    prefetch = dict(hook.prefetch)
    fetched: list[Fetched] = []
    for key, future in futures.items():
        if not future.done():
            reason = f"no answer within {settings.BEDSIDE_FHIR_FETCH_TIMEOUT_S} s"
        else:
            try:
                body, size = future.result()
            except _FetchFailed as exc:
                reason = str(exc)
            else:
                prefetch[key] = body
                count = len(body.get("entry") or []) if body["resourceType"] == "Bundle" else 1
                fetched.append(Fetched(key=key, query=templates[key], resources=count, bytes=size))
                continue
        errors.append(
            {"loc": ["prefetch", key], "msg": f"missing, and fetching it from fhirServer "
             f"failed: {reason}"}
        )  # fmt: skip
    if errors:
        raise HookError(412, errors)
    return hook.model_copy(update={"prefetch": prefetch}), fetched


def _get(url: str, token: str, deadline: float, key: str) -> tuple[Any, int]:
    """One FHIR read or search: its JSON resource and size; ``_FetchFailed`` otherwise."""
    remaining = max(0.1, deadline - time.monotonic())
    limit = settings.BEDSIDE_FHIR_FETCH_MAX_BYTES
    timeout = httpx.Timeout(remaining, connect=min(remaining, 2.0))
    headers = {"Authorization": f"Bearer {token}", "Accept": "application/fhir+json"}
    try:
        # No redirects: a redirect could lead the token and the query off the allowed host.
        with (
            httpx.Client(timeout=timeout, follow_redirects=False) as client,
            client.stream("GET", url, headers=headers) as response,
        ):
            if response.status_code != 200:
                raise _FetchFailed(f"HTTP {response.status_code}")
            raw = read_bounded(response, max_bytes=limit, deadline=deadline)
    except AnswerTooLarge as exc:
        raise _FetchFailed(f"the answer is over {limit} bytes") from exc
    except AnswerTooLate as exc:
        raise _FetchFailed("the answer took too long") from exc
    except httpx.HTTPError as exc:
        raise _FetchFailed(f"{type(exc).__name__}: {exc}") from exc
    try:
        body = json.loads(raw)
    except ValueError as exc:
        raise _FetchFailed("the answer is not JSON") from exc
    expected = "Patient" if key == "patient" else "Bundle"
    if not isinstance(body, dict) or body.get("resourceType") != expected:
        raise _FetchFailed(f"the answer is not a {expected}")
    return body, len(raw)
