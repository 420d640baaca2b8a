"""Encoding detection that decides only when sure, and the binary sniff."""

from __future__ import annotations

import gzip

import pytest

from ingestion.dialect import EncodingProbe, binary_sniff, delimiter_matching_header, encoding_detect, encoding_text

RUSSIAN = "id,name,city,note\n" + "".join(
    f"{i},Мария Смирнова,Санкт-Петербург,Доставка завтра утром\n" for i in range(20)
)
JAPANESE = "id,name,city,note\n" + "".join(f"{i},佐藤花子,大阪府,配達は明日の朝です\n" for i in range(2000))


def probe(data: bytes, sample_size: int = 1 << 20) -> EncodingProbe:
    p = EncodingProbe(sample_size)
    for i in range(0, len(data), 4096):
        p.feed(data[i : i + 4096])
    p.finish()
    return p


@pytest.mark.parametrize(
    ("encoding", "named"), [("cp1251", "cp1251"), ("koi8-r", "koi8-r"), ("iso8859-5", "iso8859-5")]
)
def test_it_detects_a_cyrillic_code_page_it_is_sure_of(encoding: str, named: str) -> None:
    guess = encoding_detect(RUSSIAN.encode(encoding))

    assert (guess.encoding, guess.source) == (named, "detected")
    assert guess.confidence is not None and guess.confidence > 0.9


def test_it_does_not_decide_between_close_readings_and_names_them() -> None:
    guess = encoding_detect("id,name\n1,Crème brûlée à Besançon\n".encode("cp1252"))

    assert (guess.encoding, guess.source) == ("", "unsure")
    assert {"cp1252", "cp1250"} <= set(guess.candidates)


def test_utf8_is_exact_and_never_detected() -> None:
    assert probe(RUSSIAN.encode()).guess().source == "exact"
    assert probe(b"\xef\xbb\xbf" + RUSSIAN.encode()).guess().encoding == "utf-8-sig"


def test_a_utf8_file_with_a_few_bad_bytes_stays_utf8() -> None:
    data = RUSSIAN.encode() + b"21,caf\xe9,x,y\n"

    assert (probe(data).guess().encoding, probe(data).guess().source) == ("utf-8", "damaged")


def test_a_sample_cut_inside_a_multibyte_character_still_detects_the_encoding() -> None:
    data = JAPANESE.encode("shift_jis")
    # A sample size that ends in the middle of a two-byte character.
    size = next(
        n for n in range(4001, 5000) if data[n - 1] >= 0x81 and data[: n - 1].count(b"\n") == data[:n].count(b"\n")
    )

    guess = probe(data, sample_size=size).guess()

    assert (guess.encoding, guess.source) == ("cp932", "detected")


def test_encoding_text_says_where_the_encoding_came_from() -> None:
    assert encoding_text("cp1251", "detected", 0.96) == "cp1251 (detected with confidence 96%)"
    assert encoding_text("cp1251", "declared") == "cp1251 (declared by the dataset)"
    assert encoding_text("", "unsure", None, ["cp932", "cp949"]) == "undecided (could be cp932, cp949)"


@pytest.mark.parametrize(
    ("head", "words"),
    [
        (b"PK\x03\x04\x14\x00", "looks like a ZIP archive"),
        (gzip.compress(b"a,b\n1,2\n"), "looks like a gzip file; decompress it first"),
        (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(100), "looks like an OLE2 document, e.g. an Excel .xls"),
        (b"%PDF-1.4\n", "looks like a PDF document"),
        (bytes(4096), "looks like binary data: 100% of its first bytes are control characters"),
    ],
)
def test_the_sniff_names_what_a_binary_file_looks_like(head: bytes, words: str) -> None:
    message = binary_sniff(head)

    assert message is not None and message.startswith("not a text CSV file") and words in message


@pytest.mark.parametrize(
    "text",
    [b"id,name\n1,a\x00b\n", "id,name\n1,Иван\n".encode("utf-16"), RUSSIAN.encode("cp1251"), b"a\tb\x0c\n"],
)
def test_the_sniff_lets_text_through(text: bytes) -> None:
    assert binary_sniff(text) is None


def test_declared_utf16_without_a_bom_is_not_judged_by_its_nul_bytes() -> None:
    data = RUSSIAN.encode("utf-16-le")

    assert "UTF-16" in (binary_sniff(data) or "")
    assert binary_sniff(data, encoding="utf-16-le") is None


def test_a_delimiter_matching_the_header_is_found_only_when_the_declared_one_does_not_fit() -> None:
    known = ["id", "name", "city"]

    assert delimiter_matching_header("id;name;city\n1;a;b\n", ",", known) == ";"
    assert delimiter_matching_header("id,name,city\n1,a;b;c,d\n", ",", known) is None
    assert delimiter_matching_header("x;y;z\n", ",", known) is None


def test_no_encoding_is_suggested_from_pure_ascii_evidence() -> None:
    guess = encoding_detect(b"id,name,city\n" + b"1,Ann,Oslo\n" * 200)

    assert (guess.encoding, guess.source, guess.candidates) == ("", "unsure", ())


def test_legacy_text_after_an_ascii_sample_is_detected_from_a_window_around_it() -> None:
    ascii_part = "id,name,city,note\n" + "".join(f"{i},Ann Lee,Oslo,delivered\n" for i in range(400))
    legacy = "".join(f"{i},Мария Смирнова,Санкт-Петербург,Доставка завтра утром\n" for i in range(400, 420))
    data = (ascii_part + legacy).encode("cp1251")
    sample_size = len(ascii_part) // 2  # the non-ASCII rows start well after the sample

    guess = probe(data, sample_size=sample_size).guess()

    assert (guess.encoding, guess.source) == ("cp1251", "detected")
