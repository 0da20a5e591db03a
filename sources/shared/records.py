"""Records as the provider sent them: each record's JSON text kept as it arrived, decoded once.

A listing page is decoded with its record list left as raw JSON texts (`split_page`), so each
record's `raw` column is the very text the provider sent, never encoded again, and the lines of
an invoice are cut from it the same way (`line_texts`). Everything else in the body (paging
metadata, page context, an error envelope) is decoded as usual, numbers as exact `Decimal`s.
Stored payloads read back for `remap` become records through the same `Record`.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from typing import Any

import msgspec

from sources.shared.values import loads, to_text

_OBJECT = msgspec.json.Decoder(dict[str, msgspec.Raw])
_ARRAY = msgspec.json.Decoder(list[msgspec.Raw])


class Record:
    """One record of a listing (or of the warehouse, for remap).

    Attributes:
        text: the record's JSON as the provider sent it.
        value: the decoded record (numbers as exact `Decimal`s), decoded on first use.
    """

    __slots__ = ("_raw", "_text", "_value")

    def __init__(self, raw: bytes | msgspec.Raw | str, value: Any = msgspec.UNSET) -> None:
        self._raw = raw
        self._text: str | None = raw if isinstance(raw, str) else None
        self._value = value

    @classmethod
    def of(cls, value: Any, text: str) -> Record:
        return cls(text, value)

    @property
    def text(self) -> str:
        if self._text is None:
            self._text = bytes(self._raw).decode("utf-8")  # type: ignore[arg-type]
        return self._text

    @property
    def value(self) -> Any:
        if self._value is msgspec.UNSET:
            raw = self._raw
            self._value = loads(raw if isinstance(raw, (bytes, str)) else bytes(raw))
        return self._value

    @property
    def id(self) -> str | None:
        """The record's `id` as text (None when it has none, or is not an object)."""
        value = self.value
        return to_text(value.get("id")) if type(value) is dict else None

    @property
    def key(self) -> str:
        """Its key in `unmapped_records`: its id, else a stable hash of its JSON text."""
        return self.id or "sha256:" + hashlib.sha256(self.text.encode()).hexdigest()[:32]

    def __repr__(self) -> str:
        return f"Record({self.text[:60]!r})"


def split_page(content: bytes, records: str) -> tuple[Any, list[Record] | None]:
    """A listing's response body decoded, its records at the dotted path `records` ("" when the
    body is the list) left as raw `Record`s in place; the records, or None when the body holds
    no list there (an error envelope, say), which the caller reports."""
    if not records:
        try:
            found = [Record(raw) for raw in _ARRAY.decode(content)]
        except msgspec.DecodeError:
            return loads(content), None
        return found, found
    try:
        top = _OBJECT.decode(content)
    except msgspec.DecodeError:
        return loads(content), None
    body, listed = _split(top, records.split("."))
    return body, listed


def _split(members: dict[str, msgspec.Raw], path: Sequence[str]) -> tuple[dict[str, Any], list[Record] | None]:
    head, rest = path[0], path[1:]
    body: dict[str, Any] = {k: loads(bytes(v)) for k, v in members.items() if k != head}
    if head not in members:
        return body, None
    raw = bytes(members[head])
    listed: list[Record] | None = None
    try:
        if rest:
            inner, listed = _split(_OBJECT.decode(raw), rest)
            body[head] = inner
        else:
            listed = [Record(r) for r in _ARRAY.decode(raw)]
            body[head] = listed
    except msgspec.ValidationError:  # not an object (or not a list) where the path goes on
        body[head] = loads(raw)
        listed = None
    return _ordered(members, body), listed


def _ordered(members: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {k: body[k] for k in members if k in body}


@functools.cache
def _lines_decoder(field: str) -> msgspec.json.Decoder[Any]:
    lines = msgspec.defstruct("Lines", [(field, list[msgspec.Raw] | None, None)])
    return msgspec.json.Decoder(lines)


def line_texts(record: Record, field: str) -> list[str] | None:
    """The JSON texts of the invoice's lines, the list at its top-level `field`, in order; None
    when that field is missing, null or not a list."""
    raw = record._raw
    try:
        lines = getattr(_lines_decoder(field).decode(raw if isinstance(raw, (bytes, str)) else bytes(raw)), field)
    except msgspec.ValidationError:
        return None
    return None if lines is None else [bytes(line).decode("utf-8") for line in lines]
