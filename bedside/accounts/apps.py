from django.apps import AppConfig
from django.conf import settings


class AccountsConfig(AppConfig):
    name = "bedside.accounts"
    label = "accounts"
    verbose_name = "Accounts and integration keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bedside.accounts import access_audit, identity, sso

        access_audit.connect()
        identity.connect()
        if settings.BEDSIDE_LDAP_URI:
            # Only then: django-auth-ldap is the optional `directory` extra.
            from bedside.accounts import directory

            directory.check_configuration()
            directory.connect()

        # Single sign-on's role mapping and the provider's host, before the first sign-in.
        sso.check_configuration()
