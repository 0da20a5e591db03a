"""What the page-mapper tests (tests/<provider>/test_page.py) share: the comparison of a
provider's vectorised page mapper with its record mapper, row for row, and amounts that test the
"fits DECIMAL(18, 6) exactly" rule at its edges, for every money field a provider sends."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sources.shared.declaration import Api, Context
from sources.shared.driver import RecordWriter
from sources.shared.model import TableWriter
from sources.shared.stats import RunStats
from sources.shared.values import dumps

# Amounts past DECIMAL(18, 6) or at its edges, each of which the record mapper reads or refuses
# on its own: the page mapper must give the same row or leave the record to it, never round.
UNTIDY_AMOUNTS: tuple[Any, ...] = (
    Decimal("1E-600000"),  # tiny and non-zero: it rounds to 0 at six decimals, so it is refused
    Decimal("1E-7"),
    Decimal("-0E-12"),  # zero, written with twelve decimals: fits
    Decimal("1E+20"),
    Decimal("0E+30"),
    "12345678901.123456",
    "0.0000001",
)


def record_by_record(api: Api) -> Api:
    """`api` without its vectorised page mapper: every record through the record mapper."""
    return dataclasses.replace(api, mapping=dataclasses.replace(api.mapping, invoice_arrow=None))


def tables(items: list[Any]) -> dict[str, list[dict[str, Any]]]:
    """The rows a writer yielded, per table, in a stable order."""
    found: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        meta = item.meta
        name = getattr(meta, "table_name", None) or meta.hints["table_name"]
        found.setdefault(name, []).extend(item.data.to_pylist())
    return {name: sorted(rows, key=dumps) for name, rows in found.items()}


def through(
    api: Api, pages: Sequence[tuple[list[Any], Context]], first_load: bool = False
) -> tuple[dict[str, Any], RunStats, RecordWriter]:
    """The rows `api`'s mappers write for `pages` (each page's records with its context), the
    run's stats and the writer (what it mapped, what it kept unmapped)."""
    stats = RunStats(api.provider, "acme")
    writer = TableWriter(batch_rows=500, first_load=(lambda: True) if first_load else None)
    records = RecordWriter(api, writer, stats)
    out: list[Any] = []
    for records_of_page, context in pages:
        out += records.write(copy.deepcopy(records_of_page), context)
    out += records.flush()
    return tables(out), stats, records


def assert_same(api: Api, pages: Sequence[tuple[list[Any], Context]], first_load: bool = False) -> dict[str, Any]:
    """`api` writes for `pages` exactly the rows, figures and refusals its record mapper writes
    alone; returns the rows."""
    expected, expected_stats, reference = through(record_by_record(api), pages, first_load)
    got, stats, vectorised = through(api, pages, first_load)
    assert got.keys() == expected.keys()
    for name in expected:
        assert len(got[name]) == len(expected[name]), name
        for mine, theirs in zip(got[name], expected[name], strict=True):
            assert mine == theirs, name
    for figure in ("invoices", "lines", "mismatches"):
        assert getattr(stats, figure) == getattr(expected_stats, figure), figure
    assert stats.skipped == expected_stats.skipped
    assert vectorised.failed == reference.failed
    assert vectorised.mapped == reference.mapped
    return got


# What a page's array may hold instead of an object.
NOT_OBJECTS: tuple[Any, ...] = ([1, 2], [], [{"id": "inside a list"}], "an invoice", "", 5, Decimal("1.5"), True, None)


def assert_not_objects_are_reported(api: Api, good: list[Any], context: Context) -> None:
    """Records that are not JSON objects, among `good` ones on a page, are each refused as
    `not a JSON object` and kept unmapped (`RecordWriter.failed`) on both paths, record by record
    and a page at a time; the good ones are written as ever."""
    mixed: list[Any] = [*NOT_OBJECTS]
    for n, record in enumerate(good):
        mixed.insert(2 * n + 1, record)
    for pages in ([(mixed, context)], [([record], context) for record in mixed]):
        got = assert_same(api, pages)
        for each in (api, record_by_record(api)):
            _, stats, writer = through(each, pages)
            assert sorted(dumps(record) for _, record in writer.failed.values()) == sorted(map(dumps, NOT_OBJECTS))
            assert {reason for reason, _ in writer.failed.values()} == {"not a JSON object"}
            assert stats.skipped == {"invoice not mapped: not a JSON object": len(NOT_OBJECTS)}
        assert {row["invoice_id"] for row in got["invoices"]} == {str(record["id"]) for record in good}


def assert_remap_gets_each_record_s_rows(reference: Api, api: Api, records: Sequence[Any], context: Context) -> int:
    """What remap's writer receives from `records` (`pipelines.remap.ArrowCollector`, with
    `RecordWriter.order` telling which record each row came from) is the same through `api`'s page
    mapper as through `reference`'s record mapper: each record with its invoice row and its lines,
    and the same failures. Returns how many records were written."""
    from pipelines.remap import ArrowCollector

    got = []
    for one in (reference, api):
        collector = ArrowCollector()
        writer = RecordWriter(one, collector, RunStats(one.provider, "acme"))
        writer.order = []
        for _ in writer.write(copy.deepcopy(list(records)), context):
            pass
        invoices, items = collector.tables()
        lines: dict[Any, list[dict[str, Any]]] = {}
        for item in items.to_pylist():
            lines.setdefault(item["invoice_id"], []).append(item)
        rows = [
            (str(key), dumps(invoice), dumps(sorted(lines.get(invoice["invoice_id"], []), key=dumps)))
            for key, invoice in zip(writer.order, invoices.to_pylist(), strict=True)
        ]
        got.append((sorted(rows), writer.failed))
    assert got[0] == got[1]
    return len(got[0][0])
