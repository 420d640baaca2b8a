"""The CSV pipeline end to end on real files, on whichever database the suite uses."""

from __future__ import annotations

import codecs
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ingestion.models import Dataset, RawFile
from ingestion.schema import schema_parse
from ingestion.services.datasets import dataset_apply
from ingestion.storage import data_storage
from processing.models import RejectedRow, Run, RunStatus
from processing.services.previews import file_preview
from processing.services.runs import file_ingest, run_execute
from tests.conftest import SALES_HEADER, SALES_SCHEMA, sales_row
from tests.records import records, records_total, stored_record, stored_record_keys

pytestmark = pytest.mark.django_db


def ingest(dataset: Dataset, path: Path, **kwargs: Any) -> Run:
    with path.open("rb") as fh:
        return file_ingest(dataset=dataset, source=fh, original_name=path.name, **kwargs)


def rejected(run: Run) -> dict[int, dict[str, list[str]]]:
    return {r.line_number: r.errors for r in RejectedRow.objects.filter(run=run)}


def sales_file(rows: list[str]) -> str:
    return "\n".join([SALES_HEADER, *rows]) + "\n"


def test_it_loads_valid_rows_and_keeps_counters_consistent(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(sales_file([sales_row(i) for i in range(1, 6)])))

    assert run.status == RunStatus.SUCCEEDED
    assert (run.rows_read, run.rows_valid, run.rows_rejected, run.rows_inserted) == (5, 5, 0, 5)
    record = records(sales).get(key="S3")
    assert record.data == {
        "id": "S3",
        "timestamp": "2024-01-02T03:04:05.000000Z",
        "category": "books",
        "value": "3.50",
        "quantity": 1,
        "email": "u3@example.com",
        "country": "US",
        "description": None,
        "is_active": True,
    }
    assert (record.first_run_id, record.last_run_id, record.source_line) == (run.pk, run.pk, 4)
    assert record.schema_number == sales.current_schema.number


def test_it_rejects_bad_rows_with_reasons_and_keeps_the_good_ones(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    rows = [
        sales_row(1),
        "S2,not-a-date,books,1,1,a@example.com,US,,yes",
        "S3,2024-01-02,games,1,-4,a@example.com,US,,yes",
        sales_row(4),
    ]
    run = ingest(sales, csv_file(sales_file(rows)))

    assert run.status == RunStatus.PARTIALLY_SUCCEEDED
    assert run.rows_read == run.rows_valid + run.rows_rejected == 4
    errors = rejected(run)
    assert errors[3] == {"timestamp": ["'not-a-date' is not an ISO 8601 date-time"]}
    assert set(errors[4]) == {"category", "quantity"}
    assert records(sales).count() == 2
    stored = RejectedRow.objects.get(run=run, line_number=3)
    assert stored.raw["timestamp"] == "not-a-date"
    assert stored.schema_id == sales.current_schema_id


def test_it_reads_utf8_with_a_bom(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = csv_file(codecs.BOM_UTF8 + sales_file([sales_row(1, description="café")]).encode())
    run = ingest(sales, path)

    assert run.status == RunStatus.SUCCEEDED
    assert run.raw_file.encoding == "utf-8-sig"
    assert stored_record(key="S1").data["description"] == "café"


def test_a_cp1252_file_decodes_correctly_when_its_encoding_is_given(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    # French text reads almost as well in cp1250: detection cannot be sure, the encoding is given.
    text = sales_file(
        [sales_row(i, description=d) for i, d in enumerate(["Crème brûlée", "naïve façade", "Œuvre – “quoted”"], 1)]
    )
    run = ingest(sales, csv_file(text, encoding="cp1252"), encoding="cp1252")

    assert run.status == RunStatus.SUCCEEDED, run.error
    assert (run.raw_file.encoding, run.raw_file.encoding_confidence) == ("cp1252", "given")
    assert stored_record(key="S3").data["description"] == "Œuvre – “quoted”"


def test_it_rejects_rows_with_bytes_invalid_in_the_encoding_instead_of_mangling_them(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    good = sales_file([sales_row(1, description="naïve"), sales_row(2)]).encode()
    bad_line = sales_row(3, description="caf\x00").encode().replace(b"\x00", b"\xe9")
    run = ingest(sales, csv_file(good + bad_line + b"\n"))

    assert run.raw_file.encoding == "utf-8"
    assert run.rows_valid == 2
    assert rejected(run) == {4: {"description": ["contains bytes that are not valid in the file's encoding"]}}
    assert RejectedRow.objects.get(run=run).raw["description"] == "caf\\xe9"


def test_it_sniffs_semicolons_when_the_dataset_has_no_delimiter(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    sales.delimiter = ""
    sales.save()
    text = SALES_HEADER.replace(",", ";") + "\n" + "S1;2024-01-02;books;1,234.50;2;a@example.com;fr;;no\n"
    run = ingest(sales, csv_file(text))

    assert run.raw_file.delimiter == ";"
    assert run.status == RunStatus.SUCCEEDED
    assert stored_record(key="S1").data["value"] == "1234.50"


def test_it_numbers_rows_by_the_physical_line_they_start_on(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    rows = [
        sales_row(1, description='"first\nsecond ""quoted""\nthird"'),
        "S2,bad,books,1,1,a@example.com,US,,yes",
        sales_row(3, description='"a\r\nb"'),
        "S4,2024-01-02,books,1,x,a@example.com,US,,yes",
    ]
    run = ingest(sales, csv_file(sales_file(rows)))

    assert sorted(rejected(run)) == [5, 8]
    assert stored_record(key="S1").data["description"] == 'first\nsecond "quoted"\nthird'
    assert stored_record(key="S3").source_line == 6


def test_it_rejects_ragged_rows(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    rows = [sales_row(1), "S2,2024-01-02,books,1,1,a@example.com,US", sales_row(3) + ",extra"]
    run = ingest(sales, csv_file(sales_file(rows)))

    errors = rejected(run)
    assert errors[3] == {"__row__": ["expected 9 values, got 7"]}
    assert errors[4] == {"__row__": ["expected 9 values, got 10"]}
    assert RejectedRow.objects.get(run=run, line_number=4).raw["__extra__"] == ["extra"]


def test_it_rejects_rows_with_nul_bytes(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(sales_file([sales_row(1, description="a\x00b"), sales_row(2)])))

    assert rejected(run) == {2: {"description": ["contains a NUL byte"]}}
    assert RejectedRow.objects.get(run=run).raw["description"] == "a\u2400b"


def test_it_rejects_oversized_fields(sales: Dataset, csv_file: Callable[..., Path], settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_FIELD_SIZE": 100}
    run = ingest(sales, csv_file(sales_file([sales_row(1, description="x" * 500), sales_row(2)])))

    assert rejected(run) == {2: {"description": ["value is 500 characters long, over the limit of 100"]}}
    assert run.rows_valid == 1


def test_an_empty_file_fails_with_a_clear_reason(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(""))

    assert run.status == RunStatus.FAILED
    assert run.error == "the file is empty: there is no header row"


def test_a_header_only_file_succeeds_with_no_rows(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(SALES_HEADER + "\n"))

    assert run.status == RunStatus.SUCCEEDED
    assert run.rows_read == 0
    assert run.summary["note"] == "the file has a header but no data rows"


def test_a_missing_required_column_fails_before_reading_rows(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    header = SALES_HEADER.replace(",customer_email", "").replace(",quantity", "")
    run = ingest(sales, csv_file(header + "\nS1,2024-01-02,books,1,US,,yes\n"))

    assert run.status == RunStatus.FAILED
    assert run.error == "missing required columns 'quantity', 'customer_email'"
    assert run.rows_read == 0
    assert not (records_total() > 0)


def test_duplicate_header_names_fail_the_run(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(SALES_HEADER + ",country\n" + sales_row(1) + ",FR\n"))

    assert run.status == RunStatus.FAILED
    assert run.error == "duplicate column 'country' (columns 7 and 10)"


def test_unknown_columns_are_ignored_and_listed(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(SALES_HEADER + ",notes,shelf\n" + sales_row(1) + ",hello,B4\n"))

    assert run.status == RunStatus.SUCCEEDED
    assert run.summary["unknown_columns"] == ["notes", "shelf"]
    assert "notes" not in stored_record(key="S1").data


def test_a_missing_optional_column_loads_as_null(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    header = SALES_HEADER.replace(",description", "")
    run = ingest(sales, csv_file(header + "\nS1,2024-01-02,books,1,1,a@example.com,US,yes\n"))

    assert run.status == RunStatus.SUCCEEDED
    assert run.summary["missing_optional_columns"] == ["description"]
    assert stored_record(key="S1").data["description"] is None


def test_a_repeated_key_loads_the_first_and_rejects_the_later_ones(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    rows = [sales_row(1, quantity=1), sales_row(2), f" {sales_row(1, quantity=2)}", sales_row(1, quantity=3)]
    run = ingest(sales, csv_file(sales_file(rows)), chunk_size=2)

    assert rejected(run) == {
        4: {"__row__": ["duplicate key, first seen on line 2"]},
        5: {"__row__": ["duplicate key, first seen on line 2"]},
    }
    assert stored_record(key="S1").data["quantity"] == 1
    assert RejectedRow.objects.get(run=run, line_number=4).raw["id"] == " S1"


def test_unique_fields_are_unique_within_a_file(db: None, csv_file: Callable[..., Path]) -> None:
    schema = json.loads(json.dumps(SALES_SCHEMA))
    schema["fields"][5]["unique"] = True
    dataset = dataset_apply(spec=schema_parse(schema)).dataset
    rows = [sales_row(1), sales_row(2).replace("u2@", "u1@"), sales_row(3)]
    run = ingest(dataset, csv_file(sales_file(rows)), chunk_size=1)

    assert rejected(run) == {3: {"email": ["duplicate value 'u1@example.com', first seen on line 2"]}}


def test_the_same_file_twice_is_a_no_op_pointing_at_the_first_run(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    path = csv_file(sales_file([sales_row(i) for i in range(1, 4)]))
    first = ingest(sales, path)
    second = ingest(sales, path)

    assert second.status == RunStatus.SUCCEEDED
    assert second.noop_of_id == first.pk
    assert (second.rows_read, second.rows_inserted) == (0, 0)
    assert records(first.dataset).filter(last_run_id=first.pk).count() == 3
    assert second.raw_file.state == RawFile.State.ARCHIVED


def test_force_reprocesses_the_same_file_as_all_unchanged(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    path = csv_file(sales_file([sales_row(i) for i in range(1, 4)]))
    ingest(sales, path)
    again = ingest(sales, path, force=True)

    assert again.noop_of_id is None
    assert (again.rows_inserted, again.rows_updated, again.rows_unchanged) == (0, 0, 3)


def test_changed_rows_update_only_those_records(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    first = ingest(sales, csv_file(sales_file([sales_row(i) for i in range(1, 6)])))
    rows = [sales_row(i, quantity=9 if i in (2, 4) else 1) for i in range(1, 7)]
    second = ingest(sales, csv_file(sales_file(rows)))

    assert (second.rows_inserted, second.rows_updated, second.rows_unchanged) == (1, 2, 3)
    updated = stored_record(key="S2")
    assert updated.data["quantity"] == 9
    assert (updated.first_run_id, updated.last_run_id) == (first.pk, second.pk)
    untouched = stored_record(key="S1")
    assert untouched.last_run_id == first.pk
    assert untouched.updated_at == untouched.created_at


def test_rows_equal_after_cleaning_count_as_unchanged(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    ingest(sales, csv_file(sales_file([sales_row(1)])))
    messy = "  S1 ,2024-01-02 03:04:05+00:00, BOOKS ,1.50,1.0,u1@example.com, us ,,YES"
    run = ingest(sales, csv_file(sales_file([messy])))

    assert (run.rows_unchanged, run.rows_updated) == (1, 0)


def test_a_run_that_crashes_after_the_first_chunk_can_be_run_again_without_duplicates(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    path = csv_file(sales_file([sales_row(i) for i in range(1, 11)]))

    def crash(run: Run) -> None:
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError):
        ingest(sales, path, chunk_size=4, on_chunk=crash)
    crashed = Run.objects.get()
    assert crashed.status == RunStatus.FAILED
    assert "disk on fire" in crashed.error
    assert (crashed.rows_read, crashed.rows_inserted) == (4, 4)

    again = ingest(sales, path, chunk_size=4)
    assert again.status == RunStatus.SUCCEEDED
    assert (again.rows_inserted, again.rows_unchanged) == (6, 4)
    assert records(sales).count() == 10


class WorkerKilled(BaseException):
    """Stands in for SIGKILL: not an Exception, so nothing cleans up after it."""


def test_a_killed_run_resumes_from_its_checkpoint_with_exact_counts(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    rows = [sales_row(i) for i in range(1, 11)]
    rows[1] = "S2,bad,books,1,1,a@example.com,US,,yes"
    rows[6] = sales_row(1)  # duplicate of line 2, in a later chunk
    path = csv_file(sales_file(rows))
    calls = 0

    def kill_after_two_chunks(run: Run) -> None:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise WorkerKilled

    with pytest.raises(WorkerKilled):
        ingest(sales, path, chunk_size=3, on_chunk=kill_after_two_chunks)
    run = Run.objects.get()
    assert run.status == RunStatus.RUNNING
    assert run.checkpoint["rows"] == 6

    resumed = run_execute(run_id=run.pk, resume=True)

    assert resumed is not None and resumed.status == RunStatus.PARTIALLY_SUCCEEDED
    assert (resumed.rows_read, resumed.rows_valid, resumed.rows_rejected) == (10, 8, 2)
    assert resumed.rows_inserted == 8
    assert sorted(rejected(resumed)) == [3, 8]
    assert rejected(resumed)[8] == {"__row__": ["duplicate key, first seen on line 2"]}
    assert records(sales).count() == 8
    processed = data_storage().open(resumed.summary["processed_file"]).read().decode()
    assert processed.count("\n") == 9  # header + 8 rows, none written twice


def test_a_second_delivery_of_a_run_does_nothing(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    run = ingest(sales, csv_file(sales_file([sales_row(1)])))

    assert run_execute(run_id=run.pk) is None
    assert run_execute(run_id=run.pk, resume=True) is None


def test_the_reject_rate_breaker_fails_the_run_and_reports_committed_rows(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    sales.reject_threshold = 0.2
    sales.save()
    good = [sales_row(i) for i in range(1, 101)]
    bad = [f"B{i},bad,books,1,1,a@example.com,US,,yes" for i in range(1, 101)]
    run = ingest(sales, csv_file(sales_file(good + bad)), chunk_size=100)

    run.refresh_from_db()  # what is stored, not what the caller holds
    assert run.status == RunStatus.FAILED
    assert run.error == "rejected 50.0% of rows (100 of 200), over the dataset's threshold of 20.0%"
    assert (run.rows_read, run.rows_inserted, run.rows_rejected) == (200, 100, 100)
    assert RejectedRow.objects.filter(run=run).count() == 100
    assert records(sales).count() == 100


def test_a_small_file_over_the_threshold_keeps_its_rejected_rows(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    sales.reject_threshold = 0.1
    sales.save()
    rows = [sales_row(i) for i in range(1, 6)] + [sales_row(i, quantity=-5) for i in range(6, 11)]
    run = ingest(sales, csv_file(sales_file(rows)))

    run.refresh_from_db()
    assert (run.status, run.rows_read, run.rows_valid, run.rows_rejected, run.rows_inserted) == (
        RunStatus.FAILED,
        10,
        5,
        5,
        0,
    )
    assert run.summary["not_loaded"] == 5
    assert sorted(rejected(run)) == [7, 8, 9, 10, 11]
    assert not (records_total() > 0)


def test_files_move_from_raw_to_archive_and_the_processed_file_is_written(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    run = ingest(sales, csv_file(sales_file([sales_row(1), "S2,bad,books,1,1,a@example.com,US,,yes"])))

    assert run.raw_file.storage_name.startswith("archive/sales/")
    assert (data_dir / run.raw_file.storage_name).is_file()
    assert not list((data_dir / "raw").rglob("*.csv"))
    processed = (data_dir / f"processed/sales/{run.pk}.csv").read_text()
    assert processed.splitlines() == [
        "_line,id,timestamp,category,value,quantity,email,country,description,is_active",
        "2,S1,2024-01-02T03:04:05.000000Z,books,1.50,1,u1@example.com,US,,true",
    ]


def test_raw_files_are_stored_under_server_names_with_their_checksum(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    content = sales_file([sales_row(1)])
    with csv_file(content).open("rb") as fh:
        run = file_ingest(dataset=sales, source=fh, original_name="../../etc/passwd .csv")

    raw = run.raw_file
    assert raw.original_name == "passwd .csv"
    assert "passwd" not in raw.storage_name
    assert raw.sha256 == hashlib.sha256(content.encode()).hexdigest()
    assert raw.size == len(content.encode())


def test_a_dry_run_reports_counts_and_writes_nothing(
    sales: Dataset, csv_file: Callable[..., Path], data_dir: Path
) -> None:
    ingest(sales, csv_file(sales_file([sales_row(1), sales_row(2)])))
    runs_before, files_before = Run.objects.count(), sorted(p.name for p in data_dir.rglob("*") if p.is_file())
    rows = [sales_row(1), sales_row(2, quantity=5), sales_row(3), "S4,bad,books,1,1,a@example.com,US,,yes"]
    path = csv_file(sales_file(rows))
    with path.open("rb") as fh:
        preview = file_preview(dataset=sales, source=fh)

    assert (preview.inserted, preview.updated, preview.unchanged, preview.rejected) == (1, 1, 1, 1)
    assert preview.rejected_rows[0]["line"] == 5
    assert Run.objects.count() == runs_before
    assert stored_record(key="S2").data["quantity"] == 1
    assert sorted(p.name for p in data_dir.rglob("*") if p.is_file()) == files_before


def test_records_remember_the_schema_version_they_were_validated_with(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    ingest(sales, csv_file(sales_file([sales_row(1)])))
    v1 = sales.current_schema_id
    schema = json.loads(json.dumps(SALES_SCHEMA))
    schema["fields"][7]["max_length"] = 10
    v2 = dataset_apply(spec=schema_parse(schema)).schema
    run = ingest(sales, csv_file(sales_file([sales_row(2), sales_row(3, description="much too long text")])))

    assert stored_record(key="S1").schema_number == Dataset.objects.get(pk=sales.pk).schema_versions.get(pk=v1).number
    assert stored_record(key="S2").schema_number == v2.number == 2
    assert RejectedRow.objects.get(run=run).schema_id == v2.pk


def test_it_reads_utf16_spreadsheet_exports_with_a_byte_order_mark(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    sales.delimiter = ""
    sales.save()
    text = sales_file([sales_row(1, description="Zoë"), sales_row(2)]).replace(",", "\t")
    run = ingest(sales, csv_file(text.encode("utf-16")))

    assert (run.raw_file.encoding, run.raw_file.delimiter) == ("utf-16", "\t")
    assert run.status == RunStatus.SUCCEEDED, run.error
    assert stored_record(key="S1").data["description"] == "Zoë"


def test_a_file_the_given_codec_cannot_read_fails_the_run_with_the_reason(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    run = ingest(sales, csv_file(sales_file([sales_row(1)])), encoding="utf-16")

    assert run.status == RunStatus.FAILED
    assert run.error.startswith("the file cannot be read as utf-16:")


def test_a_quote_left_open_rejects_the_rows_it_swallowed_instead_of_loading_them(
    sales: Dataset, csv_file: Callable[..., Path]
) -> None:
    rows = [sales_row(1), sales_row(2, description='"she said hi'), sales_row(3), sales_row(4)]
    run = ingest(sales, csv_file(sales_file(rows)))

    assert run.status == RunStatus.PARTIALLY_SUCCEEDED
    assert (run.rows_read, run.rows_valid, run.rows_rejected) == (2, 1, 1)
    assert rejected(run) == {
        3: {"__row__": ["unreadable CSV: a quote opened on line 3 is never closed; lines 3-5 were read as one value"]}
    }
    assert stored_record_keys() == ["S1"]


def test_malformed_quoting_rejects_the_row(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    rows = [sales_row(1), sales_row(2, description='"quoted" then more'), sales_row(3)]
    run = ingest(sales, csv_file(sales_file(rows)))

    assert sorted(rejected(run)) == [3]
    assert rejected(run)[3]["__row__"][0].startswith("unreadable CSV:")
    assert records(sales).count() == 2


def test_undecodable_bytes_in_the_header_do_not_break_the_run(db: None, csv_file: Callable[..., Path]) -> None:
    schema = {"slug": "notes", "name": "Notes", "key": ["id"], "fields": [{"name": "id", "required": True}]}
    dataset = dataset_apply(spec=schema_parse(schema)).dataset
    run = ingest(dataset, csv_file(b"id,comment,caf\xe9\n1,gr\xc3\xbcn,x\n2,ok,y,extra\n"))

    run.refresh_from_db()
    assert run.status == RunStatus.PARTIALLY_SUCCEEDED, run.error
    assert run.summary["unknown_columns"] == ["comment", "caf\\xe9"]
    assert RejectedRow.objects.get(run=run).raw == {"id": "2", "comment": "ok", "caf\\xe9": "y", "__extra__": ["extra"]}


def test_decimal_keys_are_compared_as_numbers(db: None, csv_file: Callable[..., Path]) -> None:
    schema = {
        "slug": "codes",
        "name": "Codes",
        "key": ["code"],
        "fields": [{"name": "code", "type": "decimal", "required": True}, {"name": "v"}],
    }
    dataset = dataset_apply(spec=schema_parse(schema)).dataset
    run = ingest(dataset, csv_file("code,v\n1.5,a\n1.50,b\n01.5,c\n100,d\n"))

    assert rejected(run) == {
        3: {"__row__": ["duplicate key, first seen on line 2"]},
        4: {"__row__": ["duplicate key, first seen on line 2"]},
    }
    assert sorted(stored_record_keys()) == ["1.5", "100"]


def test_the_key_of_a_dataset_with_data_cannot_change(sales: Dataset, csv_file: Callable[..., Path]) -> None:
    from django.core.exceptions import ValidationError

    ingest(sales, csv_file(sales_file([sales_row(1)])))
    schema = json.loads(json.dumps(SALES_SCHEMA))
    schema["key"] = ["id", "country"]

    with pytest.raises(ValidationError, match="its key cannot change to id, country"):
        dataset_apply(spec=schema_parse(schema))
    sales.refresh_from_db()
    assert sales.key_fields == ["id"]
