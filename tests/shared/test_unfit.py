"""`TableWriter`: an invoice whose values its columns cannot hold exactly is refused with its
lines and a reason naming the column; what fits is written at the column's scale."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sources.shared.model import INVOICE_ITEMS, INVOICES, MappedInvoice, TableWriter


def _invoice(invoice_id: str = "a", **changes: Any) -> MappedInvoice:
    row: dict[str, Any] = {
        "provider": "p",
        "account": "x",
        "invoice_id": invoice_id,
        "total": Decimal("12.30"),
        "tax_total": 2,
        "notes": "x",
        **changes,
    }
    line: dict[str, Any] = {
        "provider": "p",
        "account": "x",
        "invoice_id": invoice_id,
        "line_number": 1,
        "quantity": Decimal("1.0000000"),
        "name": "n",
    }
    return MappedInvoice(row, [line])


def _tables(writer: TableWriter) -> dict[str, Any]:
    return {t: writer._tables[t] for t in (INVOICES, INVOICE_ITEMS)}


def test_the_amounts_that_fit_are_written_at_the_column_scale() -> None:
    writer = TableWriter()
    added = writer.add_invoices([_invoice()])
    assert not added.refused and (added.invoices, added.lines) == (1, 1)
    [invoices], [lines] = _tables(writer).values()
    assert str(invoices.column("total")[0].as_py()) == "12.300000"
    assert str(invoices.column("tax_total")[0].as_py()) == "2.000000"
    assert str(lines.column("quantity")[0].as_py()) == "1.000000"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        # Arrow alone would read this one as 0 instead of refusing it.
        ({"total": Decimal("1E-600000")}, "invoices.total: 1E-600000 does not fit DECIMAL(18, 6) exactly"),
        ({"total": Decimal("1E-7")}, "invoices.total: 1E-7 does not fit DECIMAL(18, 6) exactly"),
        ({"total": 10**12}, "invoices.total: 1000000000000 does not fit DECIMAL(18, 6) exactly"),
        ({"total": Decimal("NaN")}, "invoices.total: NaN does not fit DECIMAL(18, 6) exactly"),
        ({"total": True}, "invoices.total: True is not an exact amount"),
        ({"total": 1.5}, "invoices.total: 1.5 is not an exact amount"),
        ({"notes": 5}, "invoices.notes: expected text, got int 5"),
    ],
)
def test_what_does_not_fit_is_refused_with_its_lines(changes: dict[str, Any], reason: str) -> None:
    writer = TableWriter()
    added = writer.add_invoices([_invoice("a"), _invoice("b", **changes), _invoice("c")])
    assert added.refused == {1: reason}
    [invoices], [lines] = _tables(writer).values()
    assert invoices.column("invoice_id").to_pylist() == ["a", "c"]
    assert lines.column("invoice_id").to_pylist() == ["a", "c"]
    assert (added.invoices, added.lines) == (2, 2)


def test_a_line_that_does_not_fit_refuses_its_invoice() -> None:
    bad = _invoice("b")
    bad.items[0]["subtotal"] = Decimal("1E+20")
    writer = TableWriter()
    added = writer.add_invoices([_invoice("a"), bad])
    assert added.refused == {1: "invoice_items.subtotal: 1E+20 does not fit DECIMAL(18, 6) exactly"}
    [invoices], [lines] = _tables(writer).values()
    assert invoices.column("invoice_id").to_pylist() == lines.column("invoice_id").to_pylist() == ["a"]
