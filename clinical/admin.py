"""The admin site's view of cases: read-only, found by case id, with no patient data.

An admin runs the service, not the care: the list and the case page show where a case
stands (status, priority, times, attempts, who submitted it), never its input or its
external id, so reading them needs no ``case.viewed`` event. Clinicians and auditors read
cases on their own screens, which audit every read. Runs, reviews and audit events are not
in the admin site at all. Nothing here changes or deletes a case (and the database refuses
a delete whoever asks: clinical migration 0007).
"""

import contextlib
import uuid
from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from clinical.models import Case

# Every field an admin may see; anything added to Case stays hidden until it is named here.
OPERATIONAL_FIELDS = (
    "id",
    "status",
    "priority",
    "submitted_by",
    "created_at",
    "updated_at",
    "started_at",
    "finished_at",
    "attempts",
    "retries",
    "next_retry_at",
    "claimed_until",
)


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("id", "status", "priority", "created_at", "submitted_by")
    list_filter = ("status", "priority")
    search_fields = ("id",)
    search_help_text = "A case id."
    fields = OPERATIONAL_FIELDS
    readonly_fields = OPERATIONAL_FIELDS
    actions = None

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # cases arrive by the form, the API, FHIR or CDS Hooks

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # patient records are never deleted

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Case], search_term: str
    ) -> tuple[QuerySet[Case], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = queryset.none()
        with contextlib.suppress(ValueError):
            matches = queryset.filter(id=uuid.UUID(term))
        return matches, False
