"""A user's own rates (`[analysis] fx_rates_file`): a CSV in the ECB's layout, units per euro.

```
Date,AED,SAR
2026-10-30,4.1031,4.1898
2026-10-29,4.0876,N/A
```

The header is `Date` and ISO 4217 codes (EUR is the base, not a column); a day per line, as
`2026-10-30`; `N/A` or an empty cell for no rate. A trailing comma, as the ECB writes, is allowed.
Every rate is read exactly from its text and must fit DECIMAL(16, 8): a value with more digits is
refused, not rounded. Errors name the file, the line and the column.
"""

from __future__ import annotations

from pathlib import Path

from sources.ecb.rates import Rate, RateFormatError, csv_rates
from sources.ecb.settings import USER
from sources.shared.currency import is_iso_4217


class UserRatesError(ValueError):
    """The user's rates file cannot be used; the message names the file, line and column."""


def _check_code(code: str) -> str | None:
    if code == "EUR":
        return "EUR is the base (1 euro), not a rate column"
    return None if is_iso_4217(code) else f"{code} is not an ISO 4217 currency code"


def read_user_rates(path: str | Path) -> list[Rate]:
    """Every rate of the file at `path`, with `source = 'user'`, in file order.

    Raises:
        UserRatesError: the file is missing or unreadable, not in the ECB's layout, has a column
            that is not an ISO 4217 code (or is EUR), a day twice, or a value that is not a rate.
    """
    path = Path(path).expanduser()
    where = f"fx_rates_file {path}"
    try:
        with path.open(encoding="utf-8-sig", newline="") as lines:
            return list(csv_rates(lines, source=USER, check_code=_check_code))
    except (OSError, UnicodeDecodeError) as exc:
        raise UserRatesError(f"{where}: cannot be read ({exc})") from None
    except RateFormatError as exc:
        raise UserRatesError(f"{where}, {exc}") from None
