"""ISO 4217 currency codes: validation, and lookup in a provider's own table of names and symbols.

docs/canonical-model.md: `currency` is a code of the ISO 4217 list, not merely three capital letters.
The list is pycountry's (`pycountry.currencies`, Debian's iso-codes data, which follows ISO 4217
List One, the codes in use today). Nothing here knows a provider: a provider passes its own table.

A code that ISO 4217 has withdrawn (List Three) is no longer in pycountry, yet documents issued while it
was legal tender are rightly written in it (a 2022 invoice in Croatian kuna is in HRK, not EUR).
`WITHDRAWN` lists the withdrawn codes accepted for such documents; each of them was on List One and has
since been replaced. Any other code is refused with a message naming the value, never guessed.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

import pycountry

from sources.shared.values import ValueProblem

# ISO 4217 codes withdrawn from List One (now List Three), with the code that replaced each.
WITHDRAWN: Mapping[str, str] = {
    "ANG": "XCG",  # Netherlands Antillean guilder → Caribbean guilder
    "BGN": "EUR",  # Bulgarian lev → euro
    "BYR": "BYN",  # Belarusian ruble, redenominated
    "CUC": "CUP",  # Cuban convertible peso, withdrawn
    "EEK": "EUR",  # Estonian kroon → euro
    "HRK": "EUR",  # Croatian kuna → euro
    "LTL": "EUR",  # Lithuanian litas → euro
    "LVL": "EUR",  # Latvian lats → euro
    "MRO": "MRU",  # Mauritanian ouguiya, redenominated
    "SLL": "SLE",  # Sierra Leonean leone, redenominated
    "STD": "STN",  # São Tomé and Príncipe dobra, redenominated
    "VEF": "VES",  # Venezuelan bolívar, redenominated
    "ZMK": "ZMW",  # Zambian kwacha, redenominated
    "ZWL": "ZWG",  # Zimbabwean dollar → Zimbabwe gold
}

_CODE = re.compile(r"^[A-Za-z]{3}$")


@cache
def current_codes() -> frozenset[str]:
    """Every code of ISO 4217 List One, as pycountry carries it."""
    return frozenset(currency.alpha_3 for currency in pycountry.currencies)


def is_iso_4217(code: str) -> bool:
    """Whether `code` (upper case) is an ISO 4217 code: current, or withdrawn and in `WITHDRAWN`."""
    return code in current_codes() or code in WITHDRAWN


def iso_4217(code: Any, *, field: str = "currency") -> str:
    """The ISO 4217 code `code` stands for, upper-cased (`"eur"` → `EUR`).

    Raises:
        ValueProblem: the value is missing, is not three letters, or is no ISO 4217 code
            (`"ESC"`, `"LEI"`); the message names the value.
    """
    if code is None or (isinstance(code, str) and not code.strip()):
        raise ValueProblem(f"{field}: missing ({code!r})")
    text = str(code).strip()
    if not _CODE.match(text):
        raise ValueProblem(f"{field}: {code!r} is not an ISO 4217 code")
    upper = text.upper()
    if not is_iso_4217(upper):
        raise ValueProblem(f"{field}: {code!r} is not a code of the ISO 4217 list")
    return upper


def name_key(text: str) -> str:
    """How currency names are compared: Unicode NFC, case-folded, without full stops, single spaces.

    So `"U.S. dollar"`, `"US Dollar"` and `"u.s.  dollar"` meet, while `"Polish złoty"` and
    `"Polish zloty"` stay apart (letters are never folded into others).
    """
    text = unicodedata.normalize("NFC", text).casefold().replace(".", "")
    return " ".join(text.split())


@dataclass(frozen=True)
class CurrencyTable:
    """A provider's currency table: name → code, and symbol → the codes that write it.

    Build it with `currency_table`; look values up with `resolve`.
    """

    names: Mapping[str, str]
    symbols: Mapping[str, tuple[str, ...]]  # case-folded symbol → every code written so
    exact_symbols: frozenset[str]  # the symbols as the table writes them


def currency_table(rows: Iterable[tuple[str, str, str]]) -> CurrencyTable:
    """Index `(name, symbol, code)` rows for `resolve`.

    Raises:
        ValueError: a code of the table is not an ISO 4217 code, or two rows share a name with
            different codes (a table error, found when the module is imported).
    """
    names: dict[str, str] = {}
    symbols: dict[str, list[str]] = {}
    exact: set[str] = set()
    for name, symbol, code in rows:
        if not is_iso_4217(code):
            raise ValueError(f"currency table: {code!r} ({name}) is not an ISO 4217 code")
        key = name_key(name)
        if names.get(key, code) != code:
            raise ValueError(f"currency table: {name!r} names both {names[key]} and {code}")
        names[key] = code
        if symbol.strip():
            exact.add(unicodedata.normalize("NFC", symbol.strip()))
            found = symbols.setdefault(_symbol_key(symbol), [])
            if code not in found:
                found.append(code)
    return CurrencyTable(names, {symbol: tuple(codes) for symbol, codes in symbols.items()}, frozenset(exact))


def _symbol_key(symbol: str) -> str:
    return unicodedata.normalize("NFC", symbol.strip()).casefold()


def resolve(value: Any, table: CurrencyTable, *, field: str = "currency") -> str:
    """The ISO 4217 code for a name, a code or a symbol, in that order.

    - a name of the table (compared by `name_key`) gives its code;
    - otherwise three letters that are an ISO 4217 code pass (`"eur"` → `EUR`);
    - otherwise a symbol, written exactly as the table writes it, gives its code only when one
      currency of the table writes it, in any case (`"€"` → `EUR`, `"Esc"` → `CVE`; `"$"` is
      written by 29 currencies, and `"KR"` (EEK) is refused since `"kr"` is ISK, NOK and SEK).

    Raises:
        ValueProblem: missing, an ambiguous symbol (`"$"`: the message lists the candidates), or a
            value that is none of these; the message names the value.
    """
    if value is None or (isinstance(value, str) and not value.strip()):
        raise ValueProblem(f"{field}: missing ({value!r})")
    if not isinstance(value, str):
        raise ValueProblem(f"{field}: {value!r} is not a currency name, code or symbol")
    text = value.strip()
    code = table.names.get(name_key(text))
    if code is not None:
        return code
    if _CODE.match(text) and is_iso_4217(text.upper()):
        return text.upper()
    codes = table.symbols.get(_symbol_key(text)) if unicodedata.normalize("NFC", text) in table.exact_symbols else None
    if codes is not None and len(codes) == 1:
        return codes[0]
    if codes:
        raise ValueProblem(f"{field}: the symbol {value!r} is written by several currencies ({', '.join(codes)})")
    raise ValueProblem(f"{field}: {value!r} is neither a known currency name, an ISO 4217 code nor a symbol")
