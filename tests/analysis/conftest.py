"""One warehouse loaded from every sandbox by the real CLI, shared by the analysis tests."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import dlt
import duckdb
import pytest

from pipelines.views import refresh_views
from pipelines.warehouse import billing_duckdb
from sandbox.server import available, feeds
from tests.support import Workspace, serve

SEED = 42


@pytest.fixture(scope="session")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> Workspace:
    """Every provider's sandbox loaded into one warehouse by `python -m pipelines.billing`, with
    the reference rates of the ECB's sandbox up to today."""
    workspace = Workspace(tmp_path_factory.mktemp("analysis"))
    apps = {name: create(seed=SEED) for name, create in {**available(), **feeds()}.items()}
    env: dict[str, str] = {}
    with ExitStack() as stack:
        for app in apps.values():
            server = stack.enter_context(serve(app))
            env.update(app.pipeline_env(server.url))
        result = workspace.run(env)
    assert result.code == 0, result.output
    assert "views refreshed" in result.stderr, result.output
    return workspace


def refresh(db: Path, pipelines_dir: Path) -> list[str]:
    """`refresh_views` on the warehouse file `db`, through a dlt pipeline of its own."""
    pipeline = dlt.pipeline(
        pipeline_name="analysis_refresh",
        pipelines_dir=str(pipelines_dir),
        destination=billing_duckdb(credentials=str(db), destination_name="duckdb"),
        dataset_name="billing",
    )
    return refresh_views(pipeline)


# Documents the sandboxes do not have, added to a copy of the loaded warehouse: non-billing
# documents and a receipt (in no figure), a document without due date, one without client id,
# and deletions.
EXTRA_ROWS = [
    ("quote", "open", "x-quote-", ""),
    ("proforma", "open", "x-proforma-", ""),
    ("purchase_order", "paid", "x-po-", ""),
    ("receipt", "open", "x-receipt-", ""),
    ("invoice", "open", "x-nodue-", "due_date := NULL"),
    ("invoice", "partially_paid", "x-noclient-", "client_id := NULL"),
    ("credit_note", "partially_paid", "x-credit-", ""),
]


def add_documents_and_deletions(db: Path) -> None:
    with duckdb.connect(str(db)) as con:
        for document_type, status, prefix, change in EXTRA_ROWS:
            replace = [f"'{prefix}' || invoice_id AS invoice_id", f"'{document_type}' AS document_type"]
            replace.append(f"'{status}' AS status")
            if change:
                column = change.split(" := ")[0]
                replace.append(f"{change.split(' := ')[1]} AS {column}")
            con.execute(
                f"""INSERT INTO billing.invoices BY NAME
                    SELECT * REPLACE ({", ".join(replace)}) FROM billing.invoices
                    WHERE status = 'open' AND balance_due > 0 AND invoice_id NOT LIKE 'x-%'
                    QUALIFY row_number() OVER (PARTITION BY provider ORDER BY invoice_id) = 1"""
            )
        # One open and one paid document of every provider are gone at the provider.
        con.execute(
            """UPDATE billing.invoices SET deleted_at = TIMESTAMPTZ '2026-01-01 00:00:00+00'
               WHERE (provider, invoice_id) IN (
                   SELECT (provider, min(invoice_id)) FROM billing.invoices
                   WHERE status IN ('open', 'paid') AND invoice_id NOT LIKE 'x-%' GROUP BY provider, status)"""
        )


def variant_of(loaded: Workspace, work: Path) -> Path:
    db = work / "warehouse.duckdb"
    shutil.copy(loaded.db, db)
    add_documents_and_deletions(db)
    assert refresh(db, work / "pipelines")
    return db


@pytest.fixture(scope="session")
def variant(loaded: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the loaded warehouse with deletions and non-billing documents."""
    return variant_of(loaded, tmp_path_factory.mktemp("analysis-variant"))


@pytest.fixture(scope="session", params=["as loaded", "with deletions and other documents"])
def warehouse(request: pytest.FixtureRequest, loaded: Workspace) -> Iterator[Path]:
    """The loaded warehouse file (nothing deleted), and the variant."""
    yield loaded.db if request.param == "as loaded" else request.getfixturevalue("variant")
