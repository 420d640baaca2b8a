"""A chunk's valid rows held as columns (processing/pipeline/validrows.py) read back as the rows they hold."""

from __future__ import annotations

import pickle

from hypothesis import given, settings
from hypothesis import strategies as st

from processing.pipeline.validate import ValidRow
from processing.pipeline.validrows import JoinedRows, TextColumn, ValidRows

# Texts as the pipeline makes them: empty ones, non-ASCII, lone surrogates (undecodable bytes), NULs, newlines.
TEXT = st.text(alphabet=st.sampled_from(["a", "é", "\u2014", "\udcff", "\x00", "\n", "\t", ",", '"']), max_size=6)


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def row(i: int, text: str, unique: bool) -> ValidRow:
    return ValidRow(i + 2, f"K{i}{text}", f'{{"t": {text!r}}}', {"u": text} if unique else {}, text, text + "\r\n", "c")


@settings(max_examples=200, deadline=None)
@given(texts=st.lists(TEXT, max_size=12), data=st.data())
def test_columns_give_back_their_rows_and_drop_any_of_them(texts: list[str], data: st.DataObject) -> None:
    unique = data.draw(st.booleans())
    rows = [row(i, t, unique and i % 2 == 0) for i, t in enumerate(texts)]
    columns = ValidRows.of(rows)
    dropped = sorted(data.draw(st.sets(st.integers(0, max(len(rows) - 1, 0)), max_size=len(rows))) if rows else [])
    kept = [r for i, r in enumerate(rows) if i not in set(dropped)]

    again = pickle.loads(pickle.dumps(columns))  # noqa: S301 - our own bytes

    for rebuilt in (columns, again):
        assert list(rebuilt) == rows and rebuilt == rows and len(rebuilt) == len(rows)
        assert [rebuilt[i] for i in range(len(rows))] == rows and rebuilt[1:3] == rows[1:3]
        assert rebuilt.copy_text() == utf8("".join(r.copy for r in rows))
        assert rebuilt.processed_text() == utf8("".join(r.processed for r in rows))
        assert rebuilt.keys == [r.key for r in rows] and rebuilt.lines == [r.line for r in rows]
        assert rebuilt.drop(dropped) == kept
        assert rebuilt.drop(dropped).processed_text() == utf8("".join(r.processed for r in kept))


@given(texts=st.lists(TEXT, max_size=12), data=st.data())
def test_a_text_column_drops_exactly_the_texts_asked_for(texts: list[str], data: st.DataObject) -> None:
    column = TextColumn.of(texts)
    dropped = sorted(data.draw(st.sets(st.integers(0, max(len(texts) - 1, 0)), max_size=len(texts))) if texts else [])

    assert column.to_list() == texts
    assert [column[i] for i in range(len(texts))] == texts
    assert column.drop(dropped).to_list() == [t for i, t in enumerate(texts) if i not in set(dropped)]


def test_joined_rows_split_only_the_rows_that_split_back() -> None:
    values = [["a", "b"], [], ["x\x00y", "z"], [""], ["é", "\udcff"]]
    raws = ["\x00".join(v) for v in values]
    rows = JoinedRows(raws, {1: [], 2: ["x\x00y", "z"]})

    assert list(rows) == values and len(rows) == 5 and rows[-1] == ["é", "\udcff"]
    assert list(rows.take([4, 2, 1])) == [values[4], values[2], values[1]]
    assert rows.take([0, 3]).kept == {}
