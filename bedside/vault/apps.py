from django.apps import AppConfig


class VaultConfig(AppConfig):
    name = "bedside.vault"
    label = "vault"
    verbose_name = "Encryption at rest"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from bedside.vault import checks  # noqa: F401  (checks register themselves)
