"""`billing-elt remap` through the real command line: canonical rows derived again from the stored
payloads with the current mapping (docs/configuration.md, command table; docs/canonical-model.md,
`unmapped_records`). No sandbox is served while remap runs, and its environment names no provider
at all: nothing but the warehouse and dlt's state is there to read."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import duckdb
import pytest

from pipelines.lock import RunLocks
from sandbox import flowpayroll, fohlio, invoicexpress, kitchen
from sources.shared.model import CLIENTS, INVOICE_ITEMS, INVOICES, PRIMARY_KEYS, column_names
from sources.shared.values import dumps, loads
from tests.support import Result, Workspace, serve

pytestmark = pytest.mark.integration

TABLES = (INVOICES, INVOICE_ITEMS, CLIENTS)


def load(workspace: Workspace, **apps: Any) -> None:
    """Load each provider from its sandbox app, served for this load only."""
    for provider, app in apps.items():
        with serve(app) as server:
            result = workspace.run({**app.pipeline_env(server.url), "PROVIDERS": provider})
        assert result.code == 0, result.output


def remap(workspace: Workspace, *args: str) -> Result:
    return workspace.run({}, "remap", *args)


def snapshot(workspace: Workspace, provider: str | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every canonical column of every row (dlt's own columns left out), in key order."""
    found = {}
    for table in TABLES:
        columns = ", ".join(f'"{c}"' for c in column_names(table) if not c.startswith("_"))
        where = f"WHERE provider = '{provider}'" if provider else ""
        order = ", ".join(PRIMARY_KEYS[table])
        found[table] = workspace.query(f"SELECT {columns} FROM billing.{table} {where} ORDER BY {order}")
    return found


def loads_count(workspace: Workspace) -> int:
    return int(workspace.scalar("SELECT count(*) FROM billing._dlt_loads"))


def execute(workspace: Workspace, *statements: str) -> None:
    with duckdb.connect(str(workspace.db)) as con:
        for statement in statements:
            con.execute(statement)


def first(workspace: Workspace, sql: str) -> Any:
    return workspace.scalar(sql)


def test_rows_altered_in_the_warehouse_are_restored_from_their_raw(workspace: Workspace) -> None:
    # Flow Payroll reads its dates with the formats announced on each page: remap must use them.
    load(workspace, kitchen=kitchen.create_app(fixtures=False), flowpayroll=flowpayroll.create_app(fixtures=False))
    before = {p: snapshot(workspace, p) for p in ("kitchen", "flowpayroll")}
    k_invoice = first(workspace, "SELECT min(invoice_id) FROM billing.invoices WHERE provider = 'kitchen'")
    k_lines = first(
        workspace,
        "SELECT invoice_id FROM billing.invoice_items WHERE provider = 'kitchen' AND invoice_id <> "
        f"'{k_invoice}' GROUP BY 1 HAVING count(*) >= 2 ORDER BY 1 LIMIT 1",
    )
    k_client = first(workspace, "SELECT min(client_id) FROM billing.clients WHERE provider = 'kitchen'")
    f_invoice = first(workspace, "SELECT min(invoice_id) FROM billing.invoices WHERE provider = 'flowpayroll'")
    execute(
        workspace,
        f"UPDATE billing.invoices SET total = total + 1, status = 'void' WHERE invoice_id = '{k_invoice}'",
        f"DELETE FROM billing.invoice_items WHERE invoice_id = '{k_lines}' AND line_number = 1",
        "INSERT INTO billing.invoice_items (provider, account, invoice_id, line_number, name) "
        f"SELECT provider, account, invoice_id, 99, 'stray' FROM billing.invoices WHERE invoice_id = '{k_invoice}'",
        f"UPDATE billing.clients SET name = 'Renamed by hand' WHERE client_id = '{k_client}'",
        f"UPDATE billing.invoices SET due_date = DATE '1999-01-01' WHERE invoice_id = '{f_invoice}'",
    )
    altered_flowpayroll = snapshot(workspace, "flowpayroll")

    only_kitchen = remap(workspace, "kitchen")
    assert only_kitchen.code == 0, only_kitchen.output
    assert snapshot(workspace, "kitchen") == before["kitchen"]
    assert snapshot(workspace, "flowpayroll") == altered_flowpayroll  # not selected: untouched
    err = only_kitchen.stderr
    assert "kitchen [acme]: " in err and "flowpayroll" not in err.split("no API call", 1)[1]
    assert "invoices          1 changed · 0 added · 0 removed" in err
    assert "invoice_items     0 changed · 1 added · 1 removed" in err
    assert "clients           1 changed · 0 added · 0 removed" in err
    assert "unmapped_records  0 resolved · 0 new" in err
    assert "views refreshed" in err

    everything = remap(workspace)
    assert everything.code == 0, everything.output
    assert {p: snapshot(workspace, p) for p in before} == before
    assert (
        "kitchen [acme]: 8 clients, 45 invoices mapped again from stored payloads; nothing changed" in everything.stderr
    )

    written = loads_count(workspace)
    again = remap(workspace)
    assert again.code == 0, again.output
    assert "nothing changed, nothing written" in again.stderr and "views refreshed" not in again.stderr
    assert loads_count(workspace) == written  # not one load package: nothing was written


def test_a_stored_payload_that_maps_now_leaves_unmapped_records_and_one_that_no_longer_maps_enters(
    workspace: Workspace,
) -> None:
    app = kitchen.create_app(fixtures=False)
    broken = app.invoices[3]
    good_amount = broken["total_amount"]
    broken["total_amount"] = "1,50"  # cannot be read without guessing: kept unmapped by the load
    load(workspace, kitchen=app)
    (key, raw) = workspace.query("SELECT record_key, CAST(raw AS TEXT) FROM billing.unmapped_records")[0]
    assert key == str(broken["id"])
    assert first(workspace, f"SELECT count(*) FROM billing.invoices WHERE invoice_id = '{key}'") == 0

    # The stored payload fixed in place (as a corrected mapping would read it): remap maps it.
    fixed = loads(raw) | {"total_amount": good_amount}
    with duckdb.connect(str(workspace.db)) as con:
        con.execute("UPDATE billing.unmapped_records SET raw = ?", [dumps(fixed)])
    resolved = remap(workspace)
    assert resolved.code == 0, resolved.output
    assert "unmapped_records  1 resolved · 0 new" in resolved.stderr
    assert "invoices          0 changed · 1 added · 0 removed" in resolved.stderr
    assert workspace.query("SELECT * FROM billing.unmapped_records") == []
    total = first(workspace, f"SELECT total FROM billing.invoices WHERE invoice_id = '{key}'")
    assert total == Decimal(str(good_amount))
    lines = first(workspace, f"SELECT count(*) FROM billing.invoice_items WHERE invoice_id = '{key}'")
    assert lines == len(broken["items"])

    # A stored payload that cannot be mapped any more: out of the tables, into unmapped_records.
    other = str(app.invoices[5]["id"])
    other_lines = first(workspace, f"SELECT count(*) FROM billing.invoice_items WHERE invoice_id = '{other}'")
    execute(
        workspace,
        'UPDATE billing.invoices SET raw = json_merge_patch(raw, \'{"total_amount": "2,75"}\') '
        f"WHERE invoice_id = '{other}'",
    )
    moved = remap(workspace)
    assert moved.code == 0, moved.output
    assert "invoices          0 changed · 0 added · 1 removed" in moved.stderr
    assert f"invoice_items     0 changed · 0 added · {other_lines} removed" in moved.stderr
    assert "unmapped_records  0 resolved · 1 new" in moved.stderr
    assert first(workspace, f"SELECT count(*) FROM billing.invoices WHERE invoice_id = '{other}'") == 0
    assert first(workspace, f"SELECT count(*) FROM billing.invoice_items WHERE invoice_id = '{other}'") == 0
    (record_key, reason, stored) = workspace.query(
        "SELECT record_key, reason, CAST(raw AS TEXT) FROM billing.unmapped_records"
    )[0]
    assert record_key == other and "2,75" in reason and json.loads(stored)["total_amount"] == "2,75"

    # The next load tries it again like any unmapped record: the provider's payload maps, it lands.
    broken["total_amount"] = good_amount
    load(workspace, kitchen=app)
    assert workspace.query("SELECT * FROM billing.unmapped_records") == []
    assert first(workspace, f"SELECT count(*) FROM billing.invoice_items WHERE invoice_id = '{other}'") == other_lines

    # Selection and exit codes (docs/configuration.md).
    assert remap(workspace, "nosuch").code == 2
    assert remap(workspace, "kitchen:no_such_account").code == 2
    nothing = remap(workspace, "fohlio")
    assert nothing.code == 2 and "nothing stored for fohlio" in nothing.stderr and "kitchen [acme]" in nothing.stderr
    assert remap(workspace, "kitchen:acme").code == 0
    with RunLocks([workspace.db.with_name(workspace.db.name + ".lock.run")]):
        held = remap(workspace)
    assert held.code == 3, held.output


def test_before_any_load_there_is_nothing_to_remap(workspace: Workspace) -> None:
    result = remap(workspace)
    assert result.code == 0, result.output
    assert "nothing to remap" in result.stderr
    assert not workspace.db.exists()


def drop_kept_inputs(workspace: Workspace, provider: str) -> None:
    """What a warehouse loaded before loads kept mapping inputs looks like: none beside the payloads."""
    execute(
        workspace,
        *(f"UPDATE billing.{t} SET _mapping_inputs = NULL WHERE provider = '{provider}'" for t in (INVOICES, CLIENTS)),
    )


def test_records_whose_inputs_were_not_kept_are_reported_and_left_as_they_are(workspace: Workspace) -> None:
    load(workspace, fohlio=fohlio.create_app(fixtures=False))
    drop_kept_inputs(workspace, "fohlio")
    invoice = first(workspace, "SELECT min(invoice_id) FROM billing.invoices")
    client = first(workspace, "SELECT min(client_id) FROM billing.clients")
    execute(
        workspace,
        f"UPDATE billing.invoices SET notes = 'edited' WHERE invoice_id = '{invoice}'",
        f"UPDATE billing.clients SET name = 'edited' WHERE client_id = '{client}'",
    )
    result = remap(workspace)
    assert result.code == 1, result.output
    assert "fohlio [default]: not remapped, their rows left as they are: 60 invoice(s)" in result.stderr
    # Neither the account's options nor its lookups were kept: the first the mapping asks for is named.
    assert "the lookup 'projects'" in result.stderr or "the account's mapping options" in result.stderr
    assert "Traceback" not in result.output
    # Never mapped with a guess: the invoice keeps its row; clients need nothing more and are restored.
    assert first(workspace, f"SELECT notes FROM billing.invoices WHERE invoice_id = '{invoice}'") == "edited"
    assert first(workspace, f"SELECT name FROM billing.clients WHERE client_id = '{client}'") != "edited"
    assert "clients           1 changed" in result.stderr


def test_invoicexpress_remaps_to_the_rows_it_loaded(workspace: Workspace) -> None:
    """A remap of what a load wrote changes nothing, and restores what was altered by hand, the
    published samples included."""
    load(workspace, invoicexpress=invoicexpress.create_app(clients=6))
    before = snapshot(workspace, "invoicexpress")
    assert len(before[INVOICES]) > 30
    unchanged = remap(workspace, "invoicexpress")
    assert unchanged.code == 0, unchanged.output
    assert "nothing changed" in unchanged.stderr
    invoice = first(workspace, "SELECT min(invoice_id) FROM billing.invoices WHERE provider = 'invoicexpress'")
    execute(
        workspace,
        f"UPDATE billing.invoices SET total = total + 1, withholding_total = 5 WHERE invoice_id = '{invoice}'",
        f"DELETE FROM billing.invoice_items WHERE invoice_id = '{invoice}' AND line_number = 1",
    )
    restored = remap(workspace, "invoicexpress")
    assert restored.code == 0, restored.output
    assert "invoices          1 changed · 0 added · 0 removed" in restored.stderr
    assert snapshot(workspace, "invoicexpress") == before


def test_the_comparison_finds_every_difference_and_only_those():
    """Rows joined on their key in DuckDB: a key on one side only, a value that differs in its
    last digit of DECIMAL(18, 6), "" against NULL, other JSON text, are differences; a timestamp
    read back without its zone and a column the warehouse lacks against NULL are not."""
    import datetime as dt

    import pyarrow as pa

    from pipelines.remap import _differences
    from sources.shared.model import SCHEMAS

    def table(rows: list[dict[str, Any]]) -> pa.Table:
        return pa.Table.from_pylist(rows, schema=SCHEMAS[INVOICES])

    when = dt.datetime(2026, 5, 1, 12, tzinfo=dt.UTC)
    base: dict[str, Any] = {"provider": "p", "account": "a", "total": Decimal("123456789012.123456")}
    base |= {"raw": '{"a":1}', "issue_date": dt.date(2026, 1, 2), "notes": None, "updated_at": when}
    derived = table([{**base, "invoice_id": str(i)} for i in range(5)])
    stored = table(
        [
            {**base, "invoice_id": "0"},  # the same
            {**base, "invoice_id": "1", "total": Decimal("123456789012.123457")},  # the last digit
            {**base, "invoice_id": "2", "notes": ""},  # "" against NULL
            {**base, "invoice_id": "4", "raw": '{"a": 2}'},  # other JSON
            {**base, "invoice_id": "9"},  # stored only: not this comparison's (its payload did not map)
        ]  # "3": derived only
    )
    keys, rows, _ = _differences(INVOICES, derived, stored, None, None)
    assert keys == {"1", "2", "3", "4"} and (rows.changed, rows.added, rows.removed) == (3, 1, 0)
    naive = stored.set_column(
        stored.schema.get_field_index("updated_at"), "updated_at", stored.column("updated_at").cast(pa.timestamp("us"))
    )
    assert _differences(INVOICES, derived, naive, None, None)[0] == keys
    assert _differences(INVOICES, derived, stored.drop_columns(["notes"]), None, None)[0] == {"1", "3", "4"}


def test_a_remap_restores_every_line_of_an_invoice_and_keeps_what_the_listing_set(workspace: Workspace) -> None:
    load(workspace, kitchen=kitchen.create_app(fixtures=False))
    before = snapshot(workspace, "kitchen")
    bare = first(workspace, "SELECT max(invoice_id) FROM billing.invoices WHERE provider = 'kitchen'")
    n_lines = first(workspace, f"SELECT count(*) FROM billing.invoice_items WHERE invoice_id = '{bare}'")
    marked = first(workspace, "SELECT min(invoice_id) FROM billing.invoices WHERE provider = 'kitchen'")
    execute(
        workspace,
        f"DELETE FROM billing.invoice_items WHERE invoice_id = '{bare}'",
        "UPDATE billing.invoices SET total = total + 1, deleted_at = TIMESTAMPTZ '2026-06-01 00:00:00+00' "
        f"WHERE invoice_id = '{marked}'",
    )
    done = remap(workspace, "kitchen")
    assert done.code == 0, done.output
    assert n_lines > 0 and "invoices          1 changed · 0 added · 0 removed" in done.stderr, done.stderr
    assert f"invoice_items     0 changed · {n_lines} added · 0 removed" in done.stderr
    after = snapshot(workspace, "kitchen")
    assert after[INVOICE_ITEMS] == before[INVOICE_ITEMS] and after[CLIENTS] == before[CLIENTS]
    deleted_at = first(workspace, f"SELECT deleted_at FROM billing.invoices WHERE invoice_id = '{marked}'")
    assert deleted_at is not None and deleted_at.isoformat().startswith("2026-06-01")  # set by a listing: kept
    execute(workspace, f"UPDATE billing.invoices SET deleted_at = NULL WHERE invoice_id = '{marked}'")
    assert snapshot(workspace, "kitchen") == before  # every other value restored
