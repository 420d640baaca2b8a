from django.apps import AppConfig


class ApiConfig(AppConfig):
    """HTTP only: the REST API. Owns no models."""

    name = "api"
    verbose_name = "API"
