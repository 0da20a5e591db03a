"""The JSON structure of the payloads a run stores, compared with what earlier runs stored
(docs/canonical-model.md, `schema_changes`; docs/checks.md).

Every record a run stores (mapped into the canonical tables or kept in `unmapped_records`) is
described by its structure: the set of (path, JSON type) pairs it holds, paths written as
`$.client.id`, `$.tags[]`, `$["odd key"]`, types `string`, `number`, `null`, `object`, `array`,
`boolean`. An invoice's lines are records of their own (record type `line`), their paths written
as in the invoice (`$.items[].tax.value`); the invoice's own structure stops at its lines field.

Cheap per record: a record's structure is found from its keys and the types of its values, looked
up in a cache (`Shapes`), so a run of a million invoices of a few dozen shapes walks a few dozen
payloads and counts shapes for the rest. Small per run: what the run saw is kept per record type
as each path's count of records and its types (`Observer.keep`, in the account's dlt state, so a
run committed in batches keeps what its committed batches saw), and the comparison
(`Observer.compare`) keeps per path only its types and whether every record since it appeared
had it.

Changes, each recorded once (by the run that first saw it):

- `added`: a path no earlier stored record had (or one that had vanished, back again);
- `vanished`: a path every record stored since it appeared had, in no record of this run;
- `type_changed`: a path seen with a type it never had before.

The first run that observes a record type sets its baseline and records nothing. A run that
stores no record of a type compares nothing for it (a rerun that finds nothing changed records
nothing).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from bisect import bisect_right
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from decimal import Decimal
from operator import attrgetter, itemgetter
from typing import Any, cast

import pyarrow as pa

from sources.shared.records import Record

log = logging.getLogger("billing.structure")

SCHEMA_CHANGES = "schema_changes"
INVOICE, LINE, CLIENT = "invoice", "line", "client"
RECORD_TYPES = (INVOICE, LINE, CLIENT)
ADDED, VANISHED, TYPE_CHANGED = "added", "vanished", "type_changed"
STATE_KEY = "structure"
# Paths kept per record type: an API that keys objects by ids (a new key per record) would
# otherwise grow the state without end. Paths beyond it are not compared (said once per run).
MAX_PATHS = 2_000
# Entries of the shape cache before it is emptied and filled again.
MAX_CACHED = 20_000

JSON_TYPES: dict[type, str] = {
    str: "string",
    int: "number",
    float: "number",
    Decimal: "number",
    bool: "boolean",
    type(None): "null",
    dict: "object",
    list: "array",
}
_PLAIN = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def segment(key: str) -> str:
    """`.name` for a plain key, `["odd key"]` for any other (JSON string quoting)."""
    if _PLAIN.fullmatch(key):
        return "." + key
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'["{escaped}"]'


def lines_prefix(lines: str) -> str:
    """Where a line's paths start: `$.items[]` for lines listed in `items`."""
    return "$" + segment(lines) + "[]"


@dataclass(frozen=True)
class Reads:
    """The JSON paths a provider's mapping reads, per record type (`Mappers.reads`): what it
    looks up, present or not, in the record given to any of its functions. A `vanished` path
    that the mapping reads is an error in `data_checks`, any other change a warning.

    Paths are written as `schema_changes` writes them: `$.client.id` in an invoice, lines' paths
    as in the invoice (`$.items[].tax.value`), `$.contacts[].email` in a client. A test runs each
    mapping over published and sandbox records and proves the declaration holds every path it
    reads and none it does not (tests/shared/test_reads.py).
    """

    invoice: tuple[str, ...] = ()
    line: tuple[str, ...] = ()
    client: tuple[str, ...] = ()

    def of(self, record_type: str) -> frozenset[str]:
        return frozenset(getattr(self, record_type, ()))


# --- shapes ------------------------------------------------------------------------------------


class Shape:
    """The structure of one JSON value: its (path, type) pairs, paths relative to the value
    (`""` is the value itself, `.a`, `[]`...). Interned: equal shapes are one object."""

    __slots__ = ("pairs", "paths")

    def __init__(self, pairs: frozenset[tuple[str, str]]) -> None:
        self.pairs = pairs
        self.paths = frozenset(path for path, _ in pairs)

    def __repr__(self) -> str:
        return f"Shape({sorted(self.pairs)})"


class _Entry:
    """A cached object layout: its keys, then the types of its values (and which key's list is
    opaque). `shape` when no value is an object or array; else the shapes it takes, by the shapes
    of those values (`nested`) and, where these hold no object or array themselves, by their own
    layouts (`flat`, found without computing a shape)."""

    __slots__ = ("base", "containers", "flat", "kind", "lists", "nested", "segments", "shape")

    def __init__(self, layout: tuple[Any, ...], opaque: str | None, shapes: Shapes) -> None:
        half = len(layout) // 2
        keys, kinds = layout[:half], layout[half:]
        base: set[tuple[str, str]] = {("", "object")}
        containers: list[str] = []
        lists: list[bool] = []
        for key, kind in zip(keys, kinds, strict=True):
            if (kind is dict or kind is list) and not (kind is list and key == opaque):
                containers.append(key)
                lists.append(kind is list)
            else:
                base.add((segment(key), JSON_TYPES.get(kind, kind.__name__)))
        self.base = frozenset(base)
        self.containers = tuple(containers)
        self.lists = tuple(lists)
        self.kind = (self.containers, self.lists)
        self.segments = tuple(segment(key) for key in containers)
        self.nested: dict[tuple[Shape, ...], Shape] = {}
        self.flat: dict[tuple[Any, ...], Shape] = {}
        self.shape = shapes.intern(self.base) if not containers else None


def _layouts(objects: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each object's layout: its keys, then the types of its values, in one tuple."""
    return [(*value, *map(type, value.values())) for value in objects]


def _list_layout(value: list[Any]) -> Any:
    """What tells a list's shape when it holds no array and only objects without objects or
    arrays: its items' layouts, or the set of its items' types."""
    if value and type(value[0]) is dict:
        try:
            return tuple(_layouts(value))
        except (AttributeError, TypeError):  # not every item is an object
            return None
    return frozenset(map(type, value))


class Shapes:
    """Finds the `Shape` of decoded JSON values, caching by layout (keys and value types): an
    object of a known layout costs one tuple (its keys, then its values' types) and a dictionary
    lookup, and so does each object or array in it."""

    def __init__(self) -> None:
        self._interned: dict[frozenset[tuple[str, str]], Shape] = {}
        self._objects: dict[tuple[Any, ...], _Entry] = {}
        self._opaque: dict[tuple[Any, ...], _Entry] = {}
        self._lists: dict[Any, Shape] = {}
        self._scalars = {kind: self.intern(frozenset({("", name)})) for kind, name in JSON_TYPES.items()}
        self._empty = self.intern(frozenset({("", "array")}))

    def intern(self, pairs: frozenset[tuple[str, str]]) -> Shape:
        found = self._interned.get(pairs)
        if found is None:
            found = self._interned[pairs] = Shape(pairs)
        return found

    def of(self, value: Any) -> Shape:
        """The shape of a decoded JSON value."""
        kind = type(value)
        if kind is dict:
            return self.objects([value])[0]
        if kind is list:
            return self._list(value)
        found = self._scalars.get(kind)
        if found is None:
            found = self._scalars[kind] = self.intern(frozenset({("", JSON_TYPES.get(kind, kind.__name__))}))
        return found

    def objects(self, values: list[dict[str, Any]], opaque: str | None = None) -> list[Shape]:
        """The shapes of JSON objects; the list under key `opaque` (an invoice's lines) counts as
        an array without looking inside. Objects of known layouts cost no Python code each;
        objects holding objects or arrays are looked up by layout in groups of one layout."""
        cache = self._objects if opaque is None else self._opaque
        layouts = _layouts(values)
        known = list(map(cache.get, layouts))
        if None in known:
            for position, entry in enumerate(known):
                if entry is None:
                    if len(cache) >= MAX_CACHED:
                        self._objects.clear()
                        self._opaque.clear()
                        self._lists.clear()
                    layout = layouts[position]
                    known[position] = cache.get(layout) or cache.setdefault(layout, _Entry(layout, opaque, self))
        entries = cast(list[_Entry], known)
        shapes: list[Any] = list(map(_SHAPE, entries))
        if None not in shapes:
            return shapes
        # Objects holding objects or arrays: grouped by which of their keys hold them, each such
        # key's values read as a column, and each object's shape looked up by their layouts.
        groups: dict[tuple[Any, ...], list[int]] = {}
        for position, entry in enumerate(entries):
            if entry.shape is None:
                found = groups.get(entry.kind)
                if found is None:
                    groups[entry.kind] = [position]
                else:
                    found.append(position)
        for (containers, lists), positions in groups.items():
            group = values if len(positions) == len(values) else [values[position] for position in positions]
            columns = []
            for key, is_list in zip(containers, lists, strict=True):
                children = list(map(itemgetter(key), group))
                columns.append(list(map(_list_layout, children)) if is_list else _layouts(children))
            for position, value, layout in zip(positions, group, zip(*columns, strict=True), strict=True):
                entry = entries[position]
                shape = entry.flat.get(layout)
                shapes[position] = shape if shape is not None else self._nested(entry, value)
        return cast(list[Shape], shapes)

    def _nested(self, entry: _Entry, value: dict[str, Any]) -> Shape:
        """The shape of an object holding objects or arrays."""
        children = list(map(value.__getitem__, entry.containers))
        layout = tuple(
            [(*child, *map(type, child.values())) if type(child) is dict else _list_layout(child) for child in children]
        )
        found = entry.flat.get(layout)
        if found is not None:
            return found
        shapes = tuple(map(self.of, children))
        found = entry.nested.get(shapes)
        if found is None:
            pairs = set(entry.base)
            for prefix, child in zip(entry.segments, shapes, strict=True):
                pairs.update((prefix + path, kind) for path, kind in child.pairs)
            found = entry.nested[shapes] = self.intern(frozenset(pairs))
        if all(map(self._flat, children)):
            entry.flat[layout] = found
        return found

    def _flat(self, value: Any) -> bool:
        """Whether its layout alone tells the shape of an object or array (its shape known)."""
        if type(value) is dict:
            entry = self._objects.get((*value, *map(type, value.values())))
            return entry is not None and entry.shape is not None
        kinds = frozenset(map(type, value))
        if list in kinds:
            return False
        return dict not in kinds or (kinds == _OBJECTS and all(map(self._flat, value)))

    def _list(self, value: list[Any]) -> Shape:
        """The shape of an array: the union of its items' shapes under `[]`."""
        if not value:
            return self._empty
        layout = _list_layout(value)
        if layout is not None:
            found = self._lists.get(layout)
            if found is not None:
                return found
        kinds = frozenset(map(type, value))
        key: Any = kinds
        if kinds == _OBJECTS:
            key = frozenset(self.objects(value))
        elif dict in kinds or list in kinds:
            key = frozenset([self.of(item) for item in value])
        found = self._lists.get(key)
        if found is None:
            pairs = {("", "array")}
            if key is kinds:
                pairs.update(("[]", JSON_TYPES.get(kind, kind.__name__)) for kind in kinds)
            else:
                pairs.update(("[]" + path, kind) for child in key for path, kind in child.pairs)
            found = self._lists[key] = self.intern(frozenset(pairs))
        if layout is not None and self._flat(value):
            self._lists[layout] = found  # a list of these very layouts has this shape
        return found


_OBJECTS = frozenset({dict})
_SHAPE = attrgetter("shape")


# --- one run's observation ---------------------------------------------------------------------


class Observer:
    """What one account's run stores, per record type: how many records of each shape (and one
    record of each), turned into per-path counts by `keep` and compared by `compare`.

    Args:
        lines: the invoice's field that lists its lines (`Mappers.lines`).
    """

    def __init__(self, lines: str) -> None:
        self.lines = lines
        self.shapes = Shapes()
        self.counts: dict[str, Counter[Shape]] = {t: Counter() for t in RECORD_TYPES}
        self.examples: dict[str, dict[Shape, str]] = {t: {} for t in RECORD_TYPES}
        self.prefixes = {INVOICE: "$", CLIENT: "$", LINE: lines_prefix(lines)}

    def invoices(self, records: Iterable[Record]) -> None:
        """Note invoice records the run stores (a page's), and their lines."""
        kept = [(record, value) for record in records if type(value := record.value) is dict]
        if not kept:
            return
        values = [value for _, value in kept]
        self._count(INVOICE, self.shapes.objects(values, self.lines), [record for record, _ in kept])
        field = self.lines
        items: list[Any] = []
        ends: list[int] = []  # where each invoice's lines end in `items`
        for value in values:
            found = value.get(field)
            if type(found) is list:
                items.extend(found)
            ends.append(len(items))
        if not items:
            return
        if all(type(item) is dict for item in items):
            shapes = self.shapes.objects(items)
        else:
            shapes = [self.shapes.of(item) for item in items]
        counts, examples = self.counts[LINE], self.examples[LINE]
        for shape, position in _firsts(shapes, counts).items():
            owner = bisect_right(ends, position)
            number = position - (ends[owner - 1] if owner else 0) + 1
            examples[shape] = f"{kept[owner][0].key} line {number}"
        _add(counts, shapes)

    def clients(self, records: Iterable[Record]) -> None:
        """Note client records the run stores."""
        kept = [(record, value) for record in records if type(value := record.value) is dict]
        if kept:
            self._count(CLIENT, self.shapes.objects([v for _, v in kept]), [r for r, _ in kept])

    def _count(self, record_type: str, shapes: list[Shape], records: list[Record]) -> None:
        counts, examples = self.counts[record_type], self.examples[record_type]
        for shape, position in _firsts(shapes, counts).items():
            examples[shape] = records[position].key
        _add(counts, shapes)

    def keep(self, state: MutableMapping[str, Any]) -> None:
        """Add what was noted since the last call to the run's observation in the account's
        `state` (committed with the rows it describes), and start counting afresh."""
        structure = state.setdefault(STATE_KEY, {})
        run = structure.setdefault("run", {})
        for record_type in RECORD_TYPES:
            counts = self.counts[record_type]
            if not counts:
                continue
            seen = run.setdefault(record_type, {"records": 0, "paths": {}, "example": None})
            paths: dict[str, list[Any]] = seen["paths"]
            prefix, examples = self.prefixes[record_type], self.examples[record_type]
            for shape, count in counts.items():
                seen["records"] += count
                example = examples[shape]
                if seen["example"] is None:
                    seen["example"] = example
                for relative, kind in shape.pairs:
                    path = prefix + relative
                    if path == "$":
                        continue
                    entry = paths.get(path)
                    if entry is None:
                        entry = paths[path] = [0, {}]
                    entry[1].setdefault(kind, example)
                for relative in shape.paths:
                    path = prefix + relative
                    if path != "$":
                        paths[path][0] += count
            self.counts[record_type], self.examples[record_type] = Counter(), {}

    def compare(
        self, state: MutableMapping[str, Any], provider: str, account: str, run_id: str
    ) -> list[dict[str, Any]]:
        """Compare the run's observation (everything `keep` added, and what is noted since) with
        the baseline in `state`, move the baseline on and forget the observation; returns the
        `schema_changes` rows of what changed."""
        self.keep(state)
        structure = state.setdefault(STATE_KEY, {})
        run = structure.pop("run", {})
        rows: list[dict[str, Any]] = []
        keys = {"provider": provider, "account": account, "first_seen_run": run_id}
        for record_type in RECORD_TYPES:
            observed = run.get(record_type)
            if not observed or not observed["records"]:
                continue
            for change in _compare(structure, record_type, observed, f"{provider} [{account}]"):
                rows.append({**keys, "record_type": record_type, **change})
        return rows


def _firsts(shapes: list[Shape], counts: Counter[Shape]) -> dict[Shape, int]:
    """The position of the first of each shape not counted yet."""
    new = set(shapes).difference(counts)
    found: dict[Shape, int] = {}
    if new:
        for position, shape in enumerate(shapes):
            if shape in new and shape not in found:
                found[shape] = position
    return found


def _add(counts: Counter[Shape], shapes: list[Shape]) -> None:
    counts.update(shapes)  # counted in C


def _joined(types: Iterable[str]) -> str:
    return "|".join(sorted(types))


def _compare(
    structure: MutableMapping[str, Any], record_type: str, observed: Mapping[str, Any], who: str
) -> list[dict[str, Any]]:
    """The changes of one record type, the baseline moved on in `structure`."""
    seen: dict[str, list[str]] | None = structure.setdefault("seen", {}).get(record_type)
    records, paths, example = observed["records"], observed["paths"], observed["example"]
    if seen is None:  # the first observation: the baseline
        kept = sorted(paths)[:MAX_PATHS]
        structure["seen"][record_type] = {p: sorted(paths[p][1]) for p in kept}
        structure.setdefault("always", {})[record_type] = sorted(p for p in kept if paths[p][0] == records)
        structure.setdefault("gone", {})[record_type] = []
        return []
    always = set(structure.setdefault("always", {}).get(record_type, []))
    gone = set(structure.setdefault("gone", {}).get(record_type, []))
    changes: list[dict[str, Any]] = []
    dropped = 0
    for path in sorted(paths):
        count, kinds = paths[path]
        before = seen.get(path)
        if before is None or path in gone:
            if before is None and len(seen) >= MAX_PATHS:
                dropped += 1
                continue
            changes.append(_row(path, ADDED, None, kinds, next(iter(kinds.values()))))
            seen[path] = sorted(set(before or ()) | set(kinds))
            gone.discard(path)
            if count == records:
                always.add(path)
            continue
        new = [k for k in kinds if k not in before]
        if new:
            changes.append(_row(path, TYPE_CHANGED, before, kinds, kinds[sorted(new)[0]]))
            seen[path] = sorted(set(before) | set(kinds))
        if count < records:
            always.discard(path)
    for path in sorted(always - set(paths)):
        changes.append(_row(path, VANISHED, seen[path], None, example))
        always.discard(path)
        gone.add(path)
    if dropped:
        log.warning("%s: %d new %s path(s) beyond %d were not compared", who, dropped, record_type, MAX_PATHS)
    structure["always"][record_type] = sorted(always)
    structure["gone"][record_type] = sorted(gone)
    return changes


def _row(path: str, change: str, before: Iterable[str] | None, after: Iterable[str] | None, example: Any) -> dict:
    return {
        "path": path,
        "change": change,
        "type_before": _joined(before) if before is not None else None,
        "type_after": _joined(after) if after is not None else None,
        "example_key": example,
    }


# --- rows and the run id -----------------------------------------------------------------------

COLUMNS: tuple[str, ...] = (
    "provider",
    "account",
    "record_type",
    "path",
    "change",
    "type_before",
    "type_after",
    "first_seen_run",
    "example_key",
)
PRIMARY_KEY = ("provider", "account", "record_type", "path", "change", "first_seen_run")
ARROW_SCHEMA = pa.schema([pa.field(name, pa.string(), nullable=name not in PRIMARY_KEY) for name in COLUMNS])


def table_hints() -> Any:
    """dlt hints of `schema_changes`: text columns, its key, merged (a package loaded twice
    writes its rows once)."""
    from dlt.extract.hints import make_hints

    columns: Any = {name: {"data_type": "text", "nullable": name not in PRIMARY_KEY} for name in COLUMNS}
    disposition: Any = {"disposition": "merge", "strategy": "delete-insert"}
    return make_hints(
        table_name=SCHEMA_CHANGES, write_disposition=disposition, columns=columns, primary_key=list(PRIMARY_KEY)
    )


def to_arrow(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist([{name: row.get(name) for name in COLUMNS} for row in rows], schema=ARROW_SCHEMA)


def schema_changes(rows: list[dict[str, Any]]) -> Iterator[Any]:
    """The `schema_changes` rows of an account's run for its dlt resource, in the load package
    that commits the run's rows and the baseline in its state."""
    if rows:
        import dlt

        yield dlt.mark.with_hints(to_arrow(rows), table_hints(), create_table_variant=True)


_run_id: str | None = None


def new_run_id() -> str:
    """A sortable, unique run id: `20250101T020000Z-1a2b3c` (as `pipelines.run.new_run_id`)."""
    return dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


def begin_run(run_id: str | None) -> None:
    """The run id the next accounts' changes are first seen by (`pipeline_runs.run_id`)."""
    global _run_id
    _run_id = run_id


def current_run_id() -> str:
    """The run id given to `begin_run`, or a new one (a run outside the command line)."""
    return _run_id or new_run_id()
