from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    """Turning bytes into trusted rows: the pipeline, runs, records, rejects."""

    name = "processing"
    verbose_name = "Processing"
