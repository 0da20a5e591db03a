"""The rules the shared model applies for every provider, seen in the loaded warehouse."""

from __future__ import annotations

import pytest

from tests.support import Workspace

pytestmark = pytest.mark.integration


def test_no_text_column_holds_an_empty_string(loaded: Workspace) -> None:
    for table in ("invoices", "invoice_items", "clients"):
        columns = [
            name
            for name, data_type in loaded.query(
                "SELECT column_name, data_type FROM information_schema.columns "
                "WHERE table_schema = 'billing' AND table_name = ?",
                table,
            )
            if data_type == "VARCHAR"
        ]
        empty = " OR ".join(f"{c} = ''" for c in columns)
        assert loaded.scalar(f"SELECT count(*) FROM billing.{table} WHERE {empty}") == 0, table


def test_drafts_owe_nothing_yet_and_void_documents_nothing_any_more(loaded: Workspace) -> None:
    per_provider = loaded.query(
        """SELECT provider,
                  count(*) FILTER (WHERE status = 'draft' AND balance_due IS NOT NULL),
                  count(*) FILTER (WHERE status = 'void' AND (balance_due IS NULL OR balance_due <> 0)),
                  count(*) FILTER (WHERE status = 'draft')
           FROM billing.invoices GROUP BY 1"""
    )
    assert len(per_provider) == 4
    assert all(
        drafts_with_balance == 0 and void_with_balance == 0
        for _, drafts_with_balance, void_with_balance, _ in per_provider
    )
    assert all(drafts > 0 for *_, drafts in per_provider)
