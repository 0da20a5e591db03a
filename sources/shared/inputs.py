"""What a mapping needed beyond the record, kept at load time for `billing-elt remap`.

`remap` maps the payloads the warehouse stores again, without calling the API
(docs/configuration.md, command table; docs/canonical-model.md, `unmapped_records`). A mapper
may need more than its record (`declaration.Context`): the account label (the rows' `account`
column), the clients' names (the `clients` table), and three things only a load knows, which
the driver keeps in the account's dlt state, committed with the rows they describe:

- the account's mapping options (`Context.options`, a fallback currency for example);
- the value of each declared lookup the run fetched (the latest run's);
- the page context of every record written (the value of the listing's `page_context` for the
  page the record came on). Contexts are kept once each, in the order first seen; a record
  written on a page with the first context needs no entry, any other record is listed with the
  number of its context. In the common case (one context for ever) the state holds one value.

Stored values are JSON: a dataclass is kept as its fields (a listing's `restore_context` turns
them back into the value), anything else as it is.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

STATE_KEY = "mapping_inputs"


class MissingInput(Exception):
    """What a record's mapping needs was not stored by the load that wrote it: remap leaves the
    record as it is and reports it (it never guesses).

    Attributes:
        what: the input, in words a user reads (`the lookup 'projects'`).
    """

    def __init__(self, what: str) -> None:
        super().__init__(what)
        self.what = what


def to_stored(value: Any) -> Any:
    """A value as kept in dlt state: a dataclass as its fields, anything else unchanged."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    return value


def _inputs(state: dict[str, Any]) -> dict[str, Any]:
    found: dict[str, Any] = state.setdefault(STATE_KEY, {})
    return found


def remember_options(state: dict[str, Any], options: Mapping[str, Any]) -> None:
    """Keep the account's mapping options (`Context.options`) in its state."""
    _inputs(state)["options"] = {k: to_stored(v) for k, v in options.items()}


def remember_lookup(state: dict[str, Any], name: str, value: Any) -> None:
    """Keep the value of the lookup `name` this run fetched."""
    _inputs(state).setdefault("lookups", {})[name] = to_stored(value)


def remember_context(state: dict[str, Any], record_type: str, keys: Iterable[str], context: Any) -> None:
    """Keep the page context `context` of the records `keys` (of `record_type`) written now."""
    inputs = _inputs(state)
    seen: list[Any] = inputs.setdefault("contexts", {}).setdefault(record_type, [])
    stored = to_stored(context)
    if stored not in seen:
        seen.append(stored)
    number = seen.index(stored)
    of: dict[str, int] = inputs.setdefault("context_of", {}).setdefault(record_type, {})
    for key in keys:
        if number:
            of[key] = number
        else:
            of.pop(key, None)


class StoredInputs:
    """The inputs one account's load kept, read back for remap.

    Args:
        state: the account's dlt source state (`sources.<provider>.<account>`).
    """

    def __init__(self, state: Mapping[str, Any]) -> None:
        self._inputs: Mapping[str, Any] = state.get(STATE_KEY) or {}

    def options(self) -> Mapping[str, Any]:
        """The account's mapping options; reading one raises `MissingInput` when none were kept."""
        kept = self._inputs.get("options")
        return _Options(kept if isinstance(kept, Mapping) else None)

    def lookup(self, name: str) -> Any:
        """The kept value of lookup `name`.

        Raises:
            MissingInput: no load kept it.
        """
        lookups = self._inputs.get("lookups") or {}
        if name not in lookups:
            raise MissingInput(f"the lookup {name!r}")
        return lookups[name]

    def context(self, record_type: str, key: str, restore: Callable[[Any], Any] | None) -> Any:
        """The page context a `record_type` record with `key` was written with, restored.

        Raises:
            MissingInput: no context of this record type was kept.
        """
        seen = (self._inputs.get("contexts") or {}).get(record_type) or []
        if not seen:
            raise MissingInput(f"the page context of its {record_type} listing")
        number = ((self._inputs.get("context_of") or {}).get(record_type) or {}).get(key, 0)
        stored = seen[number] if 0 <= number < len(seen) else None
        if stored is None:
            raise MissingInput(f"the page context of its {record_type} listing")
        return restore(stored) if restore is not None else stored


class _Options(Mapping[str, Any]):
    """Kept options, or, when none were kept, a mapping that raises `MissingInput` when read."""

    def __init__(self, kept: Mapping[str, Any] | None) -> None:
        self._kept = kept

    def _get(self) -> Mapping[str, Any]:
        if self._kept is None:
            raise MissingInput("the account's mapping options")
        return self._kept

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())
