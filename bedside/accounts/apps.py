from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "bedside.accounts"
    label = "accounts"
    verbose_name = "Accounts and integration keys"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bedside.accounts import access_audit, identity

        access_audit.connect()
        identity.connect()
