import datetime as dt
from decimal import Decimal, InvalidOperation, localcontext

import pytest
import simplejson

from sources.shared.values import (
    ValueProblem,
    dumps,
    fit_money,
    loads,
    parse_date,
    parse_dmy,
    parse_timestamp,
    to_bool,
    to_decimal,
    to_text,
)


def test_json_numbers_decode_to_exact_decimals():
    data = loads(b'{"total": 1.07, "taxes": 0.1, "big": 123456789012.345678, "count": 3}')
    assert data["total"] == Decimal("1.07") and isinstance(data["total"], Decimal)
    assert data["taxes"] == Decimal("0.1")  # not 0.1000000000000000055511151231257827
    assert data["big"] == Decimal("123456789012.345678")
    assert data["count"] == 3 and isinstance(data["count"], int)


@pytest.mark.parametrize(
    "body",
    [
        b"[1e5, 1E400, 0.1e-9999, -0, -0.0, 1.10, 2.50E-3]",
        b"[123456789012345678901234567890, -18446744073709551616, 18446744073709551615, 9223372036854775808]",
        b'{"a": 1, "a": 2.0, "b": {"a": [true, false, null]}}',
        rb'{"name": "S\u00e3o Jo\u00e3o \ud83d\ude00", "city": "Lisboa", "esc": "\\\/\"\b\f\n\r\t"}',
        rb'"\ud800"',
        rb'["\ud800 lone", "\udfff"]',  # lone surrogates: msgspec refuses them, simplejson reads them
        '{"t\u00f6tal": 1.0, "city": "Lisboa \u00e9"}',  # text, not bytes
        b"  [ ]  ",
    ],
)
def test_loads_reads_every_body_as_simplejson_with_exact_decimals_does(body):
    expected = simplejson.loads(body, use_decimal=True)
    got = loads(body)
    assert got == expected and repr(got) == repr(expected)  # repr tells Decimal("1.0") from 1 and -0.0 from 0


@pytest.mark.parametrize(
    "body",
    [b"", b"[1] x", b"{", b"[NaN]", b"[Infinity]", b"\xff", b"[1,]", b"{'a': 1}", b"<html>Bad gateway</html>"],
)
def test_loads_refuses_what_is_not_json_with_a_value_error(body):
    with pytest.raises(ValueError):
        simplejson.loads(body, use_decimal=True)
    with pytest.raises(ValueError):
        loads(body)


def test_raw_payload_round_trips_numbers_as_written():
    text = '{"a":1.10,"b":"1.0","c":0.07,"d":[1,2.50]}'
    assert dumps(loads(text)) == text


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1.0", Decimal("1.0")),
        ("12.30", Decimal("12.30")),
        (Decimal("0.07"), Decimal("0.07")),
        (5, Decimal(5)),
        (" 3.5 ", Decimal("3.5")),
        ("-2.25", Decimal("-2.25")),
        (None, None),
        ("", None),
    ],
)
def test_to_decimal_reads_numbers_and_numeric_strings(value, expected):
    assert to_decimal(value) == expected


@pytest.mark.parametrize("value", [0.1, "abc", True, "NaN", "-Infinity", [1]])
def test_to_decimal_refuses_floats_garbage_and_what_is_not_a_finite_number(value):
    with pytest.raises(ValueProblem):
        to_decimal(value, field="total")


@pytest.mark.parametrize("value", ["1.0000001", "1e13", Decimal("1E-600000")])
def test_to_decimal_reads_exactly_and_leaves_fitting_the_column_to_the_writer(value):
    # Whether an amount fits DECIMAL(18, 6) is decided once, where rows become columns
    # (tests/shared/test_model.py): the reader never rounds.
    assert to_decimal(value) == Decimal(value)


@pytest.mark.parametrize(
    ("value", "scaled"),
    [
        ("12.30", "12.300000"),
        ("-0E-12", "-0.000000"),
        ("1.0000000", "1.000000"),  # seven decimals written, six meant
        ("999999999999.999999", "999999999999.999999"),
        ("-999999999999.999999", "-999999999999.999999"),
        ("12345678901.123456", "12345678901.123456"),
        ("1E+11", "100000000000.000000"),
    ],
)
def test_an_amount_that_fits_decimal_18_6_is_given_at_its_scale(value, scaled):
    found = fit_money(Decimal(value))
    assert found is not None and str(found) == scaled
    assert to_decimal(Decimal(value)) == Decimal(value)


@pytest.mark.parametrize(
    "value",
    [
        "1E-600000",  # tiny, non-zero: it would be 0 at six decimals
        "1E-7",
        "0.0000001",
        "1.1234567",
        "1E+12",
        "1E+20",
        "0E+30",
        "999999999999.9999999",  # rounds up to 13 integer digits
        "NaN",
        "-NaN",
        "sNaN",
        "Infinity",
        "-Infinity",
    ],
)
def test_an_amount_past_decimal_18_6_does_not_fit(value):
    assert fit_money(Decimal(value)) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, True),
        (False, False),
        (1, True),
        (0, False),
        ("1", True),
        ("0", False),
        ("true", True),
        ("false", False),
        (None, None),
    ],
)
def test_to_bool_accepts_true_false_and_one_zero(value, expected):
    assert to_bool(value) is expected


def test_to_bool_refuses_other_values():
    with pytest.raises(ValueProblem):
        to_bool(2)


def test_ids_become_text_exactly():
    assert to_text(541793) == "541793"
    assert to_text("in_31d435a7f94fd8d87c36ecfd") == "in_31d435a7f94fd8d87c36ecfd"
    assert to_text(None) is None


def test_dd_mm_yyyy_dates():
    assert parse_dmy("27/06/2017") == dt.date(2017, 6, 27)
    assert parse_dmy("") is None
    with pytest.raises(ValueProblem):
        parse_dmy("2017-06-27")
    with pytest.raises(ValueProblem):
        parse_dmy("31/02/2017")


def test_a_timestamp_keeps_the_calendar_day_of_its_own_offset():
    assert parse_date("2024-07-12T00:00:00+00:00") == dt.date(2024, 7, 12)
    assert parse_date("2024-07-12T00:30:00+02:00") == dt.date(2024, 7, 12)  # 11 July in UTC
    assert parse_date("2024-07-20T23:59:59-05:00") == dt.date(2024, 7, 20)
    assert parse_date("2024-07-12") == dt.date(2024, 7, 12)


def test_timestamps_are_utc_and_naive_ones_are_read_as_utc():
    assert parse_timestamp("2024-03-13T09:16:53+02:00") == dt.datetime(2024, 3, 13, 7, 16, 53, tzinfo=dt.UTC)
    assert parse_timestamp("2024-03-13T09:16:53") == dt.datetime(2024, 3, 13, 9, 16, 53, tzinfo=dt.UTC)
    stamp = parse_timestamp("2023-11-07T05:31:56Z")
    assert stamp is not None and stamp.tzinfo is not None
    with pytest.raises(ValueProblem):
        parse_timestamp("yesterday")


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-01:00"])
def test_a_timestamp_out_of_range_in_utc_is_a_value_problem_not_a_crash(value: str):
    with pytest.raises(ValueProblem, match="out of range in UTC"):
        parse_timestamp(value, field="updated_at")


def test_whether_an_amount_fits_does_not_depend_on_the_callers_decimal_context():
    with localcontext() as context:
        context.prec = 5
        context.traps[InvalidOperation] = False
        assert str(fit_money(Decimal("999999999999.999999"))) == "999999999999.999999"
        assert fit_money(Decimal("1E-7")) is None
        assert fit_money(Decimal("Infinity")) is None
