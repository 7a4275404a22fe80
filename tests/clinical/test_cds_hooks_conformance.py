"""CDS Hooks 2.0 conformance: every request example of the spec, its documentation and the
FHIR tools IG (tests/data/public/cds-hooks, the same files as the shared data folder) is
replayed against Bedside's services, as sent and with the prefetch Bedside asks for, and
every answer is checked against the spec's shapes of discovery, cards and feedback, written
here from the CDS Hooks 2.0 specification (independent of Bedside's own models)."""

from __future__ import annotations

import json
from typing import Any, Literal

import pytest
from pydantic import BaseModel, ConfigDict, Field, model_validator
from rest_framework.test import APIClient

from clinical.ehr.cds_hooks import HookResponse
from clinical.models import Case
from tests.clinical.test_cds_hooks import (
    ORDER_SIGN,
    PATIENT_VIEW,
    call,
    complete,
    example,
    examples_of,
    patient_view,
    with_prefetch,
)
from tests.fakes import FakeModelServer

# --- the CDS Hooks 2.0 shapes (https://cds-hooks.hl7.org/2.0/) -----------------------------


class _Spec(BaseModel):
    # What a CDS Client may rely on: the fields the spec defines, with their types. Extra
    # fields are allowed by the spec (extensions), so they are not refused here.
    model_config = ConfigDict(extra="allow", strict=True)


class SpecCoding(_Spec):
    code: str
    system: str
    display: str | None = None


class SpecSource(_Spec):
    label: str
    url: str | None = None
    icon: str | None = None
    topic: SpecCoding | None = None


class SpecAction(_Spec):
    type: Literal["create", "update", "delete"]
    description: str
    resource: dict[str, Any] | None = None
    resourceId: list[str] | None = None


class SpecSuggestion(_Spec):
    label: str
    uuid: str | None = None
    isRecommended: bool | None = None
    actions: list[SpecAction] | None = None


class SpecLink(_Spec):
    label: str
    url: str
    type: Literal["absolute", "smart"]
    appContext: str | None = None
    autolaunchable: bool | None = None


class SpecCard(_Spec):
    uuid: str | None = None
    summary: str = Field(max_length=140)
    detail: str | None = None
    indicator: Literal["info", "warning", "critical"]
    source: SpecSource
    suggestions: list[SpecSuggestion] | None = None
    selectionBehavior: Literal["at-most-one", "any"] | None = None
    overrideReasons: list[SpecCoding] | None = None
    links: list[SpecLink] | None = None

    @model_validator(mode="after")
    def _selection_with_suggestions(self) -> SpecCard:
        if self.suggestions and self.selectionBehavior is None:
            raise ValueError("selectionBehavior is required when suggestions are present")
        return self


class SpecResponse(_Spec):
    cards: list[SpecCard]
    systemActions: list[SpecAction] | None = None


class SpecService(_Spec):
    hook: str
    title: str | None = None
    description: str
    id: str
    prefetch: dict[str, str] | None = None
    usageRequirements: str | None = None


class SpecDiscovery(_Spec):
    services: list[SpecService]


class BedsideErrors(BaseModel):
    """Bedside's error body (the spec leaves it to the service): where, and what."""

    model_config = ConfigDict(extra="forbid")

    class Error(BaseModel):
        model_config = ConfigDict(extra="forbid")
        loc: list[str | int]
        msg: str = Field(min_length=1)

    errors: list[Error] = Field(min_length=1)


OFFERED = {"patient-view": PATIENT_VIEW, "order-sign": ORDER_SIGN}
REQUESTS = examples_of("service_request")


def checked(response: Any) -> tuple[int, Any]:
    """The status and the body, the body checked against the shape of that status."""
    status, body = response.status_code, response.json()
    if status == 200:
        SpecResponse.model_validate(body)
    else:
        assert status in (400, 401, 404, 412), (status, body)
        BedsideErrors.model_validate(body)
    return int(status), body


def test_discovery_has_the_spec_shape(db: None) -> None:
    response = APIClient().get("/cds-services")
    assert response.status_code == 200
    discovery = SpecDiscovery.model_validate(response.json())
    assert {s.hook for s in discovery.services} == set(OFFERED)
    for service in discovery.services:
        # Prefetch templates are relative FHIR queries with context tokens only.
        for template in (service.prefetch or {}).values():
            assert not template.startswith(("/", "http")), template
            assert "{{context.patientId}}" in template


def test_every_request_example_is_answered_in_the_spec_shape(ehr_key: Any) -> None:
    """As sent: the examples name FHIR servers Bedside may not send a token to (public or
    unknown hosts) and lack most of the prefetch, so each is a 412, or a 400 when it has no
    patientId or is a hook Bedside does not offer."""
    answers = {}
    for name in REQUESTS:
        request = example(name)
        status, body = checked(call(ehr_key, OFFERED.get(request["hook"], PATIENT_VIEW), request))
        answers[name] = status
        if request["hook"] not in OFFERED:
            assert status == 400 and ["hook"] in [e["loc"] for e in body["errors"]]
        elif "patientId" not in request["context"]:
            assert status == 400 and ["context", "patientId"] in [e["loc"] for e in body["errors"]]
        else:
            assert status == 412, (name, body)
    assert len(answers) == len(REQUESTS) >= 9
    assert Case.objects.count() == 0


def test_every_request_example_with_the_prefetch_gets_spec_cards(ehr_key: Any) -> None:
    """With the prefetch Bedside asks for (what the example lacks sent as empty searches):
    cards for every example that carries its Patient; a 412 naming the Patient otherwise."""
    carded = []
    for name in REQUESTS:
        request = with_prefetch(json.loads(json.dumps(example(name)).replace("\\u2011", "-")))
        if request["hook"] not in OFFERED or "patientId" not in request["context"]:
            continue  # answered above: a 400
        status, body = checked(call(ehr_key, OFFERED[request["hook"]], request))
        if status == 200:
            carded.append(name)
            assert body["cards"] and all(c["links"] for c in body["cards"])
        else:
            assert status == 412 and body["errors"][0]["loc"] == ["prefetch", "patient"], name
    assert sorted(carded) == sorted(
        [
            "docs_quickstart__L115.json",
            "docs_spec__L167.json",
            "hl7spec__L219.json",
            "toolsig_CDSHooksRequestPV.json",
        ]
    )


def test_an_assessment_card_has_the_spec_shape(ehr_key: Any, fake_model: FakeModelServer) -> None:
    call(ehr_key, PATIENT_VIEW, patient_view())
    complete(Case.objects.get(), fake_model)
    _, body = checked(call(ehr_key, PATIENT_VIEW, patient_view() | {"hookInstance": "again"}))
    card = SpecCard.model_validate(body["cards"][0])
    assert card.overrideReasons and card.links


@pytest.mark.parametrize("name", examples_of("feedback"))
def test_every_feedback_example_on_a_card_of_ours_is_200(
    ehr_key: Any, fake_model: FakeModelServer, name: str
) -> None:
    call(ehr_key, PATIENT_VIEW, patient_view())
    complete(Case.objects.get(), fake_model)
    card = call(ehr_key, PATIENT_VIEW, patient_view() | {"hookInstance": "again"}).json()
    feedback = example(name)
    for item in feedback["feedback"]:
        item["card"] = card["cards"][0]["uuid"]
        reason = (item.get("overrideReason") or {}).get("reason")
        if reason:  # the example's reason is example.com's: one the card offered instead
            item["overrideReason"]["reason"] = card["cards"][0]["overrideReasons"][0]
    response = call(ehr_key, PATIENT_VIEW + "/feedback", feedback)
    assert response.status_code == 200, response.json()  # the spec: 200 OK, body unspecified


@pytest.mark.parametrize("name", ["hl7spec__L1102.json", "docs_spec__L753.json"])
def test_our_card_model_takes_the_specs_autolaunchable_link(name: str) -> None:
    # The examples' cards lack their indicator (required); with one, each is a 2.0 card
    # whose link says `autolaunchable` (our model, and the OpenAPI document, said
    # `autoLaunchable` and refused it).
    response = example(name)
    for card in response["cards"]:
        card.setdefault("indicator", "info")
    SpecResponse.model_validate(response)
    links = [
        link for card in HookResponse.model_validate(response).cards for link in card.links or []
    ]
    assert any(link.autolaunchable for link in links)
