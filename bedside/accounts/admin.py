"""Integration keys in the admin site: seen, limited and revoked there, issued by command."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.actors import actor_for
from bedside.accounts import services as accounts_services
from bedside.accounts.keys import SCOPES
from bedside.accounts.models import ApiKey


class ApiKeyForm(forms.ModelForm):
    scopes = forms.MultipleChoiceField(
        choices=[(s, s) for s in SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="None ticked: every scope the key's role allows.",
    )
    callback_url = forms.URLField(
        required=False,
        max_length=500,
        assume_scheme="https",
        # The secret is never shown here (a flash message would carry it in a cookie).
        help_text="A private-network address, or a host in BEDSIDE_CALLBACK_ALLOWED_HOSTS. "
        "Callbacks are signed with the key's callback secret: a key without one sends none "
        "until `manage.py rotate_callback_secret --name NAME` prints it.",
    )

    class Meta:
        model = ApiKey
        fields = ("scopes", "expires_at", "rate_limit_per_min", "callback_url")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        try:
            accounts_services.api_key_settings_check(
                scopes=list(cleaned.get("scopes") or []),
                callback_url=cleaned.get("callback_url") or "",
            )
        except accounts_services.KeyRefused as exc:
            raise forms.ValidationError(str(exc)) from exc
        return cleaned


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are issued with ``manage.py issue_api_key`` (the key is shown once there); here
    an admin sees them, changes their limits and revokes them. Every change is audited."""

    form = ApiKeyForm
    list_display = (
        "name",
        "prefix",
        "scopes",
        "created_at",
        "last_used_at",
        "expires_at",
        "rate_limit_per_min",
        "revoked_at",
    )
    list_filter = ("revoked_at",)
    search_fields = ("name", "prefix")
    readonly_fields = ("name", "prefix", "user", "created_at", "last_used_at", "revoked_at")
    fields = (*readonly_fields, "scopes", "expires_at", "rate_limit_per_min", "callback_url")
    actions = ("revoke_keys",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # issue keys with `manage.py issue_api_key`: it shows the key once

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: cases and audit events point at the key's user

    def save_model(self, request: HttpRequest, obj: ApiKey, form: Any, change: bool) -> None:
        obj.scopes = sorted(form.cleaned_data.get("scopes") or [])
        accounts_services.api_key_update(
            api_key=obj, actor=actor_for(request.user, request), changed=form.changed_data
        )

    @admin.action(description="Revoke the selected keys now")
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        actor = actor_for(request.user, request)
        revoked = sum(
            accounts_services.api_key_revoke(api_key=key, actor=actor) for key in queryset
        )
        self.message_user(request, f"Revoked {revoked} key(s).", messages.SUCCESS)
