"""The CSV rules, as pure functions: RFC 4180 strictly, the header, numbering, validation, the error cap."""

from __future__ import annotations

from decimal import Decimal

import pytest

from jobs_app.csv_rules import MalformedCsv, parse_csv, row_problem

HEADER = "email,name,amount\n"


def test_quoted_commas_newlines_and_quotes_are_kept_and_values_trimmed():
    text = ' email , name ,amount \r\n a@b.co ,"Doe, Jane",1.5\r\nc@d.org,"two\nlines ""q""", -20\n'
    parsed = parse_csv(text, 10)
    assert [(r.row_no, r.email, r.name, r.amount) for r in parsed.rows] == [
        (1, "a@b.co", "Doe, Jane", Decimal("1.5")),
        (2, "c@d.org", 'two\nlines "q"', Decimal("-20")),
    ]
    assert (parsed.total_rows, parsed.invalid_rows, parsed.errors) == (2, 0, [])


def test_empty_lines_are_skipped_and_not_numbered_but_a_line_of_spaces_is_an_invalid_row():
    parsed = parse_csv(HEADER + "\na@b.co,A,1\n\n   \r\n\nc@d.co,C,2\n", 10)
    assert [r.row_no for r in parsed.rows] == [1, 3]
    assert parsed.total_rows == 3 and parsed.invalid_rows == 1
    assert parsed.errors[0]["row"] == 2 and parsed.errors[0]["message"]


@pytest.mark.parametrize("fields", [
    ["a@b.co", "A"],                       # two fields
    ["a@b.co", "A", "1", "x"],             # four fields
    ["ab.co", "A", "1"],                   # no @
    ["a b@c.co", "A", "1"],                # whitespace inside
    ["a@bco", "A", "1"],                   # no dot after @
    ["a@b@c.co", "A", "1"],                # two @
    ["a@b.co", "   ", "1"],                # empty name once trimmed
    ["a@b.co", "N" * 101, "1"],            # name too long
    ["a@b.co", "A", "1.234"],              # three decimals
    ["a@b.co", "A", "12345678901"],        # eleven digits
    ["a@b.co", "A", "+1"],                 # plus sign
    ["a@b.co", "A", "1."],                 # dot without decimals
    ["a@b.co", "A", "\u0661\u0662"],       # non-ASCII digits (re.ASCII)
])
def test_each_rule_makes_a_row_invalid(fields):
    assert row_problem(fields)


@pytest.mark.parametrize("fields", [
    [" a@b.co ", " A ", " -1234567890.12 "],
    ["é@ü.de", "N" * 100, "0"],
])
def test_valid_rows(fields):
    assert row_problem(fields) is None


def test_errors_list_only_the_first_max_errors_but_all_are_counted():
    text = HEADER + "".join(f"bad{i},A,1\n" for i in range(6)) + "ok@b.co,A,1\n"
    parsed = parse_csv(text, 3)
    assert [e["row"] for e in parsed.errors] == [1, 2, 3]
    assert (parsed.total_rows, parsed.invalid_rows, len(parsed.rows)) == (7, 6, 1)


@pytest.mark.parametrize("text", [
    "email,name\na@b.co,A\n",                  # wrong header
    "Email,Name,Amount\n",                     # header is case-sensitive
    "email,name,amount,extra\n",
    "\n\n",                                    # no header at all
    HEADER + 'a@b.co,"never closed,1\n',       # unclosed quote
    HEADER + 'a@b.co,"A"x,1\n',                # a closing quote followed by a character
    HEADER + 'a@b.co,"A" ,1\n',                # ... even a space
    HEADER + "a@b.co,A\x00,1\n",               # NUL
])
def test_malformed_files_are_refused_whole(text):
    with pytest.raises(MalformedCsv):
        parse_csv(text, 10)


def test_a_field_longer_than_csvs_default_limit_is_an_invalid_row_not_a_malformed_file():
    parsed = parse_csv(HEADER + "a@b.co," + "N" * 200_000 + ",1\n", 10)
    assert parsed.invalid_rows == 1 and not parsed.rows
