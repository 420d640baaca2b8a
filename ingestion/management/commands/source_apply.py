"""Create or update a source (any kind: HTTP, Redis Stream, NATS JetStream) from a JSON spec."""

from __future__ import annotations

import json
from typing import Any

from django.core.exceptions import ValidationError

from core.commands import DataflowCommand, validation_message
from ingestion.services.source_specs import MAX_SPEC_SIZE, source_apply


class Command(DataflowCommand):
    help = (
        'Create or update a source from a JSON spec, e.g. {"slug": "orders", "dataset": "orders", '
        '"kind": "redis_stream", "url": "redis://host:6379/0", "stream": "orders", "group": "dataflow"}. '
        "Credentials in the URL are stored encrypted and never shown."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("spec_file", help="Path to the spec file (JSON), or - for standard input.")
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        path = options["spec_file"]
        data = self.read_bounded(path, MAX_SPEC_SIZE, "source spec")
        try:
            spec = json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise self.fail(f"Invalid source spec in {path}: not JSON text ({exc}).") from None
        try:
            result = source_apply(spec=spec)
        except ValidationError as exc:
            raise self.fail(f"Invalid source spec in {path}: {validation_message(exc)}") from None
        source = result.source
        payload = {
            "source": source.name,
            "id": source.pk,
            "kind": source.kind,
            "dataset": source.dataset.slug,
            "created": result.created,
            "changed": result.changed,
            "url": source.url,
            "has_secret": source.has_secret,
        }
        if options["json"]:
            self.emit_json(payload)
            return
        verb = "Created" if result.created else "Updated"
        detail = f" ({', '.join(result.changed)} changed)" if result.changed else ""
        self.stdout.write(self.style.SUCCESS(f"{verb} {source.kind} source {source.name!r}{detail}"))
        self.stdout.write(f"  dataset: {source.dataset.slug}")
        self.stdout.write(f"  url: {source.url}" + ("  (credentials stored encrypted)" if source.has_secret else ""))
