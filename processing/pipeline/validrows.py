"""``ValidRows``: a chunk's valid rows held as columns, read as a sequence of ``ValidRow``.

The validating processes pass each chunk's valid rows to the loader, which
mostly needs whole columns: the staging table's lines in one text, the
processed file's lines in one text, the keys and line numbers as lists. So
the rows travel as columns, and the long texts (the staging line, the
processed line, the raw values, the JSON) as one string per column with
where each row's part ends: one string pickles, crosses the pipe and is
written out far faster than ten thousand, and no per-row object is built on
either side unless something reads the rows one at a time (deduplication
when a chunk repeats a key, the SQLite load, tests), which gets exactly the
``ValidRow``s the row validator would have given.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator, Sequence
from itertools import accumulate
from typing import Any, overload

from .validate import ValidRow

__all__ = ["JoinedRows", "TextColumn", "ValidRows"]


class TextColumn:
    """One text per row, stored as their UTF-8 bytes end to end and where each one's bytes end.

    Bytes rather than one ``str``: a single character outside Latin-1 would make
    Python store the whole column at two or four bytes a character, and bytes
    cross a pipe and reach a file or ``COPY`` without being encoded again.
    Lone surrogates (undecodable input bytes) round-trip (``surrogatepass``).
    """

    __slots__ = ("data", "ends")

    def __init__(self, data: bytes, ends: array[int]) -> None:
        self.data = data
        self.ends = ends

    @classmethod
    def of(cls, texts: Sequence[str]) -> TextColumn:
        joined = "".join(texts)
        if joined.isascii():
            return cls(joined.encode("ascii"), array("q", accumulate(map(len, texts))))
        encoded = [t.encode("utf-8", "surrogatepass") for t in texts]
        return cls(b"".join(encoded), array("q", accumulate(map(len, encoded))))

    def __len__(self) -> int:
        return len(self.ends)

    def __getitem__(self, index: int) -> str:
        start = self.ends[index - 1] if index > 0 else 0
        return self.data[start : self.ends[index]].decode("utf-8", "surrogatepass")

    def to_list(self) -> list[str]:
        data, ends = self.data, self.ends
        if not ends:
            return []
        if data.isascii():  # character offsets are byte offsets
            text = data.decode("ascii")
            return [text[a:b] for a, b in zip((0, *ends[:-1]), ends, strict=True)]
        return [data[a:b].decode("utf-8", "surrogatepass") for a, b in zip((0, *ends[:-1]), ends, strict=True)]

    def drop(self, positions: Sequence[int]) -> TextColumn:
        """This column without the texts at ``positions`` (ascending): a slice per run of kept rows."""
        data, ends = self.data, self.ends
        pieces: list[bytes] = []
        kept_ends = array("q")
        removed = 0  # bytes dropped before the current run
        start = 0
        for stop in (*positions, len(ends)):
            if stop > start:
                pieces.append(data[ends[start - 1] if start else 0 : ends[stop - 1]])
                kept_ends.extend(end - removed for end in ends[start:stop])
            if stop < len(ends):
                removed += ends[stop] - (ends[stop - 1] if stop else 0)
            start = stop + 1
        return TextColumn(b"".join(pieces), kept_ends)

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return TextColumn, (self.data, self.ends)


class ValidRows(Sequence[ValidRow]):
    """The valid rows of a chunk, in file order, as columns (see the module docstring).

    Indexing and iterating give ``ValidRow``s equal to the row validator's;
    ``lines``, ``keys``, ``copy_text`` and ``processed_text`` give the columns
    the loader uses without building them.
    """

    __slots__ = ("data_json", "keys", "lines", "processed", "raw", "staged", "unique")

    def __init__(
        self,
        lines: list[int],
        keys: list[str],
        data_json: TextColumn,
        unique: list[dict[str, str]] | None,
        raw: TextColumn,
        processed: TextColumn,
        staged: TextColumn,
    ) -> None:
        self.lines = lines
        self.keys = keys
        self.data_json = data_json
        # None when no row has a unique value to check (the usual schema).
        self.unique = unique
        self.raw = raw
        self.processed = processed
        self.staged = staged

    @classmethod
    def of(cls, rows: Sequence[ValidRow]) -> ValidRows:
        """The columns of ``rows`` (already ``ValidRows``: themselves)."""
        if isinstance(rows, ValidRows):
            return rows
        unique = [r.unique_values for r in rows]
        return cls(
            [r.line for r in rows],
            [r.key for r in rows],
            TextColumn.of([r.data_json for r in rows]),
            unique if any(unique) else None,
            TextColumn.of([r.raw for r in rows]),
            TextColumn.of([r.processed for r in rows]),
            TextColumn.of([r.copy for r in rows]),
        )

    def drop(self, positions: Sequence[int]) -> ValidRows:
        """These rows without the ones at ``positions`` (ascending)."""
        gone = set(positions)
        kept = [i for i in range(len(self.lines)) if i not in gone]
        return ValidRows(
            [self.lines[i] for i in kept],
            [self.keys[i] for i in kept],
            self.data_json.drop(positions),
            [self.unique[i] for i in kept] if self.unique is not None else None,
            self.raw.drop(positions),
            self.processed.drop(positions),
            self.staged.drop(positions),
        )

    def copy_text(self) -> bytes:
        """Every row's line for the staging table, in order (``ValidRow.copy`` joined), in UTF-8."""
        return self.staged.data

    def processed_text(self) -> bytes:
        """Every row's line of the processed file, in order (``ValidRow.processed`` joined), in UTF-8."""
        return self.processed.data

    def unique_values(self) -> list[dict[str, str]]:
        return self.unique if self.unique is not None else [{} for _ in self.lines]

    def __len__(self) -> int:
        return len(self.lines)

    @overload
    def __getitem__(self, index: int) -> ValidRow: ...
    @overload
    def __getitem__(self, index: slice) -> list[ValidRow]: ...
    def __getitem__(self, index: int | slice) -> ValidRow | list[ValidRow]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self)
        if not 0 <= index < len(self):
            raise IndexError(index)
        return ValidRow(
            self.lines[index],
            self.keys[index],
            self.data_json[index],
            self.unique[index] if self.unique is not None else {},
            self.raw[index],
            self.processed[index],
            self.staged[index],
        )

    def __iter__(self) -> Iterator[ValidRow]:
        return map(
            ValidRow,
            self.lines,
            self.keys,
            self.data_json.to_list(),
            self.unique_values(),
            self.raw.to_list(),
            self.processed.to_list(),
            self.staged.to_list(),
        )

    def __eq__(self, other: object) -> bool:
        if isinstance(other, ValidRows | list | tuple):
            return list(self) == list(other)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"ValidRows({list(self)!r})"

    def __reduce__(self) -> tuple[Any, tuple[Any, ...]]:
        return ValidRows, (
            self.lines,
            self.keys,
            self.data_json,
            self.unique,
            self.raw,
            self.processed,
            self.staged,
        )


class JoinedRows(Sequence[list[str]]):
    """Rows' values given as each row's values joined by NUL, split only when a row is read.

    ``kept`` holds the values of the rows a split would not give back (none,
    or a value holding a NUL), by position; every other row is its text split
    at each NUL, so it has one value more than its text has NULs.
    """

    __slots__ = ("kept", "raws")

    def __init__(self, raws: list[str], kept: dict[int, list[str]]) -> None:
        self.raws = raws
        self.kept = kept

    def __len__(self) -> int:
        return len(self.raws)

    @overload
    def __getitem__(self, index: int) -> list[str]: ...
    @overload
    def __getitem__(self, index: slice) -> list[list[str]]: ...
    def __getitem__(self, index: int | slice) -> list[str] | list[list[str]]:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        if index < 0:
            index += len(self.raws)
        values = self.kept.get(index)
        return values if values is not None else self.raws[index].split("\x00")

    def take(self, positions: list[int]) -> JoinedRows:
        """The rows at ``positions``, in that order."""
        raws, kept = self.raws, self.kept
        return JoinedRows(
            [raws[p] for p in positions], {i: kept[p] for i, p in enumerate(positions) if p in kept} if kept else {}
        )
