"""The user's rates file (`[analysis] fx_rates_file`): the ECB's layout, errors that name the
file, the line and the column."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path

import pytest

from sources.ecb.rates import Rate
from sources.ecb.userfile import UserRatesError, read_user_rates


def write(tmp_path: Path, text: str, encoding: str = "utf-8") -> Path:
    path = tmp_path / "rates.csv"
    path.write_text(text, encoding=encoding)
    return path


def test_rates_are_read_exactly_with_source_user(tmp_path: Path) -> None:
    path = write(tmp_path, "Date,AED,SAR,\n2026-10-30,4.1031,4.18985,\n2026-10-29,4.0876,N/A,\n\n")
    assert read_user_rates(path) == [
        Rate(dt.date(2026, 10, 30), "AED", Decimal("4.1031"), "user"),
        Rate(dt.date(2026, 10, 30), "SAR", Decimal("4.18985"), "user"),
        Rate(dt.date(2026, 10, 29), "AED", Decimal("4.0876"), "user"),
    ]


def test_a_spreadsheet_export_with_bom_quotes_and_crlf_is_read(tmp_path: Path) -> None:
    path = write(tmp_path, '\ufeff"Date","AED"\r\n"2026-10-30","4.1031"\r\n')
    assert read_user_rates(path) == [Rate(dt.date(2026, 10, 30), "AED", Decimal("4.1031"), "user")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("Date,AED,EUR\n2026-10-30,4.1,1\n", "line 1, column 3: EUR is the base"),
        ("Date,AED,ABC\n", "line 1, column 3: ABC is not an ISO 4217 currency code"),
        ("Date,AED\n2026-10-30,4,1031\n", "line 2: 3 cells where the header has 2"),
        ("Date,AED,SAR\n2026-10-30,4.1031,4.19\n2026-10-29,4.08,4,19\n", "line 3: 4 cells"),
        ("Date,AED,SAR\n2026-10-30,4.1031,4.1.9\n", "line 2, column 3: SAR: '4.1.9' is not a rate"),
        ("Date,AED\n2026-10-30,4.123456789\n", r"line 2, column 2: AED: '4.123456789' does not fit DECIMAL\(16, 8\)"),
        ("Date,AED\n2026-10-31,4.1\n2026-10-31,4.2\n", "line 3, column 1: 2026-10-31 is also on line 2"),
        ("Date,AED\n31/10/2026,4.1\n", "line 2, column 1: '31/10/2026' is not a date"),
    ],
)
def test_errors_name_the_file_line_and_column(tmp_path: Path, text: str, message: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(UserRatesError, match=rf"^fx_rates_file {path}, {message}"):
        read_user_rates(path)


def test_a_missing_or_binary_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(UserRatesError, match=r"fx_rates_file .*nowhere.csv: cannot be read"):
        read_user_rates(tmp_path / "nowhere.csv")
    path = tmp_path / "rates.csv"
    path.write_bytes(b"Date,AED\n2026-10-30,\xff\xfe\n")
    with pytest.raises(UserRatesError, match="cannot be read"):
        read_user_rates(path)
