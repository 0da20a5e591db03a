"""Records that note every field a mapping reads: `Recorded` (an object) and `RecordedList` (an
array) wrap a decoded record and note, in one set, the path of every key looked up in them
(present or not) and of every object or array handed out, nested as deep as the mapping goes;
paths are written as `schema_changes` writes them (sources/shared/structure.py)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

from sources.shared.declaration import Api, Mappers
from sources.shared.structure import CLIENT, INVOICE, LINE, lines_prefix, segment


class Recorded(dict[str, Any]):
    """A JSON object that notes the paths of the keys read in it."""

    def __init__(self, value: dict[str, Any], path: str, seen: set[str]) -> None:
        super().__init__(value)
        self.path, self.seen = path, seen

    def _child(self, key: str, value: Any) -> Any:
        return wrap(value, self.path + segment(key), self.seen)

    def get(self, key: Any, default: Any = None) -> Any:
        self.seen.add(self.path + segment(key))
        return self._child(key, super().get(key, default)) if key in self.keys() else default

    def __getitem__(self, key: Any) -> Any:
        self.seen.add(self.path + segment(key))
        return self._child(key, super().__getitem__(key))

    def __contains__(self, key: object) -> bool:
        self.seen.add(self.path + segment(str(key)))
        return super().__contains__(key)

    def __iter__(self) -> Iterator[Any]:
        self.seen.update(self.path + segment(k) for k in self.keys())
        return super().__iter__()

    def items(self) -> Any:
        return [(k, self[k]) for k in list(self.keys())]

    def values(self) -> Any:
        return [v for _, v in self.items()]


class RecordedList(list[Any]):
    """A JSON array whose items note what is read in them (path `...[]`)."""

    def __init__(self, value: list[Any], path: str, seen: set[str]) -> None:
        super().__init__(value)
        self.path, self.seen = path, seen

    def __iter__(self) -> Iterator[Any]:
        return (wrap(item, self.path, self.seen) for item in super().__iter__())

    def __getitem__(self, index: Any) -> Any:
        found = super().__getitem__(index)
        if isinstance(index, slice):
            return RecordedList(found, self.path, self.seen)
        return wrap(found, self.path, self.seen)


def wrap(value: Any, path: str, seen: set[str]) -> Any:
    if type(value) is dict:
        return Recorded(value, path, seen)
    if type(value) is list:
        return RecordedList(value, path + "[]", seen)
    return value


@dataclasses.dataclass
class Reading:
    """The paths a provider's mapping read, per record type, over every record it was given, and
    each call made (record type, the mapper, the record, the other arguments) to make again."""

    lines: str
    invoice: set[str] = dataclasses.field(default_factory=set)
    client: set[str] = dataclasses.field(default_factory=set)
    calls: list[tuple[str, Callable[..., Any], Any, tuple[Any, ...]]] = dataclasses.field(default_factory=list)

    def by_type(self) -> dict[str, set[str]]:
        """The paths read, as `Reads` declares them: a line's (under `$.items[]`) apart."""
        prefix = lines_prefix(self.lines)
        line = {p for p in self.invoice if p.startswith(prefix + ".") or p.startswith(prefix + "[")}
        return {INVOICE: self.invoice - line, LINE: line, CLIENT: set(self.client)}

    def read(self, kind: str, function: Callable[..., Any], record: Any, *args: Any) -> Any:
        """`function(record, *args)` with `record` noting what is read in it."""
        return function(wrap(record, "$", getattr(self, kind)), *args)


def reading(api: Api) -> tuple[Api, Reading]:
    """`api` with every one of its mappers reading through `Recorded` records, and what they read."""
    found = Reading(api.mapping.lines)

    def noting(function: Callable[..., Any] | None, kind: str) -> Any:
        if function is None:
            return None

        def read(record: Any, *args: Any) -> Any:
            found.calls.append((kind, function, record, args))
            return found.read(kind, function, record, *args)

        return read

    mapping: Mappers = api.mapping
    recording = dataclasses.replace(
        mapping,
        client=noting(mapping.client, CLIENT),
        invoice=noting(mapping.invoice, INVOICE),
        invoice_updated_at=noting(mapping.invoice_updated_at, INVOICE),
        invoice_client=noting(mapping.invoice_client, INVOICE),
        account_from=noting(mapping.account_from, CLIENT),
    )
    return dataclasses.replace(api, mapping=recording), found


def ablations(record: Any) -> Iterator[Any]:
    """The record, then, for each of its fields at any depth, the record without it and with it
    null: what makes a mapping take its other branches (a missing amount read from elsewhere)."""
    yield record
    for path in _paths(record):
        for replacement in (_MISSING, None):
            yield _replaced(record, path, replacement)


_MISSING = object()


def _paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if type(value) is dict:
        for key, child in value.items():
            yield (*path, key)
            yield from _paths(child, (*path, key))
    elif type(value) is list and value:
        yield from _paths(value[0], (*path, 0))


def _replaced(value: Any, path: tuple[Any, ...], replacement: Any) -> Any:
    head, rest = path[0], path[1:]
    if type(value) is dict:
        copy = dict(value)
        if rest:
            copy[head] = _replaced(value[head], rest, replacement)
        elif replacement is _MISSING:
            del copy[head]
        else:
            copy[head] = replacement
        return copy
    copy_list = list(value)
    copy_list[head] = _replaced(value[head], rest, replacement) if rest else replacement
    if replacement is _MISSING and not rest:
        del copy_list[head]
    return copy_list
