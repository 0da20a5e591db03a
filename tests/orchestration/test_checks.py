"""The data checks as Dagster asset checks: each check a load runs is an asset check of the
account's partition, with its figures, those whose failure is an error blocking."""

from __future__ import annotations

import pytest

from tests.orchestration.support import SKIP, two_accounts

pytest.importorskip("dagster", reason=SKIP)

from dagster import AssetCheckSeverity

from orchestration.definitions import CHECK_SPECS
from pipelines import checks
from tests.orchestration.materialize import failure, materialize_one

pytestmark = pytest.mark.integration


def evaluations(result):
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_each_check_is_an_asset_check_of_the_partition_blocking_for_errors(clean_env, monkeypatch):
    assert {spec.name: spec.blocking for spec in CHECK_SPECS} == {
        name: severity == checks.ERROR for name, severity in checks.CHECKS.items()
    }
    assert all(spec.partitions_def is not None for spec in CHECK_SPECS)
    with two_accounts(monkeypatch) as (acme, _eu, _env):
        first = materialize_one("kitchen:acme")
        assert first.success
        found = evaluations(first)
        assert set(found) == set(checks.CHECKS)
        assert all(e.passed for e in found.values())
        assert found["volume"].metadata["observed"].value.startswith(f"{len(acme.invoices)} listed")
        assert {e.partition for e in found.values()} == {"kitchen:acme"}

        for invoice in acme.invoices:  # a field the mapping reads is gone from every invoice
            invoice.pop("memo", None)
            acme.update_invoice(invoice["id"])
        second = materialize_one("kitchen:acme")
    drift = evaluations(second)["schema_drift"]
    assert not drift.passed and drift.severity == AssetCheckSeverity.ERROR
    assert "$.memo" in drift.description
    assert not second.success  # a blocking check failed with an error
    assert "schema_drift" in failure(second), failure(second)
    assert len(second.asset_materializations_for_node("billing_account")) == 1
