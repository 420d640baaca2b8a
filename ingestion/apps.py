from django.apps import AppConfig


class IngestionConfig(AppConfig):
    """Getting bytes in: datasets and their schemas, raw files, CSV dialects."""

    name = "ingestion"
    verbose_name = "Ingestion"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from . import checks  # noqa: F401  (registers the system checks)
        from .signals import audit_login, audit_login_failed

        # Logins only exist as auth signals; the handlers just write the audit trail.
        user_logged_in.connect(audit_login, dispatch_uid="dataflow-audit-login")
        user_login_failed.connect(audit_login_failed, dispatch_uid="dataflow-audit-login-failed")
