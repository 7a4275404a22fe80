from django.contrib import admin

from clinical.models import ApiKey, Case


@admin.register(Case)
class CaseAdmin(admin.ModelAdmin):
    list_display = ("id", "external_id", "status", "priority", "created_at", "submitted_by")
    list_filter = ("status", "priority")
    search_fields = ("external_id",)
    readonly_fields = [f.name for f in Case._meta.fields]


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("name", "prefix", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("prefix", "key_hash", "user", "created_at", "last_used_at")
