from django.apps import AppConfig


class ProcessingConfig(AppConfig):
    """Turning bytes into trusted rows: the pipeline, runs, records, rejects."""

    name = "processing"
    verbose_name = "Processing"

    def ready(self) -> None:
        from ingestion.record_store import record_store_register

        from . import checks  # noqa: F401  (registers the system checks)
        from .record_schema import TypedTableStore

        record_store_register(TypedTableStore())
