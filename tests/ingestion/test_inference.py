"""Schema inference: types judged by the pipeline's converters, outliers by line, nulls, keys, headers, choices.

Every case is a real CSV file written by the test; the end-to-end tests load
the file with the proposed schema through the real pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.core.exceptions import ValidationError

from ingestion.inference import ColumnReport, SchemaInference, schema_infer
from ingestion.schema import DATASET_KEYS, schema_parse
from ingestion.services.datasets import dataset_apply
from processing.models import RejectedRow
from processing.pipeline.fields import compile_field
from processing.services.runs import file_ingest
from tests.records import records

Writer = Callable[..., Path]


def infer(path: Path, **kwargs: Any) -> SchemaInference:
    with path.open("rb") as fh:
        return schema_infer(source=fh, slug="things", converter_for=compile_field, **kwargs)


def write(csv_file: Writer, header: str, rows: list[str], **kwargs: Any) -> Path:
    return csv_file("\n".join([header, *rows]) + "\n", **kwargs)


def column(inference: SchemaInference, name: str) -> ColumnReport:
    return next(c for c in inference.columns if c.name == name)


def field(inference: SchemaInference, name: str) -> dict[str, Any]:
    return next(f for f in inference.schema["fields"] if f["name"] == name)


def dates_with_three_bad_ones(csv_file: Writer) -> tuple[Path, list[int]]:
    """400 rows; rows 50, 200 and 333 have impossible dates (lines 51, 201, 334); every 40th amount is N/A."""
    bad = {50: "13/45/2023", 200: "2023-02-30", 333: "yesterday"}
    rows = []
    for n in range(1, 401):
        shipped = bad.get(n, f"2023-{n % 12 + 1:02d}-{n % 28 + 1:02d}")
        amount = "N/A" if n % 40 == 0 else f"{n}.25"
        rows.append(f"{n},{shipped},{amount}")
    return write(csv_file, "id,shipped_on,amount", rows), [51, 201, 334]


# --- types --------------------------------------------------------------------


def test_values_with_leading_zeros_stay_text(csv_file: Writer) -> None:
    rows = [f"{n},{n * 7919 % 100000:05d},{n:03d},{n % 2},{n % 10}.5,{'0' if n % 3 else n}" for n in range(1, 60)]
    path = write(csv_file, "id,zip,product,flag,ratio,count", rows)

    inference = infer(path)

    types = {f["name"]: f["type"] for f in inference.schema["fields"]}
    assert types == {
        "id": "integer",
        "zip": "string",
        "product": "string",
        "flag": "integer",  # "0" itself is a number
        "ratio": "decimal",  # so is "0.5"
        "count": "integer",
    }
    assert column(inference, "zip").why == "leading zeros ('07919', line 2): codes, kept as text"


def test_three_bad_dates_among_400_make_a_date_column_with_three_outliers(csv_file: Writer) -> None:
    path, bad_lines = dates_with_three_bad_ones(csv_file)

    inference = infer(path)

    shipped = column(inference, "shipped_on")
    assert field(inference, "shipped_on") == {"name": "shipped_on", "type": "date", "required": True}
    assert [(o.line, o.value) for o in shipped.outliers] == list(
        zip(bad_lines, ["13/45/2023", "2023-02-30", "yesterday"], strict=True)
    )
    assert shipped.outlier_count == 3
    assert shipped.why == "397 of 400 values (99.2%) are dates (YYYY-MM-DD); 3 are not"
    assert "is not a date" in shipped.outliers[0].reason


def test_a_type_needs_98_percent_of_the_values(csv_file: Writer) -> None:
    def ints(bad: int) -> list[str]:
        return [f"{n},{'x' if n <= bad else n}" for n in range(1, 101)]

    two_bad = infer(write(csv_file, "id,n", ints(2)))
    three_bad = infer(write(csv_file, "id,n", ints(3)))

    assert (field(two_bad, "n")["type"], column(two_bad, "n").outlier_count) == ("integer", 2)
    assert (field(three_bad, "n")["type"], column(three_bad, "n").outlier_count) == ("string", 0)
    assert column(three_bad, "n").why == "text: no type fits 98% of the 100 values"


def test_the_type_with_fewest_outliers_wins(csv_file: Writer) -> None:
    rows = [f"{n},{n},{n}.5,2024-01-{n % 28 + 1:02d}" for n in range(1, 300)]
    rows += ["300,3.5,1e3,2024-01-01T10:00:00Z"]
    inference = infer(write(csv_file, "id,amount,value,at", rows))

    types = {f["name"]: f["type"] for f in inference.schema["fields"]}
    assert types == {"id": "integer", "amount": "decimal", "value": "float", "at": "datetime"}
    assert all(c.outlier_count == 0 for c in inference.columns)


def test_booleans_need_words_and_numbers_may_be_grouped(csv_file: Writer) -> None:
    rows = [f'{n},{"yes" if n % 2 else "no"},{n % 2},"{n * 1000:,}"' for n in range(1, 40)]
    inference = infer(write(csv_file, "id,active,bit,total", rows))

    assert field(inference, "active")["type"] == "boolean"
    assert field(inference, "bit")["type"] == "integer"
    assert field(inference, "total") == {
        "name": "total",
        "type": "integer",
        "required": True,
        "thousands_separator": ",",
    }


def test_values_the_converter_accepts_are_never_outliers(csv_file: Writer) -> None:
    rows = [
        f"{n},{'20240107' if n == 7 else f'2024-01-{n % 28 + 1:02d}'},{'12.0' if n == 7 else n}" for n in range(1, 101)
    ]
    inference = infer(write(csv_file, "id,day,count", rows))

    # The pipeline reads "20240107" as a date: it is unusual, not an outlier (it would not be rejected).
    assert (field(inference, "day")["type"], column(inference, "day").outlier_count) == ("date", 0)
    # "12.0" is a whole number to the pipeline, but decimal holds every value as written.
    assert (field(inference, "count")["type"], column(inference, "count").outlier_count) == ("decimal", 0)


# --- nulls --------------------------------------------------------------------


def test_common_null_tokens_are_proposed_as_null_values(csv_file: Writer) -> None:
    tokens = ["N/A", "NA", "-", "null", "NULL", "none", ""]
    rows = [f"{n},{tokens[n % 7] if n % 5 == 0 else n},{'US' if n % 2 else 'NA'}" for n in range(1, 200)]
    inference = infer(write(csv_file, "id,quantity,country", rows))

    quantity = column(inference, "quantity")
    assert field(inference, "quantity")["type"] == "integer"
    assert field(inference, "quantity")["null_values"] == ["-", "N/A", "NA", "NULL", "none", "null"]
    assert quantity.required is False and quantity.outlier_count == 0
    assert set(quantity.null_tokens_seen) == {"-", "N/A", "NA", "NULL", "none", "null"}
    # In a column of two-letter codes, NA is Namibia.
    assert "null_values" not in field(inference, "country")
    assert column(inference, "country").null_tokens_seen == {"NA": 99}
    assert field(inference, "country")["required"] is True


# --- keys ---------------------------------------------------------------------


def test_a_key_must_stay_unique_once_converted(csv_file: Writer) -> None:
    rows = [
        "A1,2024-01-01T00:00:00Z,1,1.5",
        "A2,2024-01-01T01:00:00+01:00,+1,1.50",
        "A3,2024-01-02T00:00:00Z,3,2",
    ]
    inference = infer(write(csv_file, "ref,at,n,amount", rows))

    assert inference.schema["key"] == ["ref"]
    assert [c.name for c in inference.columns if c.key_candidate] == ["ref"]
    assert column(inference, "at").key_note == (
        "not unique once converted: '2024-01-01T01:00:00+01:00' (line 3) and '2024-01-01T00:00:00Z' (line 2) "
        "are both '2024-01-01T00:00:00.000000Z'"
    )
    assert column(inference, "n").key_note.startswith("not unique once converted: '+1' (line 3) and '1' (line 2)")
    assert column(inference, "amount").key_note.startswith("not unique once converted: '1.50' (line 3)")


def test_without_a_column_unique_once_converted_there_is_no_key(csv_file: Writer) -> None:
    path = write(csv_file, "at,city", ["2024-01-01T00:00:00Z,Paris", "2024-01-01T01:00:00+01:00,Paris"])

    with pytest.raises(ValidationError) as exc:
        infer(path)

    assert "No column can be the key" in exc.value.messages[0]
    assert "at: not unique once converted" in exc.value.messages[0]


def test_codes_with_leading_zeros_are_distinct_keys(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "code,label", ["1,one", "01,one again", "001,and again"]))

    assert inference.schema["key"] == ["code"]
    assert field(inference, "code")["type"] == "string"


def test_an_id_column_is_preferred_as_the_key(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "ref,order_id,x", ["a,1,1", "b,2,2"]))

    assert inference.schema["key"] == ["order_id"]
    assert [c.name for c in inference.columns if c.key_candidate] == ["ref", "order_id", "x"]


# --- headers and rows ---------------------------------------------------------


def test_duplicate_headers_are_reported_as_such(csv_file: Writer) -> None:
    path = write(csv_file, "id,city,name,zip,Name ,x,name", ["1,a,b,c,d,e,f"])

    with pytest.raises(ValidationError) as exc:
        infer(path)

    assert exc.value.messages == [
        "columns 3, 5 and 7 are all named 'name'; a file with two columns of one name cannot be loaded, rename one"
    ]
    assert "name_2" not in str(exc.value)


def test_two_duplicates_are_both_reported(csv_file: Writer) -> None:
    with pytest.raises(ValidationError) as exc:
        infer(write(csv_file, "id,a,b,a,b", ["1,2,3,4,5"]))

    assert [m.split(";")[0] for m in exc.value.messages] == [
        "columns 2 and 4 are both named 'a'",
        "columns 3 and 5 are both named 'b'",
    ]


def test_a_column_without_a_header_is_left_out(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "id,,x", ["1,a,2", "2,b,3"]))

    assert [f["name"] for f in inference.schema["fields"]] == ["id", "x"]
    assert inference.columns[1].why.startswith("no header: left out")


def test_rows_of_the_wrong_width_are_reported_not_sampled(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "id,x", ["1,a", "2,b,extra", "3,c"]))

    assert inference.rows_sampled == 2
    assert inference.skipped_lines == (3,)
    assert "lines 3" in inference.notes[0]


def test_headers_that_are_not_field_names_become_sources(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "Order ID,Unit Price", ["1,2.5"]))

    assert inference.schema["fields"][0] == {
        "name": "order_id",
        "type": "integer",
        "required": True,
        "source": "Order ID",
    }
    assert inference.schema["fields"][1]["source"] == "Unit Price"


# --- what is not pinned -------------------------------------------------------


def test_choices_are_suggested_only_for_clearly_categorical_columns(csv_file: Writer) -> None:
    statuses = ["open", "closed", "pending", "on hold"]
    rows = [f"{n},{statuses[n % 4]},comment number {n},{statuses[n % 4] if n < 150 else 'other'}" for n in range(250)]
    inference = infer(write(csv_file, "id,status,comment,rare", rows))

    assert column(inference, "status").suggested_choices == ("closed", "on hold", "open", "pending")
    assert column(inference, "comment").suggested_choices == ()
    assert column(inference, "rare").suggested_choices == ("closed", "on hold", "open", "other", "pending")
    # Nothing is enforced from a sample: no choices, no lengths.
    assert all("choices" not in f and "max_length" not in f for f in inference.schema["fields"])
    few = infer(write(csv_file, "id,status", [f"{n},{statuses[n % 4]}" for n in range(199)]))
    assert column(few, "status").suggested_choices == ()


def test_a_value_seen_once_or_twice_means_no_choices(csv_file: Writer) -> None:
    rows = [f"{n},{'typo' if n == 7 else ['a', 'b'][n % 2]}" for n in range(300)]

    assert column(infer(write(csv_file, "id,kind", rows)), "kind").suggested_choices == ()


def test_the_delimiter_is_detected_but_not_pinned(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "id;name", ["1;a", "2;b"]))

    assert inference.delimiter == ";"
    assert "delimiter" not in inference.schema
    assert [f["name"] for f in inference.schema["fields"]] == ["id", "name"]


@pytest.mark.skipif("detect_delimiter" not in DATASET_KEYS, reason="schema files without detect_delimiter")
def test_files_written_with_another_delimiter_are_still_read(csv_file: Writer) -> None:
    inference = infer(write(csv_file, "id,name", ["1,a", "2,b"]))

    assert inference.schema["detect_delimiter"] is True
    assert schema_parse(inference.schema).to_dict()["detect_delimiter"] is True


def test_the_proposed_schema_is_a_valid_schema_file(csv_file: Writer) -> None:
    path, _ = dates_with_three_bad_ones(csv_file)

    spec = schema_parse(infer(path).schema)

    assert [f.name for f in spec.fields] == ["id", "shipped_on", "amount"]


def test_an_empty_file_has_nothing_to_infer(csv_file: Writer) -> None:
    with pytest.raises(ValidationError, match="empty"):
        infer(csv_file(""))


# --- infer, then load ---------------------------------------------------------


@pytest.mark.django_db
def test_loading_the_file_with_the_proposed_schema_rejects_exactly_the_outliers(csv_file: Writer) -> None:
    path, bad_lines = dates_with_three_bad_ones(csv_file)
    inference = infer(path)
    dataset = dataset_apply(spec=schema_parse(inference.schema)).dataset

    with path.open("rb") as fh:
        run = file_ingest(dataset=dataset, source=fh, original_name=path.name)

    outlier_lines = [o.line for c in inference.columns for o in c.outliers]
    assert outlier_lines == bad_lines
    assert list(RejectedRow.objects.filter(run=run).values_list("line_number", flat=True)) == bad_lines
    assert (run.rows_rejected, run.rows_inserted) == (3, 397)
    # The N/A amounts are nulls, not rejects.
    assert records(dataset).get(key="40").data["amount"] is None
    assert records(dataset).get(key="41").data == {
        "id": 41,
        "shipped_on": "2023-06-14",
        "amount": "41.25",
    }


def test_null_tokens_kept_as_values_are_counted_as_values(csv_file: Writer) -> None:
    codes = ["US", "FR", "DE", "IT"]
    rows = [f"{n},{'NA' if n % 5 == 0 else codes[n % 4]}" for n in range(1, 401)]

    country = column(infer(write(csv_file, "id,country", rows)), "country")

    assert country.null_tokens_seen == {"NA": 80}
    assert country.why.endswith("of the 400 values")  # 320 codes and 80 NA (Namibia), all values


def test_a_header_over_the_column_cap_is_refused_with_a_clear_error(csv_file: Writer, settings: Any) -> None:
    settings.DATAFLOW = {**settings.DATAFLOW, "MAX_COLUMNS": 3}

    with pytest.raises(ValidationError, match=r"the header has 4 columns; at most 3 are allowed"):
        infer(write(csv_file, "id,a,b,c", ["1,2,3,4"]))
