"""The admin site's view of cases: read-only, found by id or whole external id."""

import contextlib
import uuid

from django.contrib import admin
from django.db.models import QuerySet
from django.http import HttpRequest

from bedside.vault.encryption import lookup_hash
from clinical.models import Case


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("id", "external_id", "status", "priority", "created_at", "submitted_by")
    list_filter = ("status", "priority")
    search_fields = ("id",)
    search_help_text = "A case id, or a whole external id (ids are stored encrypted)."
    readonly_fields = [f.name for f in Case._meta.fields]

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Case], search_term: str
    ) -> tuple[QuerySet[Case], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        matches = queryset.filter(external_id_hash=lookup_hash(term))
        with contextlib.suppress(ValueError):
            matches = matches | queryset.filter(id=uuid.UUID(term))
        return matches, False
