"""`model.unfit`: what in a mapped invoice its columns cannot hold exactly."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from sources.shared.model import MappedInvoice, unfit


def _invoice(**changes: Any) -> MappedInvoice:
    row: dict[str, Any] = {"invoice_id": "a", "total": Decimal("12.30"), "tax_total": 2, "notes": "x", **changes}
    line: dict[str, Any] = {"invoice_id": "a", "line_number": 1, "quantity": Decimal("1.0000000"), "name": "n"}
    return MappedInvoice(row, [line])


def test_the_amounts_that_fit_are_set_to_the_column_scale_in_place() -> None:
    mapped = _invoice()
    assert unfit(mapped) is None
    assert str(mapped.invoice["total"]) == "12.300000"
    assert str(mapped.invoice["tax_total"]) == "2.000000"
    assert str(mapped.items[0]["quantity"]) == "1.000000"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"total": Decimal("1E-600000")}, "invoices.total: 1E-600000 does not fit DECIMAL(18, 6) exactly"),
        ({"total": Decimal("1E-7")}, "invoices.total: 1E-7 does not fit DECIMAL(18, 6) exactly"),
        ({"total": 10**12}, "invoices.total: 1000000000000 does not fit DECIMAL(18, 6) exactly"),
        ({"total": Decimal("NaN")}, "invoices.total: NaN does not fit DECIMAL(18, 6) exactly"),
        ({"total": True}, "invoices.total: True is not an exact amount"),
        ({"total": 1.5}, "invoices.total: 1.5 is not an exact amount"),
        ({"notes": 5}, "invoices.notes: expected text, got int 5"),
        # The first column in contract order is reported.
        ({"tax_total": Decimal("1E-7"), "notes": 5}, "invoices.tax_total: 1E-7 does not fit DECIMAL(18, 6) exactly"),
    ],
)
def test_what_does_not_fit_is_reported(changes: dict[str, Any], reason: str) -> None:
    assert unfit(_invoice(**changes)) == reason


def test_a_line_that_does_not_fit_is_reported() -> None:
    mapped = _invoice()
    mapped.items[0]["subtotal"] = Decimal("1E+20")
    assert unfit(mapped) == "invoice_items.subtotal: 1E+20 does not fit DECIMAL(18, 6) exactly"
