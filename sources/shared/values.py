"""Exact decoding of provider JSON and the value parsers every mapping uses.

Money never touches a float: JSON numbers are decoded straight to `Decimal` from their text,
strings that hold numbers (`"1.0"`) are parsed to `Decimal` too, and the raw payload is written
back with its numbers exactly as they were read.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Callable
from decimal import Context, Decimal, InvalidOperation
from typing import Any, TypeVar

import msgspec
import orjson
import pendulum
import simplejson

# DECIMAL(18, 6) in the warehouse: 12 integer digits, 6 decimals. A value that does not fit is
# reported as a mapping error rather than rounded.
MONEY_PRECISION = 18
MONEY_SCALE = 6
_INTEGER_DIGITS = MONEY_PRECISION - MONEY_SCALE
_QUANTUM = Decimal(1).scaleb(-MONEY_SCALE)
# Quantizes to six decimals with 18 digits at most, whatever the caller's decimal context is.
_fit_quantize = Context(prec=MONEY_PRECISION, traps=[InvalidOperation]).quantize


class ValueProblem(ValueError):
    """A value that cannot be read without guessing: the record is reported, never half-filled."""


# msgspec hands every non-integer number to the hook as its text, so `Decimal` reads it exactly;
# it decodes a page about twice as fast as simplejson (docs/benchmarks.md, load path).
_DECODER = msgspec.json.Decoder(float_hook=Decimal)


def loads(data: bytes | str) -> Any:
    """Decode JSON with every non-integer number as an exact `Decimal` and every integer as an `int`.

    What msgspec refuses goes to simplejson, which decides: a body both refuse raises simplejson's
    `JSONDecodeError` (a `ValueError`), and one only msgspec refuses (a lone surrogate escape such as
    `"\\ud800"`) is read as simplejson reads it, so the result never depends on which decoder ran."""
    try:
        return _DECODER.decode(data)
    except msgspec.DecodeError:
        return simplejson.loads(data, use_decimal=True)


def _exact_number(value: Any) -> Any:
    if type(value) is Decimal:
        return orjson.Fragment(str(value))
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def dumps(obj: Any) -> str:
    """Encode JSON compactly, writing `Decimal` values back as the numbers they were
    (`1.10` stays `1.10`). orjson writes them as raw fragments, several times faster than a
    Python encoder; integers beyond 64 bits, which orjson refuses, go through simplejson."""
    try:
        return orjson.dumps(obj, default=_exact_number).decode()
    except orjson.JSONEncodeError:
        return simplejson.dumps(obj, use_decimal=True, separators=(",", ":"), ensure_ascii=False)


def to_decimal(value: Any, *, field: str = "value") -> Decimal | None:
    """Read an amount sent as a JSON number or as a string holding one.

    Whether the amount fits the money columns (DECIMAL(18, 6)) exactly is decided once, where
    rows become columns (`sources.shared.model`): an amount that does not fit leaves its record
    unmapped there, with a reason naming the column.

    Args:
        value: `Decimal`, `int`, a numeric string (`"12.30"`), `None` or `""`.
        field: the field name, for the error message.

    Returns:
        The exact `Decimal`, or `None` for null or an empty string.

    Raises:
        ValueProblem: for a float (a decoding bug upstream), a boolean, a non-numeric string
            or one that is not a finite number.
    """
    # The hot path of every mapping: types are tested by identity, cheapest first.
    kind = type(value)
    if kind is Decimal:
        return value
    if value is None:
        return None
    if kind is int:
        return Decimal(value)
    if kind is str:
        text = value.strip()
        if not text:
            return None
        try:
            number = Decimal(text.replace(" ", ""))
        except InvalidOperation:
            raise ValueProblem(f"{field}: {value!r} is not a number") from None
        if not number.is_finite():
            raise ValueProblem(f"{field}: {value!r} is not a finite number")
        return number
    if kind is float:
        raise ValueProblem(f"{field}: a float reached the money path ({value!r}); decode JSON with values.loads")
    raise ValueProblem(f"{field}: expected a number, got {kind.__name__} {value!r}")


def fit_money(number: Decimal) -> Decimal | None:
    """`number` at the money columns' scale (the same value, six decimals) when DECIMAL(18, 6)
    holds it exactly, else None: not finite, 12 integer digits or more, or a digit past the
    sixth decimal (`1E-600000` too, which Arrow would read as 0 instead of refusing it).

    The one rule every reader of money applies (`to_decimal`, `model.unfit`, the page mappers).
    """
    # `_FIT` refuses a result of more than 18 digits (12 integer digits or more), an infinity and
    # a signalling NaN; a digit past the sixth decimal changes the value, and a quiet NaN equals
    # nothing. A zero has no digits to refuse: its exponent says how many integer digits it has.
    try:
        scaled = _fit_quantize(number, _QUANTUM)
    except InvalidOperation:
        return None
    if scaled == number and (scaled or number.adjusted() < _INTEGER_DIGITS):
        return scaled
    return None


def to_bool(value: Any, *, field: str = "value") -> bool | None:
    """Read a boolean sent as `true/false`, `1/0` or `"1"/"0"`/`"true"/"false"`."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, Decimal)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in {"1", "true", "t", "yes"}:
        return True
    if isinstance(value, str) and value.strip().lower() in {"0", "false", "f", "no"}:
        return False
    raise ValueProblem(f"{field}: {value!r} is not a boolean")


def to_text(value: Any) -> str | None:
    """Ids and labels as text, exactly as sent (`541793` becomes `'541793'`)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


CACHE_LIMIT = 100_000
_R = TypeVar("_R")


def per_value(read: Callable[..., _R]) -> Callable[..., _R]:
    """`read(value, field=...)` computed once per distinct text `value` and `field`: dates,
    currency names and status words repeat across a listing. A `ValueProblem` is remembered and
    raised again; values other than text are read every time (`True`, `1` and `Decimal("1.0")`
    are equal in Python but not to a reader). At most `CACHE_LIMIT` values are kept."""
    seen: dict[tuple[str, str], Any] = {}

    @functools.wraps(read)
    def reader(value: Any, *, field: str = "value") -> _R:
        if type(value) is not str:
            return read(value, field=field)
        key = (value, field)
        found = seen.get(key, _MISSING)
        if found is _MISSING:
            try:
                found = read(value, field=field)
            except ValueProblem as problem:
                found = problem
            if len(seen) < CACHE_LIMIT:
                seen[key] = found
        if isinstance(found, ValueProblem):
            raise found.with_traceback(None)  # a remembered problem collects no frames
        return found

    return reader


_MISSING = object()
_DMY = re.compile(r"^(\d{1,2})/(\d{1,2})/(\d{4})$")


@per_value
def parse_dmy(value: Any, *, field: str = "date") -> dt.date | None:
    """Parse a `dd/mm/yyyy` date (InvoiceXpress)."""
    if value is None or value == "":
        return None
    match = _DMY.match(str(value).strip())
    if not match:
        raise ValueProblem(f"{field}: {value!r} is not a dd/mm/yyyy date")
    day, month, year = (int(g) for g in match.groups())
    try:
        return dt.date(year, month, day)
    except ValueError:
        raise ValueProblem(f"{field}: {value!r} is not a valid date") from None


# RFC 3339 as APIs write it (`2024-03-13T09:16:53+00:00`, `...53.123Z`): read by the standard
# library exactly as pendulum reads it (fractions of 3 or 6 digits, offsets within ±23:59, no leap
# second, no hour 24); any other text goes to pendulum, the reference.
_STAMP = re.compile(
    r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{3}|\.\d{6})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)?"
)
_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_timestamp(value: Any, *, field: str = "timestamp") -> dt.datetime | None:
    """Parse an ISO 8601 timestamp to an aware UTC datetime; no offset means UTC."""
    if value is None or value == "":
        return None
    if type(value) is str and _STAMP.fullmatch(value):
        try:
            stamp = dt.datetime.fromisoformat(value)
            return stamp.replace(tzinfo=dt.UTC) if stamp.tzinfo is None else stamp.astimezone(dt.UTC)
        except (ValueError, OverflowError):
            pass  # out of range in UTC, say: pendulum's words below
    try:
        parsed = pendulum.parse(str(value), tz="UTC")
    except Exception:
        raise ValueProblem(f"{field}: {value!r} is not an ISO 8601 timestamp") from None
    if not isinstance(parsed, dt.datetime):
        raise ValueProblem(f"{field}: {value!r} is a date, not a timestamp")
    try:
        return parsed.in_timezone("UTC")
    except (OverflowError, ValueError):  # `0001-01-01T00:00:00+01:00` is before year 1 in UTC
        raise ValueProblem(f"{field}: {value!r} is out of range in UTC") from None


@per_value
def parse_date(value: Any, *, field: str = "date") -> dt.date | None:
    """Parse an ISO date or timestamp to a calendar date.

    A timestamp keeps the calendar day written in its own offset
    (`2024-07-12T00:00:00+02:00` is 12 July), as the canonical model requires.
    """
    if value is None or value == "":
        return None
    if type(value) is str:
        try:
            if _DAY.fullmatch(value):
                return dt.date.fromisoformat(value)
            if _STAMP.fullmatch(value):
                return dt.datetime.fromisoformat(value).date()
        except ValueError:
            pass  # pendulum's words below
    text = str(value).strip()
    try:
        parsed = pendulum.parse(text, tz="UTC", exact=True)
    except Exception:
        raise ValueProblem(f"{field}: {value!r} is not an ISO 8601 date") from None
    if isinstance(parsed, dt.datetime):
        return parsed.date()
    if isinstance(parsed, dt.date):
        return parsed
    raise ValueProblem(f"{field}: {value!r} is not a date")
