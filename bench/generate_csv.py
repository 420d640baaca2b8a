"""Generate realistic, messy CSV files for the ``sales`` dataset (bench/sales.schema.json).

The output is streamed row by row, so memory stays flat for any ``--rows``,
and the same arguments always give byte-identical output.

Usage::

    python bench/generate_csv.py --rows 1000000 --seed 1 --output /tmp/sales.csv --defects /tmp/sales.defects.csv
    python bench/generate_csv.py --rows 300 --seed 3 --invalid-rate 0.04 --output processing/demo/sales.csv
    # the same rows with 10 % of the valid rows' quantity changed (re-ingest benchmark):
    python bench/generate_csv.py --rows 1000000 --seed 1 --change-rate 0.1 --change-seed 2 --output /tmp/sales2.csv

Options:

``--rows N``            data rows to write (the header comes on top).
``--seed S``            seed of the row generator (default 1).
``--invalid-rate R``    fraction of rows that carry exactly one defect (default 0.02).
``--output FILE``       where to write the CSV (default: standard output).
``--defects FILE``      also write a CSV ``line,field,defect`` naming each invalid row: ``line`` is the
                        1-based physical line on which the record starts (the header is line 1; quoted
                        values with embedded newlines make a record span several lines), ``field`` the
                        schema field at fault, or ``__row__`` for ragged rows and duplicate ids.
``--start-id K``        number of the first id (ids are ``S`` + a zero-padded number; default 1).
``--change-rate R``     change the ``quantity`` of a fraction R of the valid rows (chosen with
``--change-seed S2``)   ``--change-seed``); everything else is what ``--seed`` alone gives.

Valid rows are messy the way real exports are: categories in mixed case with
surrounding spaces, decimals with and without thousands separators, several
ISO 8601 timestamp spellings, unicode descriptions holding commas, quotes and
newlines, lower-case countries with spaces, booleans spelled many ways.

A one-line summary (rows, invalid, changed, bytes, seconds) goes to standard error.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import io
import random
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import TextIO

HEADER = ["id", "timestamp", "category", "value", "quantity", "customer_email", "country", "description", "is_active"]
FIELDS = ["id", "timestamp", "category", "value", "quantity", "email", "country", "description", "is_active"]
ID, TIMESTAMP, CATEGORY, VALUE, QUANTITY, EMAIL, COUNTRY, DESCRIPTION, IS_ACTIVE = range(len(HEADER))
ROW_FIELD = "__row__"
ID_WIDTH = 9
RECENT_IDS = 4096  # valid ids remembered for duplicate-id defects (a fixed-size ring)

# --- pools of valid spellings ------------------------------------------------

CATEGORIES = ["books", "toys", "Books", "Toys", "BOOKS", "TOYS", " Books ", " toys", "toys ", "  BOOKS", "Toys  "]
COUNTRIES = ["US", "DE", "FR", "GB", "NL", "ES", "IT", "PL", "SE", "JP", "BR", "CA", "AU", "IN", "CH", "AT"]
BOOLEANS = ["true", "false", "True", "False", "TRUE", "FALSE", "yes", "no", "Yes", "NO", "1", "0"]
BOOLEANS += ["t", "f", "T", "F", "y", "n", "Y", "N", " yes ", "true ", " 0", " False "]
OFFSETS = ["+02:00", "-05:00", "+05:30", "+00:00", "+09:00", "-03:00", "+01:00", "-08:00"]
FIRST_NAMES = ["anna", "ben", "chloe", "david", "emma", "felix", "greta", "hugo", "ines", "jonas", "kim", "lena"]
FIRST_NAMES += ["marco", "nora", "oscar", "paula", "quinn", "rosa", "sven", "tara", "ugo", "vera", "will", "yuki"]
LAST_NAMES = ["smith", "mueller", "dubois", "rossi", "garcia", "nowak", "jansen", "berg", "tanaka", "silva"]
LAST_NAMES += ["obrien", "kowalski", "fischer", "moreau", "lopez", "ivanova", "chen", "nakamura", "okafor", "dahl"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "shop.example.co.uk", "example.de", "bücher.example"]
DOMAINS += ["post.example.fr", "example.io"]
TAGS = ["news", "shop", "promo", "2024", "books", "x"]
DESCRIPTIONS = [
    "Gift wrapped",
    "Paperback, 2nd edition",
    "Hardcover; signed by the author",
    'Customer said "great service"',
    'Box marked "fragile", handle with care',
    '12" vinyl, limited run',
    "Café crème colouring book",
    "Naïve façade — coördinated delivery",
    "Größe: 42, Farbe: grün",
    "東京の本屋で購入",
    "Игрушка для детей, 3+",
    "Ελληνικά παραμύθια",
    "🎁 birthday present 🎉",
    "Çok güzel, teşekkürler",
    "Returned once, then re-sold",
    "Bundle: 3 \u00d7 puzzles, 1 \u00d7 board game",
    "Pre-order (ships in 2\u20133 weeks)",
    "Note: customer asked for invoice, VAT id DE123456789",
    "Line one of the note\nLine two of the note",
    "Address:\n12 Rue de la Paix\n75002 Paris",
    "Tab\tseparated\tremark",
    "=SUM(A1:A3) typed by a clerk",
    "',' and '\"' both appear here",
    "Discount 10 %, promo code SPRING",
]
SEPARATORS = [" ", ", ", "; ", " | ", "\n", " — "]
DAYS = [date.fromordinal(n).isoformat() for n in range(date(2022, 1, 1).toordinal(), date(2025, 1, 1).toordinal())]

# --- pools of defects -----------------------------------------------------------

UNKNOWN_CATEGORIES = ["games", " Garden ", "ELECTRONICS", "book", "toy", "music", "Books & Toys", "misc"]
NON_NUMERIC_QUANTITIES = ["three", "n/a", "12a", "1 2", "?", "1e3", "x", "--", "4,5", "twelve"]
BAD_COUNTRIES = ["USA", "deu", " Fra ", "GBR", "esp", "ITA", "nld", "Pol"]
BAD_BOOLEANS = ["maybe", "2", "yess", "N/A", "-", "truth", "on", "off", "nope", "?"]
BAD_TIMESTAMPS = ["yesterday", "not a date", "2024-02-30T10:00:00Z", "2024-13-01T00:00:00Z", "2024-01-02T25:00:00"]
REQUIRED = [ID, TIMESTAMP, CATEGORY, QUANTITY, EMAIL, COUNTRY, IS_ACTIVE]
STRIPPED = {ID, CATEGORY, COUNTRY}  # whitespace-only is missing for these

DEFECTS = [
    "bad_timestamp",
    "unknown_category",
    "negative_quantity",
    "non_numeric_quantity",
    "bad_email",
    "bad_country",
    "bad_boolean",
    "missing_required",
    "ragged_row",
    "duplicate_id",
]


class CountingWriter:
    """A text sink that counts the newlines and UTF-8 bytes written through it."""

    __slots__ = ("bytes", "lines", "stream")

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.lines = 0
        self.bytes = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        self.bytes += len(text) if text.isascii() else len(text.encode("utf-8"))
        return self.stream.write(text)


class RowMaker:
    """Makes valid rows and breaks some of them; all randomness comes from ``rng``."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.random = rng.random
        self.recent: list[str] = []  # ring of recent valid ids
        self.recent_next = 0
        self.breakers: dict[str, Callable[[list[str]], str]] = {
            "bad_timestamp": self._bad_timestamp,
            "unknown_category": self._unknown_category,
            "negative_quantity": self._negative_quantity,
            "non_numeric_quantity": self._non_numeric_quantity,
            "bad_email": self._bad_email,
            "bad_country": self._bad_country,
            "bad_boolean": self._bad_boolean,
            "missing_required": self._missing_required,
            "ragged_row": self._ragged_row,
            "duplicate_id": self._duplicate_id,
        }

    # --- valid values ---------------------------------------------------------

    # The hot paths index pools with ``random()`` instead of calling
    # ``choice``/``randint``, which are several times slower.

    def ident(self, number: int) -> str:
        text = f"S{number:0{ID_WIDTH}d}"
        r = self.random()
        if r < 0.01:
            return f" {text}"
        if r < 0.02:
            return f"{text}  "
        return text

    def timestamp(self) -> str:
        random = self.random
        day = DAYS[int(random() * len(DAYS))]
        minutes, second = divmod(int(random() * 86400), 60)
        clock = f"{minutes // 60:02d}:{minutes % 60:02d}:{second:02d}"
        r = random()
        if r < 0.30:
            return f"{day}T{clock}Z"
        if r < 0.45:
            return f"{day}T{clock}{OFFSETS[int(random() * len(OFFSETS))]}"
        if r < 0.60:
            return f"{day} {clock}"
        if r < 0.70:
            return f"{day}T{clock}.{int(random() * 1000):03d}{OFFSETS[int(random() * len(OFFSETS))]}"
        if r < 0.78:
            return f"{day}T{clock}.{int(random() * 1_000_000):06d}Z"
        if r < 0.86:
            return f"{day}T{clock}"
        if r < 0.92:
            return f"{day} {clock}.{int(random() * 1_000_000):06d}"
        if r < 0.97:
            return day
        return f" {day}T{clock}Z "

    def value(self) -> str:
        random = self.random
        r = random()
        if r < 0.08:
            return ""
        units, cents = divmod(int(random() * (250_000_00 if r < 0.25 else 1000_00)), 100)
        r = random()
        if units >= 1000 and r < 0.5:
            return f"{units:,}.{cents:02d}"
        if r < 0.75:
            return f"{units}.{cents:02d}"
        if r < 0.85:
            return str(units)
        if r < 0.95:
            return f"{units}.{cents // 10}"
        return f" {units}.{cents:02d} "

    def quantity(self) -> str:
        random = self.random
        n = int(random() * 21) if random() < 0.8 else 21 + int(random() * 4980)
        r = random()
        if r < 0.05:
            return f"{n}.0"
        if r < 0.08:
            return f" {n} "
        return str(n)

    def email(self) -> str:
        random = self.random
        first = FIRST_NAMES[int(random() * len(FIRST_NAMES))]
        last = LAST_NAMES[int(random() * len(LAST_NAMES))]
        domain = DOMAINS[int(random() * len(DOMAINS))]
        r = random()
        if r < 0.5:
            user = f"{first}.{last}"
        elif r < 0.75:
            user = f"{first[0]}{last}{1 + int(random() * 999)}"
        elif r < 0.9:
            user = f"{first}+{TAGS[int(random() * len(TAGS))]}"
        else:
            user = f"{first}_{last}-{10 + int(random() * 90)}"
        r = random()
        if r < 0.1:
            return f"{user.title()}@{domain.title()}"
        if r < 0.15:
            return f"{user}@{domain}".upper()
        return f"{user}@{domain}"

    def country(self) -> str:
        random = self.random
        code = COUNTRIES[int(random() * len(COUNTRIES))]
        r = random()
        if r < 0.6:
            return code
        if r < 0.8:
            return code.lower()
        if r < 0.9:
            return f" {code.lower()} "
        return f"{code[0]}{code[1].lower()} "

    def description(self) -> str:
        random = self.random
        r = random()
        if r < 0.15:
            return ""
        text = DESCRIPTIONS[int(random() * len(DESCRIPTIONS))]
        if r < 0.55:
            return text
        for _ in range(1 if random() < 0.6 else 2):
            text += SEPARATORS[int(random() * len(SEPARATORS))] + DESCRIPTIONS[int(random() * len(DESCRIPTIONS))]
        return text

    def valid_row(self, number: int) -> list[str]:
        random = self.random
        return [
            self.ident(number),
            self.timestamp(),
            CATEGORIES[int(random() * len(CATEGORIES))],
            self.value(),
            self.quantity(),
            self.email(),
            self.country(),
            self.description(),
            BOOLEANS[int(random() * len(BOOLEANS))],
        ]

    def remember(self, ident: str) -> None:
        if len(self.recent) < RECENT_IDS:
            self.recent.append(ident)
        else:
            self.recent[self.recent_next] = ident
            self.recent_next = (self.recent_next + 1) % RECENT_IDS

    # --- defects: each breaks exactly one thing and returns the field at fault ---

    def break_row(self, row: list[str]) -> tuple[str, str]:
        """Give a valid row exactly one defect; return ``(field, defect)``."""
        defect = self.rng.choice(DEFECTS)
        if defect == "duplicate_id" and not self.recent:
            defect = self.rng.choice(DEFECTS[:-1])
        return self.breakers[defect](row), defect

    def _bad_timestamp(self, row: list[str]) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            row[TIMESTAMP] = rng.choice(BAD_TIMESTAMPS)
        else:
            # The same moment in a spelling ISO 8601 does not allow.
            y, m, d = row[TIMESTAMP].strip()[:10].split("-")
            row[TIMESTAMP] = rng.choice([f"{d}/{m}/{y} 10:15", f"{m}/{d}/{y}", f"{d}.{m}.{y}", f"{y}/{m}/{d} 08:00:00"])
        return FIELDS[TIMESTAMP]

    def _unknown_category(self, row: list[str]) -> str:
        row[CATEGORY] = self.rng.choice(UNKNOWN_CATEGORIES)
        return FIELDS[CATEGORY]

    def _negative_quantity(self, row: list[str]) -> str:
        row[QUANTITY] = str(-self.rng.randint(1, 50))
        return FIELDS[QUANTITY]

    def _non_numeric_quantity(self, row: list[str]) -> str:
        row[QUANTITY] = self.rng.choice(NON_NUMERIC_QUANTITIES)
        return FIELDS[QUANTITY]

    def _bad_email(self, row: list[str]) -> str:
        email = row[EMAIL]
        user, domain = email.split("@", 1)
        row[EMAIL] = self.rng.choice(
            [
                f"{user}{domain}",  # no @
                f"{user}@",  # no domain
                f"{user}@@{domain}",
                f"{user} @{domain}",
                f"{user}@{domain.rsplit('.', 1)[0].replace('.', '-')}",  # no dot in the domain
                f"@{domain}",
                f"{user}..x@{domain}",
                f" {email}",  # emails are not stripped
            ]
        )
        return FIELDS[EMAIL]

    def _bad_country(self, row: list[str]) -> str:
        row[COUNTRY] = self.rng.choice(BAD_COUNTRIES)
        return FIELDS[COUNTRY]

    def _bad_boolean(self, row: list[str]) -> str:
        row[IS_ACTIVE] = self.rng.choice(BAD_BOOLEANS)
        return FIELDS[IS_ACTIVE]

    def _missing_required(self, row: list[str]) -> str:
        index = self.rng.choice(REQUIRED)
        row[index] = "   " if index in STRIPPED and self.rng.random() < 0.3 else ""
        return FIELDS[index]

    def _ragged_row(self, row: list[str]) -> str:
        rng = self.rng
        if rng.random() < 0.5:
            del row[rng.randrange(len(row))]
        else:
            row.insert(rng.randrange(len(row) + 1), rng.choice(["", "extra", "1,5", "n/a"]))
        return ROW_FIELD

    def _duplicate_id(self, row: list[str]) -> str:
        ident = self.rng.choice(self.recent).strip()
        r = self.rng.random()
        row[ID] = f" {ident}" if r < 0.2 else (f"{ident} " if r < 0.3 else ident)
        return ROW_FIELD


def _change_quantity(quantity: str, rng: random.Random) -> str:
    """A different whole number, so the record's content really changes."""
    return str(int(float(quantity)) + rng.randint(1, 9))


def generate(
    out: TextIO,
    *,
    rows: int,
    seed: int,
    invalid_rate: float,
    start_id: int = 1,
    defects: TextIO | None = None,
    change_rate: float = 0.0,
    change_seed: int = 1,
) -> dict[str, int]:
    """Write the header and ``rows`` data rows to ``out``; return counters."""
    maker = RowMaker(random.Random(seed))
    rng = maker.rng
    changer = random.Random(change_seed) if change_rate > 0 else None
    sink = CountingWriter(out)
    writer = csv.writer(sink, lineterminator="\n")
    defect_writer = csv.writer(defects, lineterminator="\n") if defects is not None else None
    if defect_writer is not None:
        defect_writer.writerow(["line", "field", "defect"])
    writer.writerow(HEADER)
    invalid = changed = 0
    for i in range(rows):
        row = maker.valid_row(start_id + i)
        if rng.random() < invalid_rate:
            field, defect = maker.break_row(row)
            invalid += 1
            if defect_writer is not None:
                defect_writer.writerow([sink.lines + 1, field, defect])
        else:
            maker.remember(row[ID])
            if changer is not None and changer.random() < change_rate:
                row[QUANTITY] = _change_quantity(row[QUANTITY], changer)
                changed += 1
        writer.writerow(row)
    return {"rows": rows, "invalid": invalid, "changed": changed, "bytes": sink.bytes, "lines": sink.lines}


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description="Generate a messy sales CSV (see the module docstring).")
    parser.add_argument("--rows", type=_count, required=True, help="data rows to write")
    parser.add_argument("--seed", type=int, default=1, help="seed of the row generator (default 1)")
    parser.add_argument("--invalid-rate", type=_rate, default=0.02, help="fraction of rows with a defect")
    parser.add_argument("--output", default="-", help="CSV file to write (default: standard output)")
    parser.add_argument("--defects", help="also write the defects as CSV: line,field,defect")
    parser.add_argument("--start-id", type=_count, default=1, help="number of the first id (default 1)")
    parser.add_argument("--change-rate", type=_rate, default=0.0, help="fraction of valid rows whose quantity changes")
    parser.add_argument("--change-seed", type=int, default=1, help="seed choosing the changed rows (default 1)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if args.output == "-":
            out: TextIO = io.TextIOWrapper(sys.stdout.buffer, encoding="utf-8", newline="")
            stack.callback(out.detach)  # flushes; leaves sys.stdout usable
        else:
            out = stack.enter_context(open(args.output, "w", encoding="utf-8", newline="", buffering=1 << 20))
        defects = stack.enter_context(open(args.defects, "w", encoding="utf-8", newline="")) if args.defects else None
        stats = generate(
            out,
            rows=args.rows,
            seed=args.seed,
            invalid_rate=args.invalid_rate,
            start_id=args.start_id,
            defects=defects,
            change_rate=args.change_rate,
            change_seed=args.change_seed,
        )
    seconds = time.perf_counter() - started
    print(
        f"generate_csv: rows={stats['rows']} invalid={stats['invalid']} changed={stats['changed']} "
        f"bytes={stats['bytes']} lines={stats['lines']} seconds={seconds:.2f} output={args.output}",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
