import logging
from decimal import Decimal

import dlt
import pytest

from sources.shared.model import (
    CLIENTS,
    INVOICE_ITEMS,
    INVOICES,
    TOMBSTONE,
    MappedInvoice,
    TableWriter,
    arrow_schema,
    column_names,
    contract_rules,
    dlt_columns,
    to_columns,
)

CONTRACT_INVOICE_COLUMNS = [
    "provider",
    "account",
    "invoice_id",
    "client_id",
    "client_name",
    "number",
    "document_type",
    "status",
    "provider_status",
    "is_archived",
    "issue_date",
    "due_date",
    "currency",
    "subtotal",
    "discount_total",
    "tax_total",
    "withholding_total",
    "shipping_total",
    "total",
    "balance_due",
    "created_at",
    "updated_at",
    "paid_at",
    "voided_at",
    "reference",
    "notes",
    "deleted_at",
    "raw",
    "_mapping_inputs",
]
CONTRACT_ITEM_COLUMNS = [
    "provider",
    "account",
    "invoice_id",
    "line_number",
    "item_id",
    "name",
    "description",
    "quantity",
    "unit",
    "unit_price",
    "discount_amount",
    "tax_rate",
    "tax_amount",
    "subtotal",
    "total",
    "raw",
]
CONTRACT_CLIENT_COLUMNS = [
    "provider",
    "account",
    "client_id",
    "name",
    "email",
    "country",
    "tax_id",
    "created_at",
    "updated_at",
    "deleted_at",
    "raw",
    "_mapping_inputs",
]


def test_columns_follow_the_contract():
    assert column_names(INVOICES) == CONTRACT_INVOICE_COLUMNS
    assert column_names(INVOICE_ITEMS)[:-1] == CONTRACT_ITEM_COLUMNS
    assert column_names(CLIENTS) == CONTRACT_CLIENT_COLUMNS


@pytest.mark.parametrize("table", [INVOICES, INVOICE_ITEMS, CLIENTS])
def test_declared_hints_agree_with_the_arrow_schema(table):
    schema = arrow_schema(table)
    for name, column in dlt_columns(table).items():
        assert schema.field(name).nullable == column["nullable"]


def invoice(invoice_id: str, lines: int) -> MappedInvoice:
    base = {"provider": "p", "account": "a", "invoice_id": invoice_id}
    row = {**base, "total": Decimal("10.00"), "currency": "EUR", "status": "open", "raw": "{}"}
    items = [{**base, "line_number": n, "total": Decimal("5.00"), "raw": "{}"} for n in range(1, lines + 1)]
    return MappedInvoice(row, items)


def run(pipeline, *mapped: MappedInvoice):
    @dlt.resource(name="p_billing")
    def billing():
        writer = TableWriter(batch_rows=2)
        for m in mapped:
            writer.add_invoices([m])
            yield from writer.ready()
        yield from writer.flush()

    pipeline.run(billing(), loader_file_format="parquet")


class Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_lines_are_replaced_and_an_invoice_that_lost_every_line_keeps_none(tmp_path):
    pipeline = dlt.pipeline(
        "model_test",
        destination=dlt.destinations.duckdb(str(tmp_path / "m.duckdb")),
        dataset_name="billing",
        pipelines_dir=str(tmp_path / "p"),
    )
    dlt_logger, collect = logging.getLogger("dlt"), Collect()
    level = dlt_logger.level
    dlt_logger.addHandler(collect)
    dlt_logger.setLevel(logging.INFO)
    try:
        run(pipeline, invoice("1", 3), invoice("2", 2), invoice("3", 1))
        run(pipeline, invoice("1", 2), invoice("2", 0))
    finally:
        dlt_logger.removeHandler(collect)
        dlt_logger.setLevel(level)
    with pipeline.sql_client() as client:
        rows = client.execute_sql("SELECT invoice_id, line_number FROM invoice_items ORDER BY 1, 2")
        tombstones = client.execute_sql("SELECT count(*) FROM invoice_items WHERE _tombstone")
        decimals = client.execute_sql("SELECT sum(total) FROM invoices")
    assert rows is not None and tombstones is not None and decimals is not None
    assert [tuple(r) for r in rows] == [("1", 1), ("1", 2), ("3", 1)]
    assert tombstones[0][0] == 0
    assert decimals[0][0] == Decimal("30.00")
    # The only hints that differ from the Arrow schema are the JSON columns, carried as text.
    overrides = [m for m in collect.messages if "will overwrite arrow hint" in m]
    assert overrides and all(
        "on column raw. The hint data_type value json" in m or "on column _mapping_inputs. The hint data_type" in m
        for m in overrides
    )


# --- the contract's rules for every provider (docs/canonical-model.md) ------------------------


def _invoice(**changes):
    row = {
        "provider": "p",
        "account": "a",
        "invoice_id": "1",
        "status": "open",
        "total": Decimal("10.00"),
        "balance_due": Decimal("10.00"),
        "notes": "",
        "reference": "R-1",
        "raw": '{"notes": ""}',
    }
    row.update(changes)
    return row


def _rules(table, row):
    """`contract_rules` on one row, read back as a dict of the columns it was given."""
    data, refused = to_columns(table, [row])
    assert not refused
    return {k: v for k, v in contract_rules(table, data).to_pylist()[0].items() if k in row}


def test_empty_text_is_stored_as_null_in_every_table_but_keys_and_raw_stay():
    row = _rules(INVOICES, _invoice(client_name="", number=""))
    assert row["notes"] is None and row["client_name"] is None and row["number"] is None
    assert row["reference"] == "R-1" and row["raw"] == '{"notes": ""}'
    item = _rules(INVOICE_ITEMS, {"invoice_id": "", "line_number": 1, "description": "", "unit": ""})
    assert item == {"invoice_id": "", "line_number": 1, "description": None, "unit": None}
    client = _rules(CLIENTS, {"client_id": "7", "email": "", "tax_id": " ", "country": ""})
    assert client == {"client_id": "7", "email": None, "tax_id": " ", "country": None}


@pytest.mark.parametrize(
    ("status", "balance", "expected"),
    [
        ("draft", Decimal("10.00"), None),  # the total, as two providers report it
        ("draft", None, None),
        ("void", Decimal("10.00"), Decimal(0)),
        ("void", None, Decimal(0)),
        ("open", Decimal("10.00"), Decimal("10.00")),
        ("paid", Decimal(0), Decimal(0)),
        ("open", None, None),  # unknown stays unknown: nothing invented
    ],
)
def test_balance_due_is_null_for_drafts_and_zero_for_void(status, balance, expected):
    row = _rules(INVOICES, _invoice(status=status, balance_due=balance, notes="n"))
    assert row["balance_due"] == expected and (row["balance_due"] is None) == (expected is None)


def test_the_writer_applies_the_rules_before_arrow():
    writer = TableWriter()
    draft = _invoice(invoice_id="2", status="draft", number="")
    mapped = MappedInvoice(draft, [{"provider": "p", "account": "a", "invoice_id": "2", "line_number": 1, "name": ""}])
    writer.add_invoices([mapped])
    invoices, items = (item.data for item in writer.flush())  # dlt's marked Arrow tables
    assert invoices.column("balance_due").to_pylist() == [None]
    assert invoices.column("number").to_pylist() == [None] and invoices.column("notes").to_pylist() == [None]
    assert items.column("name").to_pylist() == [None]


def test_an_appending_extract_drops_tombstones_and_keeps_the_first_rows_of_a_key():
    asked: list[bool] = []

    def first_load() -> bool:
        asked.append(True)
        return True

    writer = TableWriter(first_load=first_load)
    writer.add_invoices([invoice("1", 2)])
    writer.add_invoices([invoice("2", 0)])  # no lines: a merge would send a tombstone
    writer.add_invoices([invoice("1", 3)])  # the same key again in the extract: left out
    writer.add_unmapped({"provider": "p", "account": "a", "record_type": "invoice", "record_key": "k"})
    writer.add_unmapped({"provider": "p", "account": "a", "record_type": "invoice", "record_key": "x", TOMBSTONE: True})
    invoices, items, unmapped = list(writer.flush())
    assert asked == [True]  # asked once per extract
    assert invoices.data.column("invoice_id").to_pylist() == ["1", "2"]
    assert items.data.column("line_number").to_pylist() == [1, 2]
    assert unmapped.data.column("record_key").to_pylist() == ["k"]
    assert invoices.meta.hints["write_disposition"] == "append"

    writer.new_extract()  # the next extract asks again, and merges when the account holds rows
    writer.first_load = lambda: False
    writer.add_invoices([invoice("2", 0)])
    invoices, items = list(writer.flush())
    assert items.data.column(TOMBSTONE).to_pylist() == [True]
    assert invoices.meta.hints["write_disposition"] == {"disposition": "merge", "strategy": "delete-insert"}


def test_without_a_first_load_check_every_extract_merges():
    writer = TableWriter()
    writer.add_invoices([invoice("1", 0)])
    invoices, items = list(writer.flush())
    assert items.data.column(TOMBSTONE).to_pylist() == [True]
    assert invoices.meta.hints["write_disposition"] == {"disposition": "merge", "strategy": "delete-insert"}
