"""Memoized field converters (processing/pipeline/fields.py: memoized)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from ingestion.fieldtypes.email import DOMAIN_MEMO_SIZE, MemoEmailValidator
from ingestion.schema import FieldSpec
from processing.pipeline.fields import FieldError, compile_field, memoized, needs_work


def counting(convert: Callable[[str], Any]) -> tuple[Callable[[str], Any], list[str]]:
    """The converter, and the list of values it was really called with."""
    calls: list[str] = []

    def run(value: str) -> Any:
        calls.append(value)
        return convert(value)

    return run, calls


def test_a_repeated_value_is_converted_once() -> None:
    convert, calls = counting(compile_field(FieldSpec(name="n", type="integer")))
    memo = memoized(convert)

    assert [memo("7"), memo("7"), memo(" 8"), memo("7")] == [7, 7, 8, 7]
    assert calls == ["7", " 8"]


def test_a_failing_value_fails_every_time_with_the_same_message() -> None:
    memo = memoized(compile_field(FieldSpec(name="n", type="integer", required=True)))
    messages = []
    for _ in range(3):
        with pytest.raises(FieldError) as exc:
            memo("x")
        messages.append(str(exc.value))
    with pytest.raises(FieldError, match="required"):
        memo("")
    assert messages == ["'x' is not a whole number"] * 3


def test_null_results_are_remembered_as_null() -> None:
    convert, calls = counting(compile_field(FieldSpec(name="n", type="integer", null_values=("NA",))))
    memo = memoized(convert)

    assert [memo("NA"), memo("NA"), memo("")] == [None, None, None]
    assert calls == ["NA", ""]


def test_the_memo_starts_over_when_full() -> None:
    convert, calls = counting(str.upper)
    memo = memoized(convert, size=2, trial=1000)

    for value in ["a", "b", "c", "a"]:  # "c" fills it past 2: "a" is forgotten
        memo(value)
    assert calls == ["a", "b", "c", "a"]


def test_a_field_whose_values_do_not_repeat_stops_remembering() -> None:
    convert, calls = counting(str.upper)
    memo = memoized(convert, size=100, trial=10)

    values = [str(i) for i in range(10)]
    for value in values:  # ten misses, no hit: switched off
        memo(value)
    assert [memo(v) for v in values] == values  # converted again, same results
    assert calls == values + values


def test_only_fields_with_work_to_do_are_memoized() -> None:
    assert not needs_work(FieldSpec(name="s", type="string", required=True))
    assert needs_work(FieldSpec(name="s", type="string", transforms=("strip",)))
    assert needs_work(FieldSpec(name="s", type="string", constraints={"max_length": 3}))
    assert needs_work(FieldSpec(name="n", type="integer"))


EMAILS = [
    "ben.mueller@bücher.example",
    "Paula.Dubois@Bücher.Example",
    "rosa+shop@bücher.example",
    "a@localhost",
    "x@[1.2.3.4]",
    "x@[::1]",
    "x@[1.2.3]",
    '"quoted"@example.com',
    '"q u"@example.com',
    "a..b@example.com",
    "a@-x.example",
    "a@ex_ample.com",
    "ü@example.com",
    "a@b",
    "a@" + "x" * 64 + ".com",
    "a" * 65 + "@example.com",
    "a@example.com@example.com",
    "no-at-sign",
    "a@" + "b" * 320,
]


@pytest.mark.parametrize("value", EMAILS)
def test_email_fields_agree_with_djangos_validator(value: str) -> None:
    convert = compile_field(FieldSpec(name="e", type="email"))
    try:
        EmailValidator()(value)
        expected = True
    except ValidationError:
        expected = False
    for _ in range(2):  # the second time from the remembered domain
        try:
            assert convert(value) == value
            accepted = True
        except FieldError:
            accepted = False
        assert accepted is expected


def test_remembered_email_domains_are_bounded() -> None:
    validator = MemoEmailValidator()
    for i in range(DOMAIN_MEMO_SIZE + 100):
        validator(f"u@d{i}.bücher.example")
    assert validator.validate_domain_part.cache_info().currsize == DOMAIN_MEMO_SIZE
