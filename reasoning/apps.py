from django.apps import AppConfig
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured


class ReasoningConfig(AppConfig):
    name = "reasoning"
    verbose_name = "Reasoning"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Patient data goes to the model server, so an endpoint outside the hospital is
        # refused before the first case can be sent there.
        from bedside.hosts import EndpointRefused, check_model_endpoint, model_base_urls

        try:
            urls = model_base_urls(settings.BEDSIDE_MODEL_BASE_URL)
            if not urls:
                raise EndpointRefused("no URL given")
            for url in urls:  # every server of a pool, each by the same rules
                check_model_endpoint(url, allowed_hosts=settings.BEDSIDE_MODEL_ALLOWED_HOSTS)
        except EndpointRefused as exc:
            raise ImproperlyConfigured(f"BEDSIDE_MODEL_BASE_URL refused: {exc}") from exc
