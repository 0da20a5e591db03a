"""The pieces every vectorised page mapper is built from (sources/shared/pages.py)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from sources.shared import pages
from sources.shared.values import ValueProblem, dumps, to_decimal
from tests.pages import UNTIDY_AMOUNTS


@pytest.mark.parametrize(
    "value",
    [*UNTIDY_AMOUNTS, Decimal("12.30"), Decimal("-0.000001"), 7, 10**12, -(10**12) + 1, "", " 12.30 ", "1 000", None],
)
def test_an_amount_is_taken_as_the_record_mapper_reads_it_or_left_to_it(value: Any) -> None:
    try:
        taken = pages.optional_money(value)
    except pages.Fallback:
        return  # the record mapper's to read or refuse
    # What the columns take, they take exactly as the record mapper reads it.
    assert taken == to_decimal(value)
    assert taken is None or type(taken) is Decimal


@pytest.mark.parametrize("value", [Decimal("1E-600000"), Decimal("1E-7"), Decimal("1E+20"), Decimal("NaN"), 10**12])
def test_an_amount_past_decimal_18_6_is_left_to_the_record_mapper(value: Any) -> None:
    with pytest.raises(pages.Fallback):
        pages.optional_money(value)
    with pytest.raises(pages.Fallback):
        pages.money(value)


def test_a_required_amount_that_is_missing_is_left_to_the_record_mapper() -> None:
    for value in (None, "", "  "):
        with pytest.raises(pages.Fallback):
            pages.money(value)


def test_text_is_taken_for_text_none_and_integers_only() -> None:
    assert pages.text("a") == "a"
    assert pages.text(None) is None
    assert pages.text(5) == "5"
    odd: tuple[Any, ...] = (True, Decimal("1.5"), ["a"], {})
    for value in odd:
        with pytest.raises(pages.Fallback):
            pages.text(value)


def test_a_value_is_read_once_per_type_and_value_and_a_refusal_is_remembered() -> None:
    calls: list[Any] = []

    def read(value: Any) -> Any:
        calls.append(value)
        if value == "bad":
            raise ValueProblem("bad")
        if value == "odd":
            raise TypeError("odd")
        return (type(value).__name__, value)

    cached = pages.cached(read)
    for value in (1, True, Decimal("1.0"), 1, True, Decimal("1.0")):
        assert cached(value) == (type(value).__name__, value)
    assert len(calls) == 3
    for _ in range(2):
        for refused in ("bad", "odd", ["unhashable"]):
            with pytest.raises(pages.Fallback):
                cached(refused)
    assert calls.count("bad") == 1 and calls.count("odd") == 1


def test_only_text_refuses_other_types() -> None:
    read = pages.only_text(str.upper)
    assert read("eur") == "EUR"
    for value in (None, 5, True):
        with pytest.raises(ValueProblem):
            read(value)


@pytest.mark.parametrize(
    "record",
    [
        {"id": 1, "items": [{"a": Decimal("1.10")}, {"b": [1, None]}], "z": "é"},
        {"id": 2, "items": [{"big": 10**30}]},  # an integer orjson refuses: the other encoder writes it
        {"id": 3, "items": []},
    ],
)
def test_the_raw_json_with_its_lines_spliced_in_is_what_dumps_writes(record: dict[str, Any]) -> None:
    lines = [(n, pages.encode(item)) for n, item in enumerate(record["items"])]
    assert pages.raw_with_lines(record, "items", lines) == dumps(record)
    assert [line[-1] for line in lines] == [dumps(item) for item in record["items"]]


def test_a_page_is_read_into_columns_and_what_the_columns_refuse_is_left() -> None:
    def columns(record: Any) -> tuple[tuple[Any, ...], list[tuple[Any, ...]]]:
        if type(record) is not dict:
            raise pages.Fallback
        return (record["id"],), [(record["id"], n) for n in range(record["lines"])]

    seen: list[Any] = []

    def tables(inv: dict[str, list[Any]], line: dict[str, list[Any]], fallback: list[int]) -> Any:
        seen.append((inv, line, fallback))
        return "rows"

    names = (("invoice_id",), ("invoice_id", "line_number"))
    assert pages.map_page([{"id": "a", "lines": 2}, "x", {"id": "b", "lines": 0}], columns, names, tables) == "rows"
    assert seen == [
        ({"invoice_id": ["a", "b"]}, {"invoice_id": ["a", "a"], "line_number": [0, 1]}, [1]),
    ]
    seen.clear()
    assert pages.map_page([], columns, names, tables) == "rows"
    assert seen == [({"invoice_id": []}, {"invoice_id": [], "line_number": []}, [])]


def test_a_page_arrow_refuses_is_left_whole_to_the_record_mapper() -> None:
    def refuse(inv: Any, line: Any, fallback: Any) -> Any:
        raise pa.ArrowInvalid("a derived amount past DECIMAL(18, 6)")

    assert pages.map_page([{"id": "a"}], lambda r: ((r["id"],), []), (("invoice_id",), ("invoice_id",)), refuse) is None


def test_page_rows_carry_the_provider_and_account_keys() -> None:
    rows = pages.page_rows(
        "kitchen",
        "acme",
        {"invoice_id": ["a", "b"], "total": pa.array([Decimal("1.5"), None], pages.DEC)},
        {"invoice_id": ["a"], "line_number": [1]},
        [2],
    )
    assert rows.invoices.column("provider").to_pylist() == ["kitchen", "kitchen"]
    assert rows.invoices.column("account").to_pylist() == ["acme", "acme"]
    assert rows.invoices.column("total").to_pylist() == [Decimal("1.5"), None]
    assert rows.items.column("account").to_pylist() == ["acme"]
    assert list(rows.fallback) == [2]
