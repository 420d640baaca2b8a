"""Which text encodings exist: the one list every door asks (uploads, schemas, commands, request charsets).

Python's codec registry holds more than text encodings: bytes-to-bytes codecs
(``base64``, ``bz2_codec``, ``zlib_codec``, ``rot13``…), ``undefined`` (which
refuses to decode anything), codecs that turn escape sequences or host-name
syntax into text (``unicode_escape``, ``idna``, ``punycode``), ``charmap``
(needs a table) and ``utf-7`` (which browsers refuse, as a way to smuggle
markup past filters). So instead of removing the bad ones from the registry,
this module lists the good ones: the character encodings of Python's
standard codec table a CSV file, a form or a request body can be written in.
Each reads bytes into at most as many characters as there were bytes, so a
body decoded with one cannot grow past its size limit.
"""

from __future__ import annotations

import codecs

# Canonical names, as ``codecs.lookup(name).name`` gives them.
TEXT_ENCODINGS = frozenset(
    {
        # Unicode
        "utf-8",
        "utf-8-sig",
        "utf-16",
        "utf-16-be",
        "utf-16-le",
        "utf-32",
        "utf-32-be",
        "utf-32-le",
        "ascii",
        # ISO 8859 and other single-byte encodings
        "iso8859-1",
        "iso8859-2",
        "iso8859-3",
        "iso8859-4",
        "iso8859-5",
        "iso8859-6",
        "iso8859-7",
        "iso8859-8",
        "iso8859-9",
        "iso8859-10",
        "iso8859-11",
        "iso8859-13",
        "iso8859-14",
        "iso8859-15",
        "iso8859-16",
        "koi8-r",
        "koi8-t",
        "koi8-u",
        "kz1048",
        "ptcp154",
        "tis-620",
        "hp-roman8",
        "palmos",
        # Windows code pages
        "cp1250",
        "cp1251",
        "cp1252",
        "cp1253",
        "cp1254",
        "cp1255",
        "cp1256",
        "cp1257",
        "cp1258",
        "cp874",
        # DOS code pages
        "cp437",
        "cp720",
        "cp737",
        "cp775",
        "cp850",
        "cp852",
        "cp855",
        "cp856",
        "cp857",
        "cp858",
        "cp860",
        "cp861",
        "cp862",
        "cp863",
        "cp864",
        "cp865",
        "cp866",
        "cp869",
        "cp1006",
        "cp1125",
        # EBCDIC
        "cp037",
        "cp273",
        "cp424",
        "cp500",
        "cp875",
        "cp1026",
        "cp1140",
        # Mac
        "mac-arabic",
        "mac-croatian",
        "mac-cyrillic",
        "mac-farsi",
        "mac-greek",
        "mac-iceland",
        "mac-latin2",
        "mac-roman",
        "mac-romanian",
        "mac-turkish",
        # East Asian
        "big5",
        "big5hkscs",
        "cp932",
        "cp949",
        "cp950",
        "euc_jis_2004",
        "euc_jisx0213",
        "euc_jp",
        "euc_kr",
        "gb18030",
        "gb2312",
        "gbk",
        "hz",
        "iso2022_jp",
        "iso2022_jp_1",
        "iso2022_jp_2",
        "iso2022_jp_2004",
        "iso2022_jp_3",
        "iso2022_jp_ext",
        "iso2022_kr",
        "johab",
        "shift_jis",
        "shift_jis_2004",
        "shift_jisx0213",
    }
)
# RFC 8259 asks for UTF-8; UTF-16 and UTF-32 are what JSON parsers have always detected. ASCII is a subset of UTF-8.
UNICODE_ENCODINGS = frozenset(
    {"utf-8", "utf-8-sig", "utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be", "ascii"}
)
# What UTF-8-only formats (forms, NDJSON) accept.
UTF8_ENCODINGS = frozenset({"utf-8", "utf-8-sig", "ascii"})


def encoding_canonical(name: str) -> str | None:
    """The canonical name of ``name`` when it is a text encoding in ``TEXT_ENCODINGS``, else None."""
    try:
        canonical = codecs.lookup(name).name
    except (LookupError, ValueError, TypeError):  # ValueError: e.g. a NUL in the name
        return None
    return canonical if canonical in TEXT_ENCODINGS else None


def encoding_require(name: str) -> str:
    """The canonical name of the text encoding ``name``, or ValueError saying why it is refused.

    The messages end without a full stop: they are joined with others by "; ".
    """
    canonical = encoding_canonical(name)
    if canonical is not None:
        return canonical
    try:
        codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        raise ValueError(f"Unknown encoding {name[:40]!r}") from None
    raise ValueError(f"{name[:40]!r} is not a text encoding a CSV file can be written in")
