"""Nothing lost, nothing silently altered: how files are decoded, checked and refused before loading.

Every file here is real, written by the test: legacy-encoded ones are
Unicode text encoded with Python's codecs, binary ones carry real headers.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from ingestion.models import Dataset, RawFile
from ingestion.services.raw_files import NotTextFile, raw_file_receive
from processing.exports import rejected_export
from processing.models import RejectedRow, Run, RunStatus
from processing.services.previews import file_preview
from processing.services.runs import file_ingest
from tests.conftest import SALES_HEADER, sales_row
from tests.records import records, records_total, stored_record

pytestmark = pytest.mark.django_db

GREEK = [("Λεωνίδας Παπαδόπουλος", "Αθήνα"), ("Μαρία Γεωργίου", "Θεσσαλονίκη"), ("Νίκος Ιωάννου", "Πάτρα")]
RUSSIAN = [("Иван Петров", "Москва"), ("Мария Смирнова", "Санкт-Петербург"), ("Алексей Козлов", "Новосибирск")]
FRENCH = [("Crème brûlée", "Besançon"), ("Hélène Dupré", "Orléans"), ("François Lefèvre", "Nîmes")]
# One text per legacy encoding that must load exactly when declared.
LEGACY_TEXTS = {
    "shift_jis": [("山田太郎", "東京都"), ("佐藤花子", "大阪府")],
    "cp932": [("鈴木一郎", "名古屋市"), ("山田①", "東京")],
    "euc_jp": [("山田太郎", "東京都"), ("佐藤花子", "大阪府")],
    "gb18030": [("张伟", "北京市"), ("王芳", "上海市"), ("𠀀", "广州")],
    "euc_kr": [("김민준", "서울특별시"), ("이서연", "부산광역시")],
    "big5": [("陳大文", "臺北市"), ("林美玲", "高雄市")],
    "iso8859-7": GREEK,
    "cp1253": GREEK,
    "cp1251": RUSSIAN,
    "koi8-r": RUSSIAN,
    "iso8859-5": RUSSIAN,
    "cp1250": [("Paweł Łukasiewicz", "Łódź"), ("Zofia Wójcik", "Kraków")],
    "iso8859-2": [("Paweł Łukasiewicz", "Łódź"), ("Zofia Wójcik", "Kraków")],
    "cp1252": FRENCH,
    "iso8859-15": [("Œuvre €", "Besançon")],
    "latin-1": [("Jürgen Müller", "Köln")],
    "cp1254": [("Ayşe Yılmaz", "İstanbul")],
    "iso8859-9": [("Ayşe Yılmaz", "İstanbul")],
    "cp1257": [("Jānis Bērziņš", "Rīga")],
    "cp1255": [("דוד כהן", "ירושלים")],
    "cp1256": [("محمد علي", "القاهرة")],
}


def people_text(rows: list[tuple[str, str]], *, repeat: int = 1, header: str = "id,name,city") -> str:
    lines = [header]
    n = 0
    for _ in range(repeat):
        for name, city in rows:
            n += 1
            lines.append(f"P{n},{name},{city}")
    return "\n".join(lines) + "\n"


def ingest(dataset: Dataset, path: Path, **kwargs: Any) -> Run:
    with path.open("rb") as fh:
        return file_ingest(dataset=dataset, source=fh, original_name=path.name, **kwargs)


def preview(dataset: Dataset, path: Path, **kwargs: Any) -> Any:
    with path.open("rb") as fh:
        return file_preview(dataset=dataset, source=fh, original_name=path.name, **kwargs)


def stored(dataset: Dataset) -> dict[str, tuple[str, str]]:
    return {r.key: (r.data["name"], r.data["city"]) for r in records(dataset)}


def expected(rows: list[tuple[str, str]], repeat: int = 1) -> dict[str, tuple[str, str]]:
    return {f"P{i}": row for i, row in enumerate(rows * repeat, start=1)}


# --- encodings -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("encoding", "rows"),
    [("iso8859-7", GREEK), ("cp1251", RUSSIAN), ("koi8-r", RUSSIAN), ("gb18030", LEGACY_TEXTS["gb18030"])],
)
def test_a_legacy_file_detected_with_confidence_loads_its_exact_text_and_says_so(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path], encoding: str, rows: list[tuple[str, str]]
) -> None:
    dataset = people_dataset()
    path = csv_file(people_text(rows, repeat=10), encoding=encoding)

    run = ingest(dataset, path)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows, 10)
    raw = run.raw_file
    assert raw.encoding_confidence == "detected"
    assert raw.encoding_score is not None and 0.5 < raw.encoding_score <= 1
    assert f"(detected with confidence {raw.encoding_score:.0%})" in raw.dialect()["encoding_text"]


def test_the_greek_file_no_longer_loads_as_cp1252_mojibake(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    rows = [("Λεωνιδας", "Αθήνα"), *GREEK]
    run = ingest(dataset, csv_file(people_text(rows, repeat=3), encoding="iso8859-7"))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset)["P1"] == ("Λεωνιδας", "Αθήνα")
    assert stored(dataset) == expected(rows, 3)


def test_a_shift_jis_file_that_cannot_be_decided_fails_before_loading_naming_the_candidates(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    # One short row reads as well in Japanese (cp932) as in Korean (cp949): not sure.
    path = csv_file("id,name,city\nP1,山田,東京\n", encoding="shift_jis")

    run = ingest(dataset, path)

    assert run.status == RunStatus.FAILED
    assert "the file's encoding could not be decided" in run.error
    assert "cp932" in run.error
    assert "--encoding" in run.error and '"encoding" option' in run.error
    assert (run.rows_read, records_total(), RejectedRow.objects.count()) == (0, 0, 0)
    assert run.raw_file.encoding_confidence == "unsure"
    assert "cp932" in run.raw_file.encoding_candidates


def test_a_western_european_file_is_not_read_as_cp1252_by_default(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file(people_text(FRENCH, repeat=5), encoding="cp1252")

    result = preview(dataset, path)

    assert result.status == RunStatus.FAILED
    assert "cp1252" in result.error and "cp1250" in result.error
    assert result.dialect["encoding_source"] == "unsure"
    assert result.dialect["encoding_text"].startswith("undecided (could be ")
    assert result.columns == []


@pytest.mark.parametrize("encoding", sorted(LEGACY_TEXTS))
def test_a_declared_legacy_encoding_round_trips_exactly(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path], encoding: str
) -> None:
    dataset = people_dataset()
    rows = LEGACY_TEXTS[encoding]
    path = csv_file(people_text(rows), encoding=encoding)

    run = ingest(dataset, path, encoding=encoding)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows)
    assert run.raw_file.encoding_confidence == "given"


@pytest.mark.parametrize("encoding", ["shift_jis", "cp1253", "big5"])
def test_the_dataset_schema_encoding_reads_every_file(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path], encoding: str
) -> None:
    dataset = people_dataset(encoding=encoding)
    rows = LEGACY_TEXTS[encoding]
    run = ingest(dataset, csv_file(people_text(rows), encoding=encoding))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows)
    assert run.raw_file.encoding_confidence == "declared"
    assert run.raw_file.dialect()["encoding_text"].endswith("(declared by the dataset)")


def test_a_byte_order_mark_wins_over_the_dataset_declaration(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(encoding="cp1251")
    rows = [("Иван Петров", "Москва")]
    run = ingest(dataset, csv_file(people_text(rows).encode("utf-8-sig")))

    assert (run.raw_file.encoding, run.raw_file.encoding_confidence) == ("utf-8-sig", "exact")
    assert stored(dataset) == expected(rows)


def test_utf16_with_a_byte_order_mark_still_loads(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    rows = RUSSIAN + GREEK
    run = ingest(dataset, csv_file(people_text(rows).encode("utf-16")))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows)


def test_utf16_without_a_byte_order_mark_is_refused_unless_declared(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file(people_text(RUSSIAN).encode("utf-16-le"))

    with path.open("rb") as fh, pytest.raises(NotTextFile, match=r"UTF-16 text without a byte-order mark.*utf-16-le"):
        raw_file_receive(dataset=dataset, source=fh)
    run = ingest(dataset, path, encoding="utf-16-le")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(RUSSIAN)


def test_valid_utf8_is_not_garbled_by_a_dataset_declaring_a_legacy_encoding(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(encoding="cp1252")
    rows = [("Zoë Ünal Ærø", "Tórshavn")]
    run = ingest(dataset, csv_file(people_text(rows)))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows)
    raw = run.raw_file
    assert raw.encoding == "utf-8"
    assert raw.dialect()["encoding_text"] == (
        "utf-8 (read as UTF-8: the file is valid UTF-8 although the dataset declares cp1252)"
    )


def test_the_dataset_declaration_still_reads_an_ascii_or_legacy_file(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(encoding="cp1252")
    ascii_run = ingest(dataset, csv_file(people_text([("Ann", "Oslo")])))
    legacy_run = ingest(dataset, csv_file(people_text(FRENCH), encoding="cp1252"))

    assert (ascii_run.raw_file.encoding, ascii_run.raw_file.encoding_confidence) == ("cp1252", "declared")
    assert (legacy_run.raw_file.encoding, legacy_run.raw_file.encoding_confidence) == ("cp1252", "declared")
    assert stored(dataset) == expected(FRENCH)


def test_an_encoding_given_for_the_file_wins_over_valid_utf8(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(encoding="cp1252")
    run = ingest(dataset, csv_file(people_text([("Zoë", "Oslo")])), encoding="cp1252")

    assert (run.raw_file.encoding, run.raw_file.encoding_confidence) == ("cp1252", "given")
    assert run.raw_file.dialect()["encoding_text"] == "cp1252 (declared for this file)"


@pytest.mark.parametrize("encoding", ["utf-32", "utf-32-le", "utf-32-be"])
def test_utf32_with_a_byte_order_mark_loads_exactly(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path], encoding: str
) -> None:
    dataset = people_dataset()
    rows = RUSSIAN + GREEK
    content = people_text(rows).encode(encoding)
    if encoding != "utf-32":  # the explicit-order codecs write no byte-order mark: add the one of their order
        content = (codecs.BOM_UTF32_LE if encoding.endswith("le") else codecs.BOM_UTF32_BE) + content

    run = ingest(dataset, csv_file(content))

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == expected(rows)
    assert (run.raw_file.encoding, run.raw_file.encoding_confidence) == ("utf-32", "exact")


def test_legacy_rows_after_a_megabyte_of_ascii_are_detected_not_given_an_ascii_guess(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    ascii_rows = [("Ann Lee", "Oslo")] * 70_000  # about 1.2 MB, past the 1 MB sample
    text = people_text(ascii_rows + RUSSIAN * 10)
    assert len(text.encode()) > 1_100_000

    with csv_file(text, encoding="cp1251").open("rb") as fh:
        raw = raw_file_receive(dataset=dataset, source=fh)

    assert (raw.encoding, raw.encoding_confidence) == ("cp1251", "detected")
    assert "cp1252" not in raw.encoding_candidates


# --- binary files ----------------------------------------------------------------------


def _zip(name: str, content: bytes) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(name, content)
    return buffer.getvalue()


CSV_BYTES = people_text(RUSSIAN).encode()
BINARY_FILES = {
    "zip": (_zip("people.csv", CSV_BYTES), "looks like a ZIP archive"),
    "xlsx": (_zip("xl/workbook.xml", b"<workbook/>"), "looks like a ZIP archive, e.g. an .xlsx"),
    "gzip": (gzip.compress(CSV_BYTES), "looks like a gzip file; decompress it first"),
    "xls": (b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504) + b"Workbook", "looks like an OLE2 document"),
    "pdf": (b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", "looks like a PDF document"),
    "png": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(17), "looks like a PNG image"),
    "jpeg": (b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + bytes(100), "looks like a JPEG image"),
    "gif": (b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + bytes(20), "looks like a GIF image"),
    "nul-heavy": (b"id,name\n" + bytes(range(256)) * 40, "looks like binary data"),
}


@pytest.mark.parametrize("kind", sorted(BINARY_FILES))
def test_a_file_that_is_not_text_is_refused_at_receive_and_nothing_is_stored(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path, kind: str
) -> None:
    content, words = BINARY_FILES[kind]
    path = csv_file(content, name=f"upload.{kind}")

    with path.open("rb") as fh, pytest.raises(NotTextFile) as excinfo:
        raw_file_receive(dataset=sales, source=fh, original_name=path.name)

    assert excinfo.value.messages[0].startswith("This is not a text CSV file")
    assert words in excinfo.value.messages[0]
    assert not RawFile.objects.exists()
    assert not [p for p in (data_dir / "raw").rglob("*") if p.is_file()] if (data_dir / "raw").exists() else True


def test_a_binary_file_is_refused_even_past_a_text_looking_start(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    # The control-character check reads the first block, not only the first bytes.
    content = (SALES_HEADER + "\n").encode() + bytes(range(32)) * 4000

    with csv_file(content).open("rb") as fh, pytest.raises(NotTextFile, match="binary data"):
        raw_file_receive(dataset=sales, source=fh)


def test_a_csv_with_a_stray_nul_byte_is_still_read_and_that_row_rejected(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    text = "\n".join([SALES_HEADER, sales_row(1, description="a\x00b"), sales_row(2)]) + "\n"
    run = ingest(sales, csv_file(text))

    assert run.rows_inserted == 1
    assert RejectedRow.objects.get(run=run).errors == {"description": ["contains a NUL byte"]}


# --- headers -----------------------------------------------------------------------------


def test_a_blank_header_over_values_fails_the_run_naming_the_column(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file("id,,name,city\nP1,,Ann,Oslo\nP2,secret,Bob,Rome\n")

    run = ingest(dataset, path)

    assert run.status == RunStatus.FAILED
    assert run.error == (
        "column 2 has no header but holds values (the first on line 3); name it in the header row, or remove the column"
    )
    assert not (records_total() > 0)


def test_a_whitespace_value_under_a_blank_header_is_not_dropped_without_a_word(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file("id,name,city,\nP1,Ann,Oslo,\nP2,Bob,Rome,  \n")

    run = ingest(dataset, path)

    assert run.status == RunStatus.FAILED
    assert run.error.startswith("column 4 has no header but holds values (the first on line 3)")
    assert not (records_total() > 0)


def test_an_empty_column_without_a_header_loads_and_is_reported_by_position(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file("id,name,city,\nP1,Ann,Oslo,\nP2,Bob,Rome,\n")

    result = preview(dataset, path)
    run = ingest(dataset, path)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.summary["unknown_columns"] == ["column 4 has no header"]
    assert stored(dataset) == {"P1": ("Ann", "Oslo"), "P2": ("Bob", "Rome")}
    unnamed = {"field": None, "type": None, "required": False, "header": "column 4 has no header", "status": "unknown"}
    assert unnamed in result.columns
    assert result.summary["unknown_columns"] == ["column 4 has no header"]


# --- delimiter ---------------------------------------------------------------------------


def test_a_semicolon_file_for_a_comma_dataset_fails_saying_what_it_looks_like(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset()
    path = csv_file("id;name;city\nP1;Ann;Oslo\n")

    result = preview(dataset, path)
    run = ingest(dataset, path)

    assert run.status == RunStatus.FAILED
    assert "missing required columns 'id', 'name'" in run.error
    assert "this file looks ';'-separated; the dataset declares ','" in run.error
    assert result.error == run.error
    assert result.dialect["delimiter_source"] == "declared"
    assert result.dialect["delimiter_text"] == "',' (declared by the dataset)"


def test_a_dataset_that_allows_detection_loads_a_semicolon_file_and_says_where_it_came_from(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(detect_delimiter=True)
    path = csv_file("id;name;city\nP1;Ann, Jr.;Oslo\n")

    result = preview(dataset, path)
    run = ingest(dataset, path)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored(dataset) == {"P1": ("Ann, Jr.", "Oslo")}
    assert (run.raw_file.delimiter, run.raw_file.delimiter_source) == (";", "detected")
    assert result.dialect["delimiter_text"] == "';' (detected; the dataset declares ',')"


def test_detection_keeps_the_declared_delimiter_when_the_header_fits_it(
    people_dataset: Callable[..., Dataset], csv_file: Callable[..., Path]
) -> None:
    dataset = people_dataset(detect_delimiter=True)
    run = ingest(dataset, csv_file("id,name,city\nP1,Ann; Bob; Eve,Oslo\n"))

    assert (run.raw_file.delimiter, run.raw_file.delimiter_source) == (",", "declared")
    assert stored(dataset) == {"P1": ("Ann; Bob; Eve", "Oslo")}


# --- caps ---------------------------------------------------------------------------------


def test_a_header_over_the_column_cap_fails_before_any_row(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    extra = ",".join(f"extra_{i}" for i in range(20_000 - 9))
    path = csv_file(f"{SALES_HEADER},{extra}\n{sales_row(1)}{',' * (20_000 - 9)}\n")

    run = ingest(sales, path)

    assert run.status == RunStatus.FAILED
    assert run.error == "the header has 20,000 columns; at most 1,000 are allowed (PIPELINE_MAX_COLUMNS)"
    assert not (records_total() > 0)
    assert len(str(run.summary)) < 1000


def test_a_huge_header_is_refused_while_it_is_read_with_bounded_memory(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    names = ",".join(f"c{i}" for i in range(1_000_000))  # about 7 MB of header
    path = csv_file(f"{SALES_HEADER},{names}\n{sales_row(1)}\n")

    tracemalloc.start()
    try:
        result = preview(sales, path)  # a dry run, as ?dry_run=true runs it inside a web worker
        run = ingest(sales, path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()

    assert peak < 20 * 1024 * 1024, f"peak {peak / 1e6:.0f} MB"  # 322 MB before it was bounded
    message = "the header has more than 1,000 columns; at most 1,000 are allowed (PIPELINE_MAX_COLUMNS)"
    assert (result.status, result.error) == (RunStatus.FAILED, message)
    assert (run.status, run.error) == (RunStatus.FAILED, message)
    assert not (records_total() > 0)


def test_a_header_whose_quote_never_closes_is_refused_at_the_header_bound(
    sales: Dataset, csv_file: Callable[..., Path], settings: Any
) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_COLUMNS": 20}
    rows = "\n".join(sales_row(i) for i in range(1, 2000))
    run = ingest(sales, csv_file(f'{SALES_HEADER},"notes\n{rows}\n'))

    assert run.status == RunStatus.FAILED
    assert run.error == (
        "the header row is longer than 20,062 characters (at most 20 names of at most 1,000 characters): "
        "is a quote left open in the header row?"
    )


def test_the_column_cap_is_a_setting(sales: Dataset, csv_file: Callable[..., Path], settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_COLUMNS": 9}
    run = ingest(sales, csv_file(f"{SALES_HEADER},extra\n{sales_row(1)},x\n"))

    assert run.error == "the header has 10 columns; at most 9 are allowed (PIPELINE_MAX_COLUMNS)"


def test_a_run_lists_at_most_fifty_unknown_columns_then_counts_the_rest(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    extra = [f"extra_{i}" for i in range(120)]
    path = csv_file(f"{SALES_HEADER},{','.join(extra)}\n{sales_row(1)}{',' * 120}\n")

    run = ingest(sales, path)

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert run.summary["unknown_columns"] == [*extra[:50], "and 70 more"]


def test_a_wide_file_with_long_names_keeps_the_run_document_small_and_its_rejected_export_whole(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    extra = [f"{'x' * 985}{i:05d}" for i in range(990)]  # 999 columns with 990-character names
    values = ",".join(f"v{i}" for i in range(990))
    bad = sales_row(2).replace(",1,u2@", ",many,u2@")  # quantity is not an integer
    path = csv_file(f"{SALES_HEADER},{','.join(extra)}\n{sales_row(1)},{values}\n{bad},{values}\n")

    run = ingest(sales, path)

    assert (run.status, run.rows_inserted, run.rows_rejected) == (RunStatus.PARTIALLY_SUCCEEDED, 1, 1), run.error
    assert len(json.dumps(run.summary)) < 60_000
    assert run.summary["headers_total"] == 999
    assert run.summary["headers"] == [*SALES_HEADER.split(","), *extra][: len(run.summary["headers"])]
    exported = list(csv.reader(io.StringIO("".join(rejected_export(run, "csv")))))
    assert exported[0] == ["_line", "_errors", *SALES_HEADER.split(","), *extra]
    assert exported[1][-1] == "v989"


def test_a_runaway_header_name_fails_the_run(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(f'{SALES_HEADER},"{"x" * 5000}"\n{sales_row(1)},\n'))

    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the header of column 10 is 5,000 characters long (at most 1,000)")


# --- line numbers ------------------------------------------------------------------------


def test_rows_split_by_bare_carriage_returns_keep_their_line_numbers(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    rows = [
        sales_row(1),
        "S2,bad,books,1,1,a@example.com,US,,yes",
        "S3,x",
        sales_row(4, description='"a\rb"'),
        "S5,2024-01-02,books,1,x,a@example.com,US,,yes",
    ]
    run = ingest(sales, csv_file("\r".join([SALES_HEADER, *rows]) + "\r"))

    lines = dict(RejectedRow.objects.filter(run=run).values_list("line_number", "errors"))
    assert sorted(lines) == [3, 4, 7]
    assert stored_record(key="S4").source_line == 5


def test_a_rejected_row_never_lacks_its_line(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    body = "\r\n".join([SALES_HEADER, "S1,bad\rS2,bad", "S3,x\r\rS4"]) + "\n"
    run = ingest(sales, csv_file(body))

    assert list(RejectedRow.objects.filter(run=run).order_by("line_number").values_list("line_number", flat=True)) == [
        2,
        3,
        4,
        6,
    ]


def test_the_upload_options_still_refuse_a_bad_encoding_name(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    with csv_file("a\n").open("rb") as fh, pytest.raises(ValidationError, match="Unknown encoding"):
        raw_file_receive(dataset=sales, source=fh, encoding="klingon")
