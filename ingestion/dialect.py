"""Working out how a CSV file is encoded and delimited."""

from __future__ import annotations

import codecs
import csv
import re
from dataclasses import dataclass

from charset_normalizer import from_bytes

BOM = codecs.BOM_UTF8
SNIFF_DELIMITERS = ",;\t|"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_DECODED_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")
# Encodings we accept from the detector for files that are not UTF-8.
LEGACY_ENCODINGS = frozenset(
    codecs.lookup(e).name for e in ("cp1252", "latin-1", "iso8859-15", "cp1250", "iso8859-2", "mac-roman", "cp850")
)


class EncodingProbe:
    """Watches a byte stream go by and decides whether it is UTF-8.

    It keeps the first ``sample_size`` bytes for detection and sniffing, and
    notes whether non-ASCII characters decode as UTF-8 and counts bytes that
    do not. A file full of valid multi-byte sequences with a few bad bytes is a
    damaged UTF-8 file (the rows with bad bytes are rejected later), not a
    legacy-encoded one.
    """

    def __init__(self, sample_size: int = 1 << 20) -> None:
        self.sample_size = sample_size
        self.sample = bytearray()
        self.valid_multibyte = 0
        self.invalid_bytes = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")

    def feed(self, chunk: bytes) -> None:
        if len(self.sample) < self.sample_size:
            self.sample += chunk[: self.sample_size - len(self.sample)]
        if chunk.isascii() and not self._decoder.getstate()[0]:
            return
        self._count(self._decoder.decode(chunk))

    def _count(self, text: str) -> None:
        # Regular expressions keep this in C: the probe sees every byte.
        if text.isascii():
            return
        bad = len(_ESCAPED_BYTE.findall(text)) if _ESCAPED_BYTE.search(text) else 0
        self.invalid_bytes += bad
        if not self.valid_multibyte and _DECODED_NON_ASCII.search(text):
            self.valid_multibyte = 1

    def finish(self) -> None:
        self._count(self._decoder.decode(b"", final=True))

    @property
    def has_bom(self) -> bool:
        return self.sample.startswith(BOM)

    def encoding(self) -> tuple[str, str]:
        """Return ``(encoding, how)`` where *how* says how sure we are."""
        if self.sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return "utf-16", "exact"  # e.g. spreadsheet "Unicode text" exports
        if self.invalid_bytes == 0:
            return ("utf-8-sig" if self.has_bom else "utf-8"), "exact"
        if self.valid_multibyte > 0 or self.has_bom:
            return "utf-8", "damaged"
        matches = list(from_bytes(bytes(self.sample)))
        if matches:
            best = matches[0]
            # Small samples often tie between sibling code pages; the most
            # common one in the wild, cp1252, wins a tie.
            tied = [m for m in matches if m.chaos <= best.chaos and m.coherence >= best.coherence - 0.01]
            if any("cp1252" in m.could_be_from_charset for m in tied):
                return "cp1252", "detected"
            name = codecs.lookup(best.encoding).name
            if name in LEGACY_ENCODINGS:
                return name, "detected"
        return "cp1252", "guessed"


def sample_text(sample: bytes, encoding: str) -> str:
    """Decode a sample for sniffing, dropping a multi-byte tail cut in half."""
    try:
        return codecs.getincrementaldecoder(encoding)("replace").decode(sample, final=False)
    except UnicodeError:
        return ""


def text_encoding(name: str) -> str:
    """The canonical name of a codec that turns bytes into text, or ValueError.

    Refuses codecs such as rot13 or base64 that are not text encodings.
    """
    try:
        info = codecs.lookup(name)
    except LookupError:
        raise ValueError(f"Unknown encoding {name!r}.") from None
    if not getattr(info, "_is_text_encoding", True) or info.name in {
        "idna",
        "punycode",
        "raw-unicode-escape",
        "unicode-escape",
    }:
        raise ValueError(f"{name!r} is not a text encoding a CSV file can be written in.")
    return info.name


def delimiter_sniff(text: str) -> str:
    """Guess the delimiter from the first lines; ``,`` when unsure."""
    lines = text.splitlines()[:50]
    if not lines:
        return ","
    try:
        return csv.Sniffer().sniff("\n".join(lines), delimiters=SNIFF_DELIMITERS).delimiter
    except csv.Error:
        header = lines[0]
        counts = {d: header.count(d) for d in SNIFF_DELIMITERS}
        best = max(counts, key=lambda d: counts[d])
        return best if counts[best] else ","


@dataclass(frozen=True)
class Dialect:
    encoding: str
    encoding_confidence: str
    delimiter: str
