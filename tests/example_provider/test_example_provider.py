"""The example provider of docs/adding-a-provider.md, end to end: found outside `sources/` through
`providers_packages`, loaded by the real command line from its fake API on loopback, checked in SQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from pipelines.registry import discover
from sources.shared.values import ValueProblem
from tests.example_provider.example import PROVIDER, mapping
from tests.example_provider.fake_api import ExampleBooks
from tests.support import Result, Workspace, serve

PACKAGE = "tests.example_provider"


def run(workspace: Workspace, app: ExampleBooks, url: str) -> Result:
    env = {PROVIDER.env(key): value for key, value in app.config(url).items() if value is not None}
    # per_page 3: the seven invoices come in three pages.
    return workspace.run({"PROVIDERS_PACKAGES": PACKAGE, PROVIDER.env("per_page"): "3", **env})


def test_found_only_when_its_package_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "example" not in discover()
    monkeypatch.setenv("PROVIDERS_PACKAGES", PACKAGE)
    found = discover()
    assert found["example"] is PROVIDER
    assert {"invoicexpress", "kitchen"} <= set(found)  # the built-in providers are still there


def test_an_unknown_status_is_a_value_problem() -> None:
    invoice = ExampleBooks().invoices[0]
    with pytest.raises(ValueProblem, match="unknown Example Books status"):
        mapping.map_invoice({**invoice, "status": "paid-ish"}, "demo", {})


@pytest.mark.integration
def test_loads_through_the_command_line_exactly_and_a_rerun_changes_nothing(workspace: Workspace) -> None:
    app = ExampleBooks()
    with serve(app) as server:
        first = run(workspace, app, server.url)
        assert first.code == 0, first.output
        tables = {
            t: workspace.query(f"SELECT * FROM billing.{t} ORDER BY ALL")
            for t in ("invoices", "invoice_items", "clients")
        }
        second = run(workspace, app, server.url)
    assert second.code == 0, second.output

    row = first.summary()["example"]
    assert (row["account"], row["status"], row["clients"], row["invoices"], row["lines"]) == (
        "demo",
        "loaded",
        "3",
        "7",
        "11",
    )

    assert workspace.scalar("SELECT count(*) FROM billing.invoices WHERE provider = 'example'") == 7
    assert workspace.scalar("SELECT count(*) FROM billing.invoice_items WHERE provider = 'example'") == 11
    assert workspace.scalar("SELECT count(*) FROM billing.clients WHERE provider = 'example'") == 3
    totals = dict(workspace.query("SELECT currency, sum(total) FROM billing.invoices GROUP BY currency"))
    assert totals == {"EUR": Decimal("4083.60"), "USD": Decimal("1296.00")} == app.summary()["totals"]
    assert workspace.query(
        "SELECT invoice_id, client_name, status, subtotal, tax_total, total, balance_due FROM billing.invoices "
        "WHERE invoice_id IN ('i1', 'i4', 'i7') ORDER BY invoice_id"
    ) == [
        ("i1", "Acme Lda", "paid", Decimal("474.99"), Decimal("109.25"), Decimal("584.24"), Decimal("0")),
        ("i4", "Globex Inc", "draft", Decimal("199.00"), Decimal("0"), Decimal("199.00"), None),
        ("i7", "Acme Lda", "open", Decimal("22.75"), Decimal("5.23"), Decimal("27.98"), Decimal("27.98")),
    ]
    assert workspace.query(
        "SELECT line_number, name, quantity, unit_price, subtotal FROM billing.invoice_items "
        "WHERE invoice_id = 'i3' ORDER BY line_number"
    ) == [
        (1, "Licence", Decimal("3"), Decimal("199.00"), Decimal("597.00")),
        (2, "Setup", Decimal("1"), Decimal("250.00"), Decimal("250.00")),
        (3, "Training", Decimal("4"), Decimal("62.50"), Decimal("250.00")),
    ]

    # The rerun read every page again, wrote nothing new and left every table as it was.
    again = second.summary()["example"]
    assert (again["status"], again["invoices"], again["unchanged"]) == ("loaded", "0", "7")
    for table, rows in tables.items():
        assert workspace.query(f"SELECT * FROM billing.{table} ORDER BY ALL") == rows, table
