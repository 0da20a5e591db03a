"""What a mapping read besides its record, kept with the record's payload for `billing-elt remap`.

`remap` maps the payloads the warehouse stores again, without calling the API. A mapper may
read more than its record (`declaration.Context`): the page's context (date formats a page
announces, say), a declared lookup (project currencies) and the account's options (a fallback
currency). During a load, `Recorder` notes, record by record, what the mapper read of those,
and the driver stores it beside the record's `raw` (column `_mapping_inputs`, NULL when the
mapping read nothing of them); `stored_context` gives remap a `Context` that answers from it.
The account label and the clients' names are not kept: remap has them from the rows.

A stored value is JSON: a dataclass (a page context) is kept as its fields, and the listing's
`restore_context` turns them back into the value.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from sources.shared.declaration import Context
from sources.shared.values import dumps, loads


class MissingInput(Exception):
    """What a record's mapping needs was not stored with it: remap leaves the record as it is and
    reports it (it never guesses).

    Attributes:
        what: the input, in words a user reads (`the lookup 'projects'`).
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def to_stored(value: Any) -> Any:
    """A value as stored: a dataclass as its fields, anything else unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


class _Seen(Mapping[str, Any]):
    """A mapping that notes which of its keys a mapper read, and what it found."""

    def __init__(self, data: Mapping[str, Any], recorder: Recorder, where: tuple[str, ...]) -> None:
        self._data, self._recorder, self._where = data, recorder, where

    def _note(self, key: str) -> None:
        found = key in self._data
        self._recorder.note(self._where, key, self._data[key] if found else None, found)

    def __getitem__(self, key: str) -> Any:
        self._note(key)
        return self._data[key]

    def get(self, key: str, default: Any = None) -> Any:
        self._note(key)
        return self._data.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self._note(key)
        return key in self._data

    def __iter__(self) -> Iterator[str]:
        for key in self._data:
            self._note(key)
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


class Recorder:
    """Notes what one record's mapping reads of a page context, the options and the lookups.

    `context(base)` gives the `Context` to map with; `start()` before each record and `take()`
    after it return that record's inputs as JSON text, or None when it read none of them.
    """

    def __init__(self, keep_page: bool) -> None:
        self.keep_page = keep_page
        self._found: dict[str, Any] = {}
        # The inputs stored with the record being mapped again (remap): kept as they were written
        # (a warehouse may have reformatted the JSON) when the mapping read the same.
        self.stored: str | None = None

    def context(self, base: Context) -> Context:
        lookup = base.lookup
        return dataclasses.replace(
            base,
            options=_Seen(base.options, self, ("options",)),
            lookup=lambda name: _Seen(lookup(name) or {}, self, ("lookups", name)),
        )

    def note(self, where: tuple[str, ...], key: str, value: Any, found: bool) -> None:
        place = self._found
        for part in where:
            place = place.setdefault(part, {})
        if found:
            place.setdefault("values", {})[key] = to_stored(value)
        elif key not in place.setdefault("missing", []):
            place["missing"].append(key)

    def start(self) -> None:
        self._found = {}

    def take(self, page: Any) -> str | None:
        found = self._found
        if self.keep_page and page is not None:
            found = {"page": to_stored(page), **found}
        if not found:
            return None
        if self.stored is not None and loads(self.stored) == found:
            return self.stored
        return dumps(found)


class _Stored(Mapping[str, Any]):
    """What a load noted of a mapping (options, a lookup), answering exactly as it did then."""

    def __init__(self, kept: Mapping[str, Any] | None, what: str) -> None:
        kept = kept or {}
        self._values: Mapping[str, Any] = kept.get("values") or {}
        self._missing = set(kept.get("missing") or [])
        self._complete = bool(kept.get("complete"))  # every key not in `values` was absent
        self._what = what

    def _check(self, key: str) -> bool:
        if key in self._values:
            return True
        if key in self._missing or self._complete:
            return False
        raise MissingInput(self._what)

    def __getitem__(self, key: str) -> Any:
        if not self._check(key):
            raise KeyError(key)
        return self._values[key]

    def get(self, key: str, default: Any = None) -> Any:
        return self._values[key] if self._check(key) else default

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self._check(key)

    def __iter__(self) -> Iterator[str]:
        raise MissingInput(self._what)

    def __len__(self) -> int:
        return len(self._values)


def stored_context(
    base: Context, inputs: str | None, restore: Callable[[Any], Any] | None, needs_page: bool
) -> Context:
    """The `Context` a load mapped a record with, from the inputs stored beside its payload.

    Raises:
        MissingInput: the listing has a page context and none was stored with the record.
    """
    kept: dict[str, Any] = loads(inputs) if inputs else {}
    page = kept.get("page")
    if needs_page and page is None:
        raise MissingInput("the page context of its listing")
    lookups = kept.get("lookups") or {}
    return dataclasses.replace(
        base,
        page=restore(page) if restore is not None and page is not None else page,
        options=_Stored(kept.get("options"), "the account's mapping options"),
        lookup=lambda name: _Stored(lookups.get(name), f"the lookup {name!r}"),
    )


LEGACY_KEY = "mapping_inputs"


def legacy_inputs(state: Mapping[str, Any], record_type: str, key: str) -> str | None:
    """The inputs of a record written by a load of an earlier version, which kept them in the
    account's state instead of beside each payload (its options, each lookup's whole value, its
    page context by record key), in today's stored form; None where that state has none."""
    kept = state.get(LEGACY_KEY)
    if not isinstance(kept, Mapping):
        return None
    found: dict[str, Any] = {}
    contexts = (kept.get("contexts") or {}).get(record_type) or []
    if contexts:
        number = ((kept.get("context_of") or {}).get(record_type) or {}).get(key, 0)
        if 0 <= number < len(contexts):
            found["page"] = contexts[number]
    if isinstance(kept.get("options"), Mapping):
        found["options"] = {"values": dict(kept["options"]), "complete": True}
    for name, value in (kept.get("lookups") or {}).items():
        if isinstance(value, Mapping):
            found.setdefault("lookups", {})[name] = {"values": dict(value), "complete": True}
    return dumps(found) if found else None
