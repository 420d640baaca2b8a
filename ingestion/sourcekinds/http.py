"""``http``: a JSON API pulled page by page (ingestion.http), with authentication and a watermark."""

from __future__ import annotations

from .base import SECRET_FIELD, SourceKind

HTTP = SourceKind(
    name="http",
    label="HTTP JSON API",
    fieldsets=(
        ("Request", ("url", "method", "params", "headers", "body")),
        ("Authentication", ("auth", "auth_name", SECRET_FIELD)),
        (
            "Records and pages",
            (
                "records_path",
                "pagination",
                "page_param",
                "size_param",
                "page_size",
                "first_page",
                "next_path",
                "max_pages",
                "max_records",
            ),
        ),
        ("Incremental pulls", ("cursor_field", "watermark_param", "watermark", "watermark_updated_at")),
    ),
    read_only=("watermark_updated_at",),
)
