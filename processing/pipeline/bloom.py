"""A Bloom filter over strings: "certainly not added" or "maybe added", in fixed memory.

The pipeline asks the database whether a chunk's keys were seen earlier in
the run (``load.SeenValues``). Almost always they were not, and each look-up
is an index probe. This filter answers "certainly not" for nearly all of
them from memory, so only the few "maybe" values are looked up. It never
answers "not added" for a value that was added, so the answers it lets
through stay exact; a full filter only lets more values through to the
database.

Strings are hashed with Python's ``hash``, which is stable within one
process (not across processes), so a filter lives and dies with the
process that fills it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# 2**27 bits (16 MiB): about 1 false "maybe" in 10,000 after 5M values, 1 in 400 after 10M.
DEFAULT_BITS = 1 << 27
HASHES = 6

_SHIFT = np.uint64(32)
_ONE = np.uint64(1)
_SEVEN = np.uint64(7)
_THREE = np.uint64(3)


class BloomFilter:
    def __init__(self, bits: int = DEFAULT_BITS, hashes: int = HASHES) -> None:
        if bits < 64 or bits & (bits - 1):
            raise ValueError("bits must be a power of two, at least 64")
        self._mask = np.uint64(bits - 1)
        self._hashes = [np.uint64(i) for i in range(hashes)]
        self._bytes = np.zeros(bits // 8, dtype=np.uint8)

    def _positions(self, values: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Byte index and bit mask of each value's bits: arrays of shape (hashes, len(values))."""
        h1 = np.fromiter(map(hash, values), dtype=np.int64, count=len(values)).view(np.uint64)
        h2 = (h1 >> _SHIFT) | _ONE  # odd, so the probes of one value differ
        bits = np.stack([(h1 + i * h2) & self._mask for i in self._hashes])
        return (bits >> _THREE).astype(np.intp), (_ONE << (bits & _SEVEN)).astype(np.uint8)

    def add(self, values: Sequence[str]) -> None:
        if not values:
            return
        index, mask = self._positions(values)
        np.bitwise_or.at(self._bytes, index.ravel(), mask.ravel())

    def maybe(self, values: Sequence[str]) -> list[str]:
        """The values that may have been added (every one that was, and a few that were not)."""
        if not values:
            return []
        index, mask = self._positions(values)
        hit = ((self._bytes[index] & mask) != 0).all(axis=0)
        return [v for v, h in zip(values, hit.tolist(), strict=True) if h]
