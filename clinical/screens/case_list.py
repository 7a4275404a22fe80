"""'My cases': search by external id and date range, 25 to a page."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from django.core.paginator import Page, Paginator
from django.db.models import QuerySet
from django.http import QueryDict

from bedside.vault.encryption import lookup_hash
from clinical.models import Case
from clinical.screens import presenting

PAGE_SIZE = 25


def _date(raw: str) -> tuple[dt.date | None, str]:
    if not raw:
        return None, ""
    try:
        return dt.date.fromisoformat(raw), ""
    except ValueError:
        return None, "Enter a date as YYYY-MM-DD"


@dataclass
class CaseSearch:
    external_id: str = ""
    date_from_raw: str = ""
    date_to_raw: str = ""
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def from_query(cls, query: QueryDict) -> CaseSearch:
        search = cls(
            external_id=query.get("external_id", "").strip()[:64],
            date_from_raw=query.get("from", "").strip()[:10],
            date_to_raw=query.get("to", "").strip()[:10],
        )
        search.date_from, error = _date(search.date_from_raw)
        if error:
            search.errors["from"] = error
        search.date_to, error = _date(search.date_to_raw)
        if error:
            search.errors["to"] = error
        if search.date_from and search.date_to and search.date_from > search.date_to:
            search.errors["to"] = "The end date is before the start date"
        return search

    @property
    def active(self) -> bool:
        return bool(self.external_id or self.date_from or self.date_to)

    def apply(self, cases: QuerySet[Case]) -> QuerySet[Case]:
        if self.errors:
            return cases.none()
        if self.external_id:
            # Ids are stored encrypted: a search finds the exact id (case ignored).
            cases = cases.filter(external_id_hash=lookup_hash(self.external_id))
        if self.date_from:
            cases = cases.filter(created_at__date__gte=self.date_from)
        if self.date_to:
            cases = cases.filter(created_at__date__lte=self.date_to)
        return cases

    def page(self, cases: QuerySet[Case], number: str | None) -> Page:
        return Paginator(self.apply(cases), PAGE_SIZE).get_page(number)

    def query_string(self) -> str:
        """The search, to carry across page links."""
        query = QueryDict(mutable=True)
        for key, value in (
            ("external_id", self.external_id),
            ("from", self.date_from_raw),
            ("to", self.date_to_raw),
        ):
            if value:
                query[key] = value
        return query.urlencode()

    def rows(self, page: Page) -> list[dict[str, Any]]:
        return [
            {
                "case": case,
                "complaint": (case.input or {}).get("chief_complaint", ""),
                "state": presenting.case_status(case),
                "review": presenting.review_state(case),
                "confidence": getattr(case, "answer_confidence", None),
                "confidence_band": presenting.confidence_band(
                    getattr(case, "answer_confidence", None)
                ),
            }
            for case in page.object_list
        ]
