"""Receiving raw files: size limit, binary sniff, encoding and delimiter, storing and archiving."""

from __future__ import annotations

import codecs
import hashlib
import io
import os
import uuid
from typing import Any, Protocol

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.files import File

from ..dialect import (
    SNIFF_BYTES,
    EncodingGuess,
    EncodingProbe,
    binary_sniff,
    delimiter_matching_header,
    delimiter_sniff,
    sample_text,
    text_encoding,
)
from ..models import Dataset, RawFile, SchemaField, SchemaVersion
from ..storage import data_storage, storage_move


class ByteSource(Protocol):
    """What an upload is read from: a binary file, a request body, or anything with its ``read``."""

    def read(self, size: int = -1, /) -> bytes: ...


class UploadTooLarge(ValidationError):
    """The file is larger than ``MAX_UPLOAD_SIZE``."""


class NotTextFile(ValidationError):
    """The file is not text (an archive, a spreadsheet, an image, binary data): nothing is stored."""


class _DigestingReader(io.RawIOBase):
    """Passes bytes through while hashing, counting and probing them.

    Stops with ``UploadTooLarge`` as soon as more than ``limit`` bytes have
    gone by, so an oversized upload is refused while it streams, and with
    ``NotTextFile`` once its first block (``SNIFF_BYTES``) shows it is not text.
    """

    def __init__(self, source: ByteSource, limit: int, *, encoding: str | None = None, sniff: bool = True) -> None:
        self.source = source
        self.limit = limit
        self.sha256 = hashlib.sha256()
        self.size = 0
        self.probe = EncodingProbe()
        self.encoding = encoding
        self.sniffed = not sniff

    def _sniff(self) -> None:
        self.sniffed = True
        problem = binary_sniff(bytes(self.probe.sample[:SNIFF_BYTES]), encoding=self.encoding)
        if problem is not None:
            raise NotTextFile(f"This is {problem}.")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        data = self.source.read(len(buffer))
        if not data:
            if not self.sniffed:
                self._sniff()
            return 0
        if isinstance(data, str):
            raise ValidationError("The file must be opened in binary mode.")
        self.size += len(data)
        if self.size > self.limit:
            raise UploadTooLarge(f"The file is larger than the limit of {self.limit} bytes.")
        self.sha256.update(data)
        self.probe.feed(data)
        if not self.sniffed and self.size >= SNIFF_BYTES:
            self._sniff()
        n = len(data)
        buffer[:n] = data
        return n


def _sanitise_name(name: str) -> str:
    """Keep only a printable base name; it is metadata, never a path."""
    base = os.path.basename(name.replace("\\", "/"))
    cleaned = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    return cleaned.strip()[:255]


def raw_file_receive(
    *,
    dataset: Dataset,
    source: ByteSource,
    original_name: str = "",
    user: Any = None,
    encoding: str | None = None,
    delimiter: str | None = None,
    max_size: int | None = None,
    format: str = RawFile.Format.CSV,
) -> RawFile:
    """Store an incoming file under ``raw/`` and describe it.

    The SHA-256, size and encoding are computed in the same single pass that
    writes the file; a file whose first block is not text (an archive, a
    spreadsheet, an image, binary data) is refused with ``NotTextFile`` and
    nothing is kept. The encoding is, in this order: the one given with the
    upload; the one a byte-order mark states; the dataset's declared
    ``encoding``, unless the file is strict UTF-8 with non-ASCII text (then
    UTF-8, as ``valid-utf8``: never garble it); UTF-8 when the file is valid UTF-8; a legacy encoding
    detection is sure of; otherwise it is left undecided (``unsure``, with
    the candidates) and runs of the file fail before loading anything. The
    delimiter is the one given, else the dataset's (or, when the dataset
    allows ``detect_delimiter``, the one its header fits), else sniffed.
    NDJSON files (HTTP pulls and pushed rows) are UTF-8 by definition and
    have no delimiter.
    """
    if format not in RawFile.Format.values:
        raise ValidationError(f"Unknown file format {format!r}.")
    if format == RawFile.Format.NDJSON:
        encoding, delimiter = "utf-8", None
    if encoding:
        try:
            encoding = text_encoding(encoding)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
    if delimiter is not None and (len(delimiter) != 1 or delimiter in '"\r\n'):
        raise ValidationError("The delimiter must be one character other than a quote or newline.")
    options = dataset_reading_options(dataset)
    limit = max_size if max_size is not None else settings.DATAFLOW["MAX_UPLOAD_SIZE"]
    storage = data_storage()
    reader = _DigestingReader(
        source, limit, encoding=encoding or options.get("encoding"), sniff=format == RawFile.Format.CSV
    )
    name = f"raw/{dataset.slug}/{uuid.uuid4().hex}.{format}"
    try:
        stored_name = storage.save(name, File(io.BufferedReader(reader, 1 << 20), name=name))
    except BaseException:
        if storage.exists(name):
            storage.delete(name)
        raise
    reader.probe.finish()
    guess = _encoding_choose(reader.probe, given=encoding, declared=options.get("encoding") or "")
    delimiter_source = ""
    if format == RawFile.Format.NDJSON:
        delimiter = ""
    elif delimiter:
        delimiter_source = "given"
    else:
        text = sample_text(bytes(reader.probe.sample), guess.encoding or "utf-8")
        if dataset.delimiter:
            delimiter, delimiter_source = dataset.delimiter, "declared"
            if options.get("detect_delimiter") and guess.source != "unsure":
                better = delimiter_matching_header(text, dataset.delimiter, _known_headers(dataset))
                if better is not None:
                    delimiter, delimiter_source = better, "detected"
        else:
            delimiter, delimiter_source = delimiter_sniff(text), "detected"
    return RawFile.objects.create(
        dataset=dataset,
        format=format,
        storage_name=stored_name,
        sha256=reader.sha256.hexdigest(),
        size=reader.size,
        original_name=_sanitise_name(original_name),
        encoding=guess.encoding,
        encoding_confidence=guess.source,
        encoding_score=guess.confidence,
        encoding_candidates=list(guess.candidates),
        delimiter=delimiter,
        delimiter_source=delimiter_source,
        uploaded_by=user if getattr(user, "pk", None) else None,
    )


def _encoding_choose(probe: EncodingProbe, *, given: str | None, declared: str) -> EncodingGuess:
    if given:
        return EncodingGuess(given, "given")
    guess = probe.guess()
    if not declared:
        return guess
    if guess.source == "exact" and guess.encoding in ("utf-8-sig", "utf-16", "utf-32"):
        return guess  # the dataset's declaration never wins over a byte-order mark in the file itself
    if guess.source == "exact" and probe.valid_multibyte and _canonical_name(declared) != "utf-8":
        # Strict UTF-8 with multi-byte characters is almost never legacy text by chance; reading it
        # as the declared legacy encoding would garble every such character without a word.
        return EncodingGuess("utf-8", "valid-utf8", candidates=(declared,))
    return EncodingGuess(declared, "declared")


def _canonical_name(name: str) -> str:
    try:
        return codecs.lookup(name).name
    except LookupError:
        return name


def dataset_reading_options(dataset: Dataset) -> dict[str, Any]:
    """The current schema's ``encoding`` and ``detect_delimiter`` options (read fresh: they change in place)."""
    if dataset.current_schema_id is None:
        return {}
    definition = (
        SchemaVersion.objects.filter(pk=dataset.current_schema_id).values_list("definition", flat=True).first()
    ) or {}
    return {k: definition[k] for k in ("encoding", "detect_delimiter") if k in definition}


def _known_headers(dataset: Dataset) -> list[str]:
    fields = SchemaField.objects.filter(schema_id=dataset.current_schema_id)
    return [h for f in fields for h in (f.source or f.name, *f.aliases)]


def raw_file_set_dialect(*, raw_file: RawFile, encoding: str | None = None, delimiter: str | None = None) -> RawFile:
    """Override the detected encoding or delimiter of a file not yet processed."""
    if raw_file.state != RawFile.State.RAW:
        raise ValidationError("This file has already been processed.")
    if encoding:
        try:
            raw_file.encoding = text_encoding(encoding)
        except ValueError as exc:
            raise ValidationError(str(exc)) from None
        raw_file.encoding_confidence = "given"
        raw_file.encoding_score = None
        raw_file.encoding_candidates = []
    if delimiter:
        if len(delimiter) != 1 or delimiter in '"\r\n':
            raise ValidationError("The delimiter must be one character other than a quote or newline.")
        if delimiter != raw_file.delimiter:
            raw_file.delimiter = delimiter
            raw_file.delimiter_source = "given"
    raw_file.save(
        update_fields=[
            "encoding",
            "encoding_confidence",
            "encoding_score",
            "encoding_candidates",
            "delimiter",
            "delimiter_source",
        ]
    )
    return raw_file


def raw_file_discard(*, raw_file: RawFile) -> None:
    """Delete a received file that will not be processed (e.g. after a preview)."""
    storage = data_storage()
    if storage.exists(raw_file.storage_name):
        storage.delete(raw_file.storage_name)
    raw_file.delete()


def raw_file_archive(*, raw_file: RawFile) -> RawFile:
    """Move a processed file from ``raw/`` to ``archive/<dataset>/``."""
    if raw_file.state == RawFile.State.ARCHIVED:
        return raw_file
    target = f"archive/{raw_file.dataset.slug}/{raw_file.storage_name.rsplit('/', 1)[-1]}"
    raw_file.storage_name = storage_move(data_storage(), raw_file.storage_name, target)
    raw_file.state = RawFile.State.ARCHIVED
    raw_file.save(update_fields=["storage_name", "state"])
    return raw_file
