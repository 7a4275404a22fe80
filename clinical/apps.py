from django.apps import AppConfig


class ClinicalConfig(AppConfig):
    name = "clinical"
    verbose_name = "Clinical cases"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from clinical import access_audit, checks  # noqa: F401  (checks register themselves)

        access_audit.connect()
