"""Values seen earlier in a run (load.SeenValues) and the Bloom filter in front of their table."""

from __future__ import annotations

import random
import string
from collections.abc import Callable, Iterator

import pytest
from django.db import connection

from processing.pipeline.bloom import BloomFilter
from processing.pipeline.load import KEY_FIELD, SeenValues


def words(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choices(string.ascii_letters + "é€", k=rng.randint(1, 12))) for _ in range(n)]


def test_every_added_value_may_be_there() -> None:
    bloom = BloomFilter(bits=1 << 16)
    added = words(5000, seed=1)
    bloom.add(added)

    assert bloom.maybe(added) == added


def test_values_never_added_are_mostly_ruled_out() -> None:
    bloom = BloomFilter(bits=1 << 20)  # ~21 bits a value below
    bloom.add(words(50_000, seed=2))
    others = [f"not-added-{i}" for i in range(50_000)]

    false_maybes = len(bloom.maybe(others))
    assert false_maybes < 50_000 * 0.002, false_maybes


def test_an_empty_filter_rules_everything_out() -> None:
    assert BloomFilter(bits=1 << 10).maybe(words(100, seed=3)) == []
    assert BloomFilter(bits=1 << 10).maybe([]) == []


@pytest.mark.parametrize("bits", [0, 32, 1000, (1 << 20) + 1])
def test_the_size_must_be_a_power_of_two(bits: int) -> None:
    with pytest.raises(ValueError, match="power of two"):
        BloomFilter(bits=bits)


@pytest.fixture
def seen_table(db: None) -> Iterator[Callable[..., SeenValues]]:
    """Create a run's seen-values table (``create`` as the pipeline calls it); dropped after the test."""
    made: list[SeenValues] = []

    def create(run_id: int, fields: int = 1) -> SeenValues:
        seen = SeenValues(run_id=run_id)
        seen.create(fields=fields)
        made.append(seen)
        return seen

    yield create
    for seen in made:
        seen.drop()


def test_the_table_stays_the_authority_when_the_filter_lets_a_value_through(
    seen_table: Callable[..., SeenValues],
) -> None:
    seen = seen_table(424242)
    seen.add([(KEY_FIELD, f"K{i}", i + 2) for i in range(200)])
    # A filter this small says "maybe" to nearly everything: the table answers.
    tiny = BloomFilter(bits=64)
    tiny.add([f"K{i}" for i in range(200)])
    seen._filters = {KEY_FIELD: tiny}
    assert len(tiny.maybe(["new-1", "new-2", "new-3"])) == 3

    assert seen.lookup(KEY_FIELD, ["K0", "K199", "new-1", "new-2", "new-3"]) == {"K0": 2, "K199": 201}
    assert seen.lookup("other", ["K0"]) == {}


def test_a_resumed_table_is_looked_up_for_every_value(seen_table: Callable[..., SeenValues]) -> None:
    first = seen_table(434343)
    first.add([(KEY_FIELD, "K1", 2), ("email", "a@example.com", 2)])
    # Another process resuming the run: its filter would know nothing of K1.
    resumed = seen_table(434343)

    assert resumed.lookup(KEY_FIELD, ["K1", "K2"]) == {"K1": 2}
    assert resumed.lookup("email", ["a@example.com"]) == {"a@example.com": 2}


def test_a_new_run_finds_its_own_values_through_the_filter(seen_table: Callable[..., SeenValues]) -> None:
    seen = seen_table(454545)
    assert seen.lookup(KEY_FIELD, ["K1"]) == {}
    seen.add([(KEY_FIELD, f"K{i}", i) for i in range(1, 1001)])
    seen.add([("email", "a@example.com", 7)])

    assert seen.lookup(KEY_FIELD, ["K1", "K500", "K1000", "K1001"]) == {"K1": 1, "K500": 500, "K1000": 1000}
    assert seen.lookup("email", ["a@example.com", "b@example.com"]) == {"a@example.com": 7}
    with connection.cursor() as cur:
        cur.execute(f"SELECT count(*) FROM {seen.table}")
        assert cur.fetchone()[0] == 1001


@pytest.mark.parametrize(("fields", "bits"), [(1, 1 << 27), (2, 1 << 26), (3, 1 << 25), (4, 1 << 25), (5, 1 << 24)])
def test_the_fields_share_one_memory_budget(seen_table: Callable[..., SeenValues], fields: int, bits: int) -> None:
    seen = seen_table(464646, fields=fields)
    seen.add([(f"f{i}", "v", 2) for i in range(fields)])
    assert seen._filters is not None
    assert {f._bytes.size * 8 for f in seen._filters.values()} == {bits}
    assert sum(f._bytes.size for f in seen._filters.values()) <= 16 * 1024 * 1024
