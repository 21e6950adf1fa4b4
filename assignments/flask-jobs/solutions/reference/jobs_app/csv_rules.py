"""The CSV rules of an import, as pure functions (no database, no app): what the task applies.

- RFC 4180 via `csv.reader(..., strict=True)`: a quoted field never closed, or a closing quote followed by
  anything but a comma or a line end, makes the whole file malformed (the default reader accepts both).
- The header is exactly `email,name,amount`, each name trimmed.
- Data rows are numbered from 1, header excluded. An empty line (nothing between two line ends) is skipped
  and not numbered; a line of spaces is a row, an invalid one.
- A valid row has exactly 3 fields and, trimmed, an email, a name of 1-100 characters and an amount matching
  the patterns below (ASCII classes: `re.ASCII`).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from decimal import Decimal

HEADER = ("email", "name", "amount")
EMAIL_RE = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+", re.ASCII)
AMOUNT_RE = re.compile(r"-?\d{1,10}(\.\d{1,2})?", re.ASCII)
NAME_MAX = 100


class MalformedCsv(ValueError):
    """The file cannot be imported at all (bad header, not well-formed CSV); the message says why."""


@dataclass(frozen=True)
class Row:
    """A valid data row, its values trimmed."""

    row_no: int
    email: str
    name: str
    amount: Decimal


@dataclass
class ParsedCsv:
    """What a well-formed file holds: the valid rows, and the invalid ones counted (the first listed)."""

    rows: list[Row] = field(default_factory=list)
    total_rows: int = 0
    invalid_rows: int = 0
    errors: list[dict[str, object]] = field(default_factory=list)


def row_problem(fields: list[str]) -> str | None:
    """Why a data row is invalid, or None when it is valid."""
    if len(fields) != 3:
        return f"expected 3 fields (email, name, amount), got {len(fields)}"
    email, name, amount = (value.strip() for value in fields)
    if not EMAIL_RE.fullmatch(email):
        return "email is not a valid address"
    if not 1 <= len(name) <= NAME_MAX:
        return f"name must be 1 to {NAME_MAX} characters"
    if not AMOUNT_RE.fullmatch(amount):
        return "amount must be a number with at most 10 digits and 2 decimals"
    return None


def parse_csv(text: str, max_errors: int) -> ParsedCsv:
    """Read the whole file; raise MalformedCsv when it cannot be imported. Nothing is written anywhere."""
    if "\x00" in text:
        raise MalformedCsv("the file contains a NUL character")
    # One field may be as long as the whole file: csv's default cap (128 KiB) would call a long but
    # well-formed field malformed.
    csv.field_size_limit(max(csv.field_size_limit(), len(text) + 1))
    # newline="": line ends stay in the stream, so quoted fields keep their newlines (LF or CRLF).
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    parsed = ParsedCsv()
    header_seen = False
    try:
        for fields in reader:
            if not fields:  # an empty line: skipped, not numbered
                continue
            if not header_seen:
                if tuple(name.strip() for name in fields) != HEADER:
                    raise MalformedCsv(f"the header must be exactly email,name,amount (line {reader.line_num})")
                header_seen = True
                continue
            parsed.total_rows += 1
            problem = row_problem(fields)
            if problem is None:
                email, name, amount = (value.strip() for value in fields)
                parsed.rows.append(Row(parsed.total_rows, email, name, Decimal(amount)))
                continue
            parsed.invalid_rows += 1
            if len(parsed.errors) < max_errors:
                parsed.errors.append({"row": parsed.total_rows, "message": problem})
    except csv.Error as exc:
        raise MalformedCsv(f"the file is not well-formed CSV (line {reader.line_num}): {exc}") from None
    if not header_seen:
        raise MalformedCsv("the file has no header: the first line must be email,name,amount")
    return parsed
