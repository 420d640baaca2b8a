from django.apps import AppConfig


class IngestionConfig(AppConfig):
    """Getting bytes in: datasets and their schemas, raw files, CSV dialects."""

    name = "ingestion"
    verbose_name = "Ingestion"
