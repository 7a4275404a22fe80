"""The admin site's accounts pages: integration keys (seen, limited and revoked there,
issued by command), EHR clients (disabled there) and EHR user links (attached to
clinicians there), people and role groups (every write audited), and its login."""

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group
from django.db.models import QuerySet
from django.http import HttpRequest

from audit.actors import actor_for
from audit.models import Action
from audit.services import record
from bedside import roles
from bedside.accounts import ehr_clients
from bedside.accounts import services as accounts_services
from bedside.accounts.keys import SCOPES
from bedside.accounts.models import ApiKey, EhrClient, EhrUserLink
from bedside.accounts.sign_in import AdminSignInForm, login_unlock


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


class EhrUserLinkForm(forms.ModelForm):
    class Meta:
        model = EhrUserLink
        fields = ("user",)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        user = cleaned.get("user")
        if user is None:
            raise forms.ValidationError("Choose the clinician this EHR user is.")
        if not user.is_active or roles.CLINICIAN not in roles.roles_of(user):
            raise forms.ValidationError(f"{user.get_username()} is not an active clinician.")
        return cleaned


@admin.register(EhrUserLink)
class EhrUserLinkAdmin(admin.ModelAdmin):
    """EHR users seen in CDS Hooks calls: an admin attaches a pending one to the clinician it
    is (then the cases from that EHR user's calls are theirs), or disables a link."""

    form = EhrUserLinkForm
    list_display = ("ehr_user_id", "issuer", "status", "user", "first_seen_at", "changed_at")
    list_filter = ("status", "issuer")
    search_fields = ("ehr_user_id", "issuer", "user__username")
    readonly_fields = ("issuer", "ehr_user_id", "status", "first_seen_at", "changed_at")
    fields = (*readonly_fields, "user")
    actions = ("disable_links",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # made on first sight by a hook call, or by `manage.py ehr_user_link`

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: audit events name the link

    def save_model(self, request: HttpRequest, obj: EhrUserLink, form: Any, change: bool) -> None:
        accounts_services.ehr_user_link_attach(
            link=obj, user=form.cleaned_data["user"], actor=actor_for(request.user, request)
        )

    @admin.action(description="Disable the selected links")
    def disable_links(self, request: HttpRequest, queryset: QuerySet[EhrUserLink]) -> None:
        actor = actor_for(request.user, request)
        for link in queryset:
            accounts_services.ehr_user_link_disable(link=link, actor=actor)
        self.message_user(request, f"Disabled {queryset.count()} link(s).", messages.SUCCESS)


@admin.register(EhrClient)
class EhrClientAdmin(admin.ModelAdmin):
    """EHRs allowed to call CDS Hooks. Added with ``manage.py cds_client add`` (it checks
    the keys or fetches them); here an admin sees them and disables one. Audited."""

    list_display = ("issuer", "jwks_url", "source", "created_at", "jwks_fetched_at", "disabled_at")
    list_filter = ("disabled_at", "source")
    search_fields = ("issuer",)
    readonly_fields = (
        "issuer",
        "jwks_url",
        "jwks",
        "source",
        "created_at",
        "jwks_fetched_at",
        "disabled_at",
    )
    actions = ("disable_clients",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # `manage.py cds_client add` checks the JWKS or fetches it

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # disable instead: audit events name the client

    @admin.action(description="Disable the selected EHRs (their calls are refused)")
    def disable_clients(self, request: HttpRequest, queryset: QuerySet[EhrClient]) -> None:
        actor = actor_for(request.user, request)
        done = sum(ehr_clients.ehr_client_disable(client=c, actor=actor) for c in queryset)
        self.message_user(request, f"Disabled {done} EHR(s).", messages.SUCCESS)


# The admin site signs people in through the same lockout and events as the sign-in page.
admin.site.login_form = AdminSignInForm


class AuditedAdmin(admin.ModelAdmin):
    """Every add, change and delete made through this admin page is an audit event in the
    same transaction, naming the fields changed (never their values: a password hash or a
    secret could be one). Privilege, role-group and password changes also get their own
    events with old and new values, from ``access_audit``."""

    def _record(self, request: HttpRequest, obj: Any, action: str, fields: list[str]) -> None:
        record(
            actor=actor_for(request.user, request),
            action={"added": Action.CREATE, "changed": Action.UPDATE}.get(action, Action.DELETE),
            code=f"admin.{action}",
            object_type=obj._meta.label_lower,
            object_id=str(obj.pk),
            details={"object": str(obj)[:100], "fields": sorted(fields)},
        )

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        super().save_model(request, obj, form, change)
        self._record(request, obj, "changed" if change else "added", list(form.changed_data))

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        self._record(request, obj, "deleted", [])
        super().delete_model(request, obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        for obj in queryset:
            self._record(request, obj, "deleted", [])
        super().delete_queryset(request, queryset)


class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    actions = ("unlock_sign_in",)

    @admin.action(description="Unlock sign-in for the selected people")
    def unlock_sign_in(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        actor = actor_for(request.user, request)
        for user in queryset:
            login_unlock(username=user.get_username(), actor=actor)
        self.message_user(request, f"Unlocked {queryset.count()} sign-in(s).", messages.SUCCESS)


class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), AuditedUserAdmin)
admin.site.unregister(Group)
admin.site.register(Group, AuditedGroupAdmin)
