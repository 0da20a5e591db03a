"""What the page-mapper tests (tests/<provider>/test_page.py) share: amounts that test the
"fits DECIMAL(18, 6) exactly" rule at its edges, for every money field a provider sends."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

# Amounts past DECIMAL(18, 6) or at its edges, each of which the record mapper reads or refuses
# on its own: the page mapper must give the same row or leave the record to it, never round.
UNTIDY_AMOUNTS: tuple[Any, ...] = (
    Decimal("1E-600000"),  # tiny and non-zero: it rounds to 0 at six decimals, so it is refused
    Decimal("1E-7"),
    Decimal("-0E-12"),  # zero, written with twelve decimals: fits
    Decimal("1E+20"),
    Decimal("0E+30"),
    "12345678901.123456",
    "0.0000001",
)
