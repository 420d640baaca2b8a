"""Consume a stream source (Redis Streams, NATS JetStream) into its dataset until stopped."""

from __future__ import annotations

import signal
import threading
from typing import Any

from django.core.exceptions import ValidationError

from core.commands import DataflowCommand, validation_message
from ingestion.models import Source
from processing.services.streams import ConsumeTotals, StreamSourceError, stream_consume


class Command(DataflowCommand):
    help = (
        "Read a stream source's messages in micro-batches into its dataset until stopped. SIGTERM (or Ctrl-C) "
        "stops after the batch in hand is committed and acknowledged."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("source", help="The stream source's slug.")
        parser.add_argument(
            "--until-idle",
            type=float,
            metavar="SECONDS",
            help="Stop once no new message has arrived for this many seconds.",
        )
        parser.add_argument(
            "--consumer",
            help="This consumer's name in its group (default: the host name). Give each process on one host its own.",
        )
        super().add_arguments(parser)

    def handle(self, *args: Any, **options: Any) -> None:
        source = Source.objects.select_related("dataset").filter(name=options["source"]).first()
        if source is None:
            raise self.fail(f"There is no source {options['source']!r}.")
        until_idle = options["until_idle"]
        if until_idle is not None and until_idle < 0:
            raise self.fail("--until-idle must be a number of seconds, 0 or more.")
        stop = threading.Event()

        def request_stop(signum: int, frame: Any) -> None:
            stop.set()

        previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        verbose = not options["json"] and options["verbosity"] > 1

        def progress(totals: ConsumeTotals) -> None:
            if verbose:
                self.stderr.write(f"batch {totals.batches}: {totals.read} read, {totals.rejected} rejected")

        try:
            totals = stream_consume(
                source=source,
                consumer=options["consumer"],
                until_idle=until_idle,
                should_stop=stop.is_set,
                on_batch=progress,
            )
        except (StreamSourceError, ValidationError) as exc:
            message = validation_message(exc) if isinstance(exc, ValidationError) else str(exc)
            raise self.fail(f"Cannot consume {source.name!r}: {message}") from None
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        payload = {
            "source": source.name,
            "read": totals.read,
            "valid": totals.valid,
            "rejected": totals.rejected,
            "redelivered": totals.redelivered,
            "batches": totals.batches,
            "runs": totals.runs,
            "run_ids": totals.run_ids,
        }
        if options["json"]:
            self.emit_json(payload)
            return
        self.stdout.write(
            self.style.SUCCESS(
                f"Consumed {source.name!r}: {totals.read} messages read, {totals.valid} valid, "
                f"{totals.rejected} rejected, {totals.redelivered} already committed, in {totals.runs} run(s)"
            )
        )
