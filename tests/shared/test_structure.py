"""The structure of stored payloads (sources/shared/structure.py): each record's paths and JSON
types, found through the shape cache exactly as by walking the record; per run, each path's count
of records and its types, kept in a small state; and the changes a run records against earlier
runs, once each."""

from __future__ import annotations

import json
import random
from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from sources.shared.records import Record
from sources.shared.structure import (
    ADDED,
    LINE,
    MAX_PATHS,
    TYPE_CHANGED,
    VANISHED,
    Observer,
    Shapes,
    segment,
)
from sources.shared.values import dumps


def walked(value: Any, path: str = "") -> set[tuple[str, str]]:
    """The (path, type) pairs of a value, found by walking it: what the cache must agree with."""
    kinds = {dict: "object", list: "array", str: "string", bool: "boolean", type(None): "null"}
    kind = kinds.get(type(value), "number")
    pairs = {(path, kind)}
    if type(value) is dict:
        for key, child in value.items():
            pairs |= walked(child, path + segment(key))
    elif type(value) is list:
        for child in value:
            pairs |= walked(child, path + "[]")
    return pairs


def containers(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from(["a", "b", "c", "odd key", 'q"k'])
    return st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4)


scalars = (
    st.none() | st.booleans() | st.integers() | st.decimals(allow_nan=False, allow_infinity=False) | st.text(max_size=3)
)
json_values = st.recursive(scalars, containers, max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(st.lists(json_values, min_size=1, max_size=8))
def test_the_cached_shape_of_any_value_is_what_walking_it_finds(values: list[Any]) -> None:
    shapes = Shapes()
    for _ in range(2):  # the second pass answers from the cache
        for value in values:
            assert shapes.of(value).pairs == walked(value)
        objects = [v for v in values if type(v) is dict]
        assert [s.pairs for s in shapes.objects(objects)] == [walked(v) for v in objects]


def test_paths_name_odd_keys_in_brackets() -> None:
    pairs = Shapes().of({"a.b": 1, 'say "x"': [None], "plain_1": {"z": True}}).pairs
    assert pairs == {
        ("", "object"),
        ('["a.b"]', "number"),
        ('["say \\"x\\""]', "array"),
        ('["say \\"x\\""][]', "null"),
        (".plain_1", "object"),
        (".plain_1.z", "boolean"),
    }


def invoice(number: int, **changes: Any) -> Record:
    value: dict[str, Any] = {
        "id": number,
        "total": Decimal("10.50"),
        "note": None if number % 2 else "hi",
        "client": {"id": 7, "name": "Ana"},
        "items": [{"qty": "1", "tax": {"value": 23}}, {"qty": "2", "tax": {"value": 6}}],
    }
    value.update(changes)
    for key in [k for k, v in changes.items() if v is DROP]:
        del value[key]
    return Record(dumps(value))


DROP: Any = object()


def run(state: dict[str, Any], records: list[Record], run_id: str, pages: int = 1) -> list[dict[str, Any]]:
    """One account's run storing `records` (in `pages` pages), its changes compared at its end."""
    observer = Observer("items")
    size = max(1, len(records) // pages)
    for start in range(0, len(records), size):
        observer.invoices(records[start : start + size])
    return observer.compare(state, "kitchen", "acme", run_id)


def changes(rows: list[dict[str, Any]]) -> set[tuple[str, str, str, Any, Any]]:
    return {(r["record_type"], r["path"], r["change"], r["type_before"], r["type_after"]) for r in rows}


def test_a_run_notes_each_path_its_count_of_records_and_types() -> None:
    observer = Observer("items")
    records = [invoice(n) for n in range(1, 6)] + [invoice(6, extra=[1, "x"])]
    observer.invoices(records[:3])
    state: dict[str, Any] = {}
    observer.keep(state)  # a batch committed: its observation is in the state
    observer.invoices(records[3:])
    observer.keep(state)
    seen = state["structure"]["run"]
    assert seen["invoice"]["records"] == 6 and seen["line"]["records"] == 12
    paths = seen["invoice"]["paths"]
    assert paths["$.note"][0] == 6 and set(paths["$.note"][1]) == {"null", "string"}
    assert paths["$.extra"][0] == 1 and set(paths["$.extra"][1]) == {"array"}
    assert set(paths["$.extra[]"][1]) == {"number", "string"} and paths["$.extra[]"][1]["string"] == "6"
    assert "$.items[].qty" not in paths and set(paths["$.items"][1]) == {"array"}  # lines are their own records
    line_paths = seen["line"]["paths"]
    assert line_paths["$.items[].tax.value"][0] == 12 and line_paths["$.items[]"][1] == {"object": "1 line 1"}
    assert len(json.dumps(state)) < 3_000  # small: per path, not per record


def test_the_first_run_sets_the_baseline_and_records_nothing() -> None:
    state: dict[str, Any] = {}
    assert run(state, [invoice(n) for n in range(1, 5)], "r1") == []
    baseline = state["structure"]
    assert "run" not in baseline
    assert "$.client.name" in baseline["always"]["invoice"] and "$.note" in baseline["always"]["invoice"]
    assert baseline["seen"]["invoice"]["$.note"] == ["null", "string"]
    assert "$.items[].tax.value" in baseline["always"][LINE]


def test_added_vanished_and_type_changed_are_recorded_once_by_the_run_that_first_saw_them() -> None:
    state: dict[str, Any] = {}
    run(state, [invoice(n) for n in range(1, 5)], "r1")
    second = [invoice(n, client={"id": "7"}, new={"x": 1}, total=DROP) for n in range(1, 5)]
    rows = run(state, second, "r2", pages=2)
    assert changes(rows) == {
        ("invoice", "$.new", ADDED, None, "object"),
        ("invoice", "$.new.x", ADDED, None, "number"),
        ("invoice", "$.client.id", TYPE_CHANGED, "number", "string"),
        ("invoice", "$.client.name", VANISHED, "string", None),
        ("invoice", "$.total", VANISHED, "number", None),
    }
    assert {r["first_seen_run"] for r in rows} == {"r2"} and all(r["example_key"] for r in rows)
    assert run(state, second, "r3") == []  # the same payloads again: nothing new
    back = [invoice(n, client={"id": 7, "name": "Ana"}) for n in range(1, 3)]
    assert changes(run(state, back, "r4")) == {
        ("invoice", "$.client.name", ADDED, None, "string"),  # back again
        ("invoice", "$.total", ADDED, None, "number"),
        ("invoice", "$.new", VANISHED, "object", None),
        ("invoice", "$.new.x", VANISHED, "number", None),
    }


def test_a_path_not_in_every_record_never_vanishes_and_a_run_that_stores_nothing_compares_nothing() -> None:
    state: dict[str, Any] = {}
    run(state, [invoice(n, rare=1) if n == 1 else invoice(n) for n in range(1, 5)], "r1")
    assert run(state, [invoice(n) for n in range(5, 9)], "r2") == []  # `rare` was never in every record
    assert run(state, [], "r3") == []
    observer = Observer("items")
    observer.invoices([invoice(1, items=[])])  # an invoice without lines: no line to compare
    assert changes(observer.compare(state, "kitchen", "acme", "r4")) == set()


def test_lines_vanish_and_change_as_records_of_their_own() -> None:
    state: dict[str, Any] = {}
    run(state, [invoice(n) for n in range(1, 4)], "r1")
    rows = run(state, [invoice(n, items=[{"qty": 1, "tax": None}]) for n in range(1, 4)], "r2")
    assert changes(rows) == {
        (LINE, "$.items[].qty", TYPE_CHANGED, "string", "number"),
        (LINE, "$.items[].tax", TYPE_CHANGED, "object", "null"),
        (LINE, "$.items[].tax.value", VANISHED, "number", None),
    }
    [vanished] = [r for r in rows if r["change"] == VANISHED]
    assert vanished["example_key"] == "1 line 1"


def test_clients_are_compared_apart_from_invoices() -> None:
    state: dict[str, Any] = {}
    for run_id, records in (("r1", [{"id": 1, "email": "a@b"}]), ("r2", [{"id": 2}])):
        observer = Observer("items")
        observer.clients([Record(dumps(r)) for r in records])
        rows = observer.compare(state, "kitchen", "acme", run_id)
    assert changes(rows) == {("client", "$.email", VANISHED, "string", None)}


def test_paths_beyond_the_limit_are_not_kept() -> None:
    state: dict[str, Any] = {}
    run(state, [invoice(1)], "r1")
    wide = [invoice(2, **{f"k{n}": n for n in range(MAX_PATHS + 50)})]
    rows = run(state, wide, "r2")
    assert len(state["structure"]["seen"]["invoice"]) == MAX_PATHS
    assert MAX_PATHS - 20 < len(rows) <= MAX_PATHS


def test_many_shapes_in_random_order_give_the_counts_of_walking_them() -> None:
    rng = random.Random(7)
    records = []
    for n in range(400):
        value: dict[str, Any] = {"id": n}
        for key in ("a", "b", "c"):
            if rng.random() < 0.7:
                value[key] = rng.choice([None, 1, "x", {"d": rng.choice([1, None])}, [rng.choice([1, "y"])]])
        count = rng.randint(0, 3)
        value["items"] = [{"q": rng.choice([1, None]), "t": rng.choice([{}, {"v": 1}])} for _ in range(count)]
        records.append(value)
    observer = Observer("items")
    for start in range(0, 400, 37):
        observer.invoices([Record(dumps(v)) for v in records[start : start + 37]])
    state: dict[str, Any] = {}
    observer.keep(state)
    seen = state["structure"]["run"]
    expected: dict[str, list[Any]] = {}
    for value in records:
        top = {k: v for k, v in value.items() if k != "items"}
        pairs = walked(top, "$") | {("$.items", "array")}
        for path in {p for p, _ in pairs} - {"$"}:
            expected.setdefault(path, [0, set()])[0] += 1
        for path, kind in pairs - {("$", "object")}:
            expected[path][1].add(kind)
    assert {p: [c, set(k)] for p, (c, k) in seen["invoice"]["paths"].items()} == expected
    lines = [line for value in records for line in value["items"]]
    assert seen["line"]["records"] == len(lines)
    by_line: dict[str, list[Any]] = {}
    for line in lines:
        for path, kind in walked(line, "$.items[]"):
            by_line.setdefault(path, [0, set()])[1].add(kind)
        for path in {p for p, _ in walked(line, "$.items[]")}:
            by_line[path][0] += 1
    assert {p: [c, set(k)] for p, (c, k) in seen["line"]["paths"].items()} == by_line


def test_the_cost_benchmark_runs() -> None:
    from benchmarks.structure import kitchen_pages, measure

    figures = measure("kitchen", kitchen_pages(60))
    assert figures["invoices"] == 60 and 0 < figures["observe warm"] < figures["write + observe"]
