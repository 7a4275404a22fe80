from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "bedside.vault"
    label = "vault"
    verbose_name = "Encryption at rest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate

        from bedside.vault import checks  # noqa: F401  (checks register themselves)
        from bedside.vault.encryption import forget_current_keys

        # A flush (a test database emptied between tests) sends post_migrate too.
        post_migrate.connect(forget_current_keys, dispatch_uid="vault-forget-current-keys")
