"""The one list of text encodings, and the doors that ask it."""

from __future__ import annotations

import codecs

import pytest

from api.parsers import JSON_CHARSETS
from core.charsets import charset_name
from core.encodings import TEXT_ENCODINGS, UNICODE_ENCODINGS, encoding_canonical, encoding_require
from ingestion.dialect import text_encoding

NOT_TEXT_ENCODINGS = ["undefined", "charmap", "utf-7", "base64", "bz2_codec", "zlib_codec", "rot13", "hex", "uu"]
NOT_TEXT_ENCODINGS += ["quopri", "idna", "punycode", "unicode_escape", "raw_unicode_escape", "klingon", "utf\x008"]


@pytest.mark.parametrize("name", sorted(TEXT_ENCODINGS))
def test_every_listed_encoding_is_canonical_and_reads_text_as_the_pipeline_does(name: str) -> None:
    sample = "a,b\n"

    assert codecs.lookup(name).name == name
    assert sample.encode(name).decode(name, "surrogateescape") == sample


@pytest.mark.parametrize(
    ("alias", "canonical"), [("latin-1", "iso8859-1"), ("UTF8", "utf-8"), ("windows-1252", "cp1252")]
)
def test_it_gives_the_canonical_name_of_an_alias(alias: str, canonical: str) -> None:
    assert encoding_canonical(alias) == canonical
    assert encoding_require(alias) == canonical


@pytest.mark.parametrize("name", NOT_TEXT_ENCODINGS)
def test_it_refuses_what_is_not_a_text_encoding_at_every_door(name: str) -> None:
    assert encoding_canonical(name) is None
    assert charset_name(name) is None
    with pytest.raises(ValueError, match="encoding"):
        text_encoding(name)


def test_the_json_charsets_are_text_encodings() -> None:
    assert JSON_CHARSETS == UNICODE_ENCODINGS
    assert UNICODE_ENCODINGS <= TEXT_ENCODINGS
