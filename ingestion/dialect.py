"""Working out how a CSV file is encoded and delimited, and whether it is text at all."""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from charset_normalizer import CharsetMatch, from_bytes

from core.encodings import encoding_require

BOM = codecs.BOM_UTF8
# Byte-order marks of the UTF-16 and UTF-32 encodings, whose text is full of NUL bytes.
WIDE_BOMS = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
SNIFF_DELIMITERS = ",;\t|"
_ESCAPED_BYTE = re.compile("[\udc80-\udcff]")
_DECODED_NON_ASCII = re.compile("[^\x00-\x7f\udc80-\udcff]")
_NON_ASCII_BYTE = re.compile(b"[\x80-\xff]")

# Encodings the detector may choose among, the most widely used first: when
# several read a sample identically (German text is the same in cp1252,
# latin-1 and cp1250), the first of them is named. Anything else must be declared.
DETECTABLE_ENCODINGS = (
    "cp1252",
    "latin_1",
    "iso8859_15",
    "cp1250",
    "iso8859_2",
    "cp1251",
    "koi8_r",
    "koi8_u",
    "iso8859_5",
    "cp1253",
    "iso8859_7",
    "cp1254",
    "iso8859_9",
    "cp1257",
    "iso8859_13",
    "iso8859_4",
    "cp1255",
    "iso8859_8",
    "cp1256",
    "iso8859_6",
    "cp1258",
    "cp932",
    "shift_jis",
    "euc_jp",
    "gb18030",
    "gbk",
    "gb2312",
    "big5",
    "cp949",
    "euc_kr",
)
MULTIBYTE_ENCODINGS = frozenset(
    codecs.lookup(e).name
    for e in ("cp932", "shift_jis", "euc_jp", "gb18030", "gbk", "gb2312", "big5", "cp949", "euc_kr")
)
# When detection is sure enough to decode a file without being told (see encoding_detect).
MIN_COHERENCE = 0.3  # the best reading must look like some language's letters this much
RIVAL_CHAOS = 0.1  # another reading within this much "mess" of the best is a rival ...
RIVAL_COHERENCE = 0.15  # ... unless its language fit is worse by more than this
# How much of a file the binary sniff looks at, and the share of control bytes that makes it binary.
SNIFF_BYTES = 64 * 1024
CONTROL_SHARE = 0.05
_CONTROL_BYTES = bytes(b for b in range(32) if b not in b"\t\n\r\f\v") + b"\x7f"
_TEXT_BYTES_TABLE = bytes(range(256))


@dataclass(frozen=True)
class EncodingGuess:
    """How a file's bytes should be read, and how that was decided.

    ``source`` is ``exact`` (valid UTF-8, or a UTF-16 or UTF-32 byte-order mark),
    ``valid-utf8`` (the file is valid UTF-8 with non-ASCII text although the
    dataset declares another encoding, named in ``candidates``: read as UTF-8),
    ``damaged`` (UTF-8 with some invalid bytes: those rows are rejected),
    ``detected`` (a legacy encoding the detector is sure of; ``confidence``
    is its score, 0-1) or ``unsure`` (no decision: ``candidates`` lists what
    the file could be, most likely first, and the run must not start).
    """

    encoding: str
    source: str
    confidence: float | None = None
    candidates: tuple[str, ...] = field(default=())


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
        self.size = 0
        # Within the sample only (bounded work): valid multi-byte characters and invalid bytes.
        self._sample_valid = 0
        self._sample_invalid = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")("surrogateescape")
        # When the sample is all ASCII: up to ``sample_size`` bytes from the line holding the
        # file's first non-ASCII byte, so detection judges the text that needs deciding.
        self.window = bytearray()
        self._sample_ascii = False  # known once the sample is full

    def feed(self, chunk: bytes) -> None:
        in_sample = len(self.sample) < self.sample_size
        rest = chunk
        if in_sample:
            taken = self.sample_size - len(self.sample)
            self.sample += chunk[:taken]
            rest = chunk[taken:]
            if len(self.sample) >= self.sample_size:
                self._sample_ascii = self.sample.isascii()
        if rest and self._sample_ascii and len(self.window) < self.sample_size:
            self._window_feed(rest)
        self.size += len(chunk)
        if chunk.isascii() and not self._decoder.getstate()[0]:
            return
        self._count(self._decoder.decode(chunk), in_sample)

    def _window_feed(self, chunk: bytes) -> None:
        if not self.window:
            if chunk.isascii():
                return
            found = _NON_ASCII_BYTE.search(chunk)
            if found is None:
                return
            chunk = chunk[chunk.rfind(b"\n", 0, found.start()) + 1 :]
        self.window += chunk[: self.sample_size - len(self.window)]

    def _count(self, text: str, in_sample: bool = False) -> None:
        # Regular expressions keep this in C: the probe sees every byte.
        if text.isascii():
            return
        bad = len(_ESCAPED_BYTE.findall(text)) if _ESCAPED_BYTE.search(text) else 0
        self.invalid_bytes += bad
        if in_sample:
            self._sample_invalid += bad
            self._sample_valid += len(_DECODED_NON_ASCII.findall(text))
        if not self.valid_multibyte and _DECODED_NON_ASCII.search(text):
            self.valid_multibyte = 1

    def finish(self) -> None:
        self._count(self._decoder.decode(b"", final=True))

    @property
    def has_bom(self) -> bool:
        return self.sample.startswith(BOM)

    def guess(self) -> EncodingGuess:
        """Decide the encoding; legacy encodings only when detection is sure (see ``encoding_detect``)."""
        # UTF-32 first: the UTF-16 little-endian mark (FF FE) is the start of the UTF-32 one (FF FE 00 00).
        if self.sample.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
            return EncodingGuess("utf-32", "exact")
        if self.sample.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
            return EncodingGuess("utf-16", "exact")  # e.g. spreadsheet "Unicode text" exports
        if self.invalid_bytes == 0:
            return EncodingGuess("utf-8-sig" if self.has_bom else "utf-8", "exact")
        # Mostly valid UTF-8 with a few bad bytes: a damaged UTF-8 file (its bad rows are rejected).
        # A legacy file only rarely forms valid UTF-8 sequences, and then far fewer than its bad bytes.
        valid, invalid = self._sample_valid, self._sample_invalid
        sample = bytes(self.sample)
        if sample.isascii() and self.window:
            # The sample says nothing about the non-ASCII text: judge the window around it instead.
            sample = bytes(self.window)
            text = codecs.getincrementaldecoder("utf-8")("surrogateescape").decode(sample, final=False)
            valid, invalid = len(_DECODED_NON_ASCII.findall(text)), len(_ESCAPED_BYTE.findall(text))
        if self.has_bom or (self.valid_multibyte and valid >= invalid):
            return EncodingGuess("utf-8", "damaged")
        if self.size > len(sample) and b"\n" in sample:
            # Never cut a multi-byte character in two: end the sample at a line break.
            sample = sample[: sample.rindex(b"\n") + 1]
        return encoding_detect(sample)

    def encoding(self) -> tuple[str, str]:
        """``(encoding, how)``: the encoding to read with (the likeliest one when unsure) and how sure we are."""
        guess = self.guess()
        name = guess.encoding or (guess.candidates[0] if guess.candidates else "utf-8")
        return name, guess.source


def _canonical(name: str) -> str:
    return codecs.lookup(name).name


_PREFERENCE = {_canonical(e): i for i, e in enumerate(DETECTABLE_ENCODINGS)}


def _named(charsets: Iterable[str]) -> str:
    """The most widely used of encodings that read a sample the same way."""
    names = {_canonical(c) for c in charsets if _canonical(c) in _PREFERENCE}
    return min(names, key=lambda n: _PREFERENCE[n]) if names else ""


def encoding_detect(sample: bytes) -> EncodingGuess:
    """Detect a legacy (non-UTF) encoding from a sample, or say it cannot be decided.

    charset-normalizer decodes the sample with each of ``DETECTABLE_ENCODINGS``
    and scores each reading by its "mess" (odd characters, mixed scripts) and
    its "coherence" (how well letter frequencies fit a language). We decode
    only when the best reading (1) fits a language (coherence at least
    ``MIN_COHERENCE``; multi-byte CJK encodings are exempt, their coherence is
    not measured) and (2) has no rival: no other encoding reads the sample
    *differently* with a similar mess and a similar language fit (multi-byte
    rivals count on mess alone). Otherwise the file must be declared.
    The confidence reported is the share of the sample that reads as clean
    text (1 minus the mess ratio).
    """
    if sample.isascii():
        # Every candidate reads ASCII the same way: naming one would be a guess that garbles the rest.
        return EncodingGuess("", "unsure", None, ())
    matches = list(from_bytes(sample, cp_isolation=list(DETECTABLE_ENCODINGS)))
    readings: dict[str, list[str]] = {}
    for m in matches:
        readings.setdefault(str(m), []).extend(m.could_be_from_charset or [m.encoding])
    candidates = tuple(dict.fromkeys(n for n in (_named(cs) for cs in readings.values()) if n))
    if not matches:
        return EncodingGuess("", "unsure", None, candidates)
    best = matches[0]
    best_text = str(best)
    name = _named(readings[best_text])
    multibyte = name in MULTIBYTE_ENCODINGS

    def rival(m: CharsetMatch) -> bool:
        if str(m) == best_text or m.chaos - best.chaos > RIVAL_CHAOS:
            return False
        if _named(m.could_be_from_charset or [m.encoding]) in MULTIBYTE_ENCODINGS:
            return True  # their language fit is not measured: a similar mess is enough to be a rival
        return best.coherence - m.coherence <= RIVAL_COHERENCE

    confidence = round(max(0.0, 1 - best.chaos), 2)
    sure = bool(name) and (multibyte or best.coherence >= MIN_COHERENCE) and not any(rival(m) for m in matches[1:])
    if sure:
        return EncodingGuess(name, "detected", confidence)
    return EncodingGuess("", "unsure", None, candidates)


def encoding_text(encoding: str, source: str, confidence: float | None = None, candidates: Sequence[str] = ()) -> str:
    """How a file's encoding is shown everywhere: "cp1251 (detected with confidence 96%)"."""
    if source == "unsure":
        return f"undecided (could be {', '.join(candidates[:6])})" if candidates else "undecided"
    if source == "valid-utf8":
        declared = f" although the dataset declares {candidates[0]}" if candidates else ""
        return f"{encoding} (read as UTF-8: the file is valid UTF-8{declared})"
    if source == "detected" and confidence is not None:
        return f"{encoding} (detected with confidence {confidence:.0%})"
    how = {
        "exact": "valid UTF-8" if encoding == "utf-8" else "stated by the byte-order mark",
        "damaged": "UTF-8 with some invalid bytes: those rows are rejected",
        "given": "declared for this file",
        "declared": "declared by the dataset",
        "detected": "detected",
        "guessed": "guessed",
    }.get(source, source)
    return f"{encoding} ({how})" if how else encoding


DECLARE_ENCODING_DOORS = (
    "Declare the encoding: --encoding on ingest_csv, the encoding field of the upload form, ?encoding= on the "
    'API upload, or the "encoding" option of the dataset\'s schema'
)


def encoding_unsure_message(candidates: Sequence[str], declare: str = DECLARE_ENCODING_DOORS) -> str:
    """Why a file whose encoding could not be decided is not read, and what to do (``declare``)."""
    could_be = f"it could be {', '.join(candidates[:6])}" if candidates else "no known encoding reads it cleanly"
    return (
        f"the file's encoding could not be decided ({could_be}): it is not UTF-8, and no other encoding "
        f"fits clearly enough to load it without being told. {declare}"
    )


def binary_signature(head: bytes) -> str | None:
    """What kind of non-text file ``head`` (its first bytes) starts like, or None."""
    for magic, what in BINARY_SIGNATURES:
        if head.startswith(magic):
            return what
    return None


BINARY_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"PK\x03\x04", "a ZIP archive, e.g. an .xlsx or .ods spreadsheet"),
    (b"PK\x05\x06", "a ZIP archive"),
    (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1", "an OLE2 document, e.g. an Excel .xls workbook"),
    (b"%PDF-", "a PDF document"),
    (b"\x89PNG\r\n\x1a\n", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"\x1f\x8b", "a gzip file; decompress it first"),
    (b"BZh", "a bzip2 file; decompress it first"),
    (b"\xfd7zXZ\x00", "an xz file; decompress it first"),
    (b"\x28\xb5\x2f\xfd", "a zstd file; decompress it first"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
)


def binary_sniff(head: bytes, *, encoding: str | None = None) -> str | None:
    """Why the first block of a file is not text, or None when it may be.

    Looks for the signature of a known binary format, then for control bytes
    (NUL and the like), which text never holds in bulk. UTF-16 and UTF-32
    (with a byte-order mark, or declared) are full of NUL bytes and are not
    judged by them.
    """
    what = binary_signature(head)
    if what is not None:
        return f"not a text CSV file (looks like {what})"
    wide = head.startswith(WIDE_BOMS) or (
        encoding is not None and _canonical(encoding).startswith(("utf-16", "utf-32"))
    )
    head = head[:SNIFF_BYTES]
    if wide or not head:
        return None
    controls = len(head) - len(head.translate(_TEXT_BYTES_TABLE, _CONTROL_BYTES))
    if controls < 8 or controls / len(head) <= CONTROL_SHARE:
        return None
    order = _utf16_order(head)
    if order is not None:
        return (
            "not a text CSV file as it stands (looks like UTF-16 text without a byte-order mark); "
            f"declare its encoding ({order})"
        )
    share = controls / len(head)
    return f"not a text CSV file (looks like binary data: {share:.0%} of its first bytes are control characters)"


def _utf16_order(head: bytes) -> str | None:
    """The byte order of UTF-16 text without a byte-order mark, or None when ``head`` is not that.

    Arbitrary binary data rarely decodes as UTF-16 at all (lone surrogates);
    a CSV file also has line breaks and no NUL characters once decoded.
    """
    for order in ("utf-16-le", "utf-16-be"):
        try:
            text = codecs.getincrementaldecoder(order)("strict").decode(head, final=False)
        except UnicodeDecodeError:
            continue
        if text and "\n" in text and "\x00" not in text:
            printable = sum(1 for ch in text if ch.isprintable() or ch in "\t\r\n")
            if printable / len(text) > 0.95:
                return order
    return None


def sample_text(sample: bytes, encoding: str) -> str:
    """Decode a sample for sniffing, dropping a multi-byte tail cut in half."""
    try:
        return codecs.getincrementaldecoder(encoding)("replace").decode(sample, final=False)
    except (UnicodeError, LookupError):
        return ""


def text_encoding(name: str) -> str:
    """The canonical name of a text encoding, or ValueError (see ``core.encodings``)."""
    return encoding_require(name)


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


def _norm_header(h: str) -> str:
    # As headers are matched to fields: case, spaces and a BOM aside.
    return h.strip().lstrip("\ufeff").casefold()


def header_row(text: str, delimiter: str) -> list[str]:
    """The first non-blank row of ``text`` split by ``delimiter`` (empty when there is none)."""
    try:
        for row in csv.reader(io.StringIO(text, newline=""), delimiter=delimiter):
            if row:
                return row
    except csv.Error:
        pass
    return []


def delimiter_matching_header(text: str, declared: str, known_headers: Iterable[str]) -> str | None:
    """A delimiter under which the header names the dataset's columns when ``declared`` does not.

    Returns the delimiter (other than ``declared``) whose header row holds the
    most known column names, provided it holds more than the declared one and
    at least two; None when the declared delimiter fits as well.
    """
    known = {_norm_header(h) for h in known_headers}

    def fit(d: str) -> int:
        return len({_norm_header(h) for h in header_row(text, d)} & known)

    declared_fit = fit(declared)
    best, best_fit = None, declared_fit
    for d in SNIFF_DELIMITERS:
        if d != declared and (score := fit(d)) > best_fit:
            best, best_fit = d, score
    return best if best is not None and best_fit >= 2 else None


def delimiter_text(delimiter: str, source: str, declared: str = "") -> str:
    """How a file's delimiter is shown: "';' (detected; the dataset declares ',')"."""
    if not delimiter:
        return ""
    if source == "declared":
        return f"{delimiter!r} (declared by the dataset)"
    if source == "given":
        return f"{delimiter!r} (declared for this file)"
    if source == "detected" and declared and declared != delimiter:
        return f"{delimiter!r} (detected; the dataset declares {declared!r})"
    return f"{delimiter!r} ({source})" if source else repr(delimiter)
