"""The Dagster definitions without a load: they load, partitions come from configuration, the
schedule asks for one run per configured account, and names keep accounts apart."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.orchestration.support import SKIP

pytest.importorskip("dagster", reason=SKIP)

from dagster import (
    Definitions,
    SensorResult,
    SkipReason,
    build_schedule_context,
    build_sensor_context,
    instance_for_test,
)

from orchestration import accounts, defs
from orchestration.definitions import PARTITIONS, billing_accounts_sensor, billing_nightly


def kitchen_accounts(monkeypatch: pytest.MonkeyPatch, *labels: str) -> None:
    """The base Kitchen stanza (workspace `acme`) and further accounts, configured only."""
    monkeypatch.setenv("SOURCES__KITCHEN__API_KEY", "kt_test_key_1234567890")
    monkeypatch.setenv("SOURCES__KITCHEN__WORKSPACE", "acme")
    for label in labels:
        prefix = f"SOURCES__KITCHEN__ACCOUNTS__{label.upper()}__"
        monkeypatch.setenv(prefix + "API_KEY", f"kt_test_key_{label}_123456")
        monkeypatch.setenv(prefix + "WORKSPACE", f"acme-{label}")


def test_the_definitions_load(clean_env):
    Definitions.validate_loadable(defs)
    assert billing_nightly.cron_schedule == "15 2 * * *" and billing_nightly.execution_timezone == "UTC"


def test_the_sensor_adds_a_partition_per_configured_account_and_only_the_missing_ones(clean_env, monkeypatch):
    kitchen_accounts(monkeypatch, "eu")
    with instance_for_test() as instance:
        result = billing_accounts_sensor(build_sensor_context(instance=instance))
        assert isinstance(result, SensorResult)
        [request] = result.dynamic_partitions_requests or []
        assert list(request.partition_keys or []) == ["kitchen:acme", "kitchen:eu"]
        instance.add_dynamic_partitions(PARTITIONS, ["kitchen:acme", "kitchen:eu"])

        kitchen_accounts(monkeypatch, "eu", "us")
        again = billing_accounts_sensor(build_sensor_context(instance=instance))
        assert isinstance(again, SensorResult)
        assert [list(r.partition_keys or []) for r in again.dynamic_partitions_requests or []] == [["kitchen:us"]]


def test_the_schedule_registers_new_accounts_and_asks_one_run_per_configured_account(clean_env, monkeypatch):
    kitchen_accounts(monkeypatch, "eu")
    with instance_for_test() as instance:
        instance.add_dynamic_partitions(PARTITIONS, ["kitchen:acme", "kitchen:gone"])
        context = build_schedule_context(
            instance=instance, scheduled_execution_time=dt.datetime(2025, 1, 2, 2, 15, tzinfo=dt.UTC)
        )
        requests = billing_nightly(context)
        assert isinstance(requests, list)
        assert [r.partition_key for r in requests] == ["kitchen:acme", "kitchen:eu"]  # not the removed one
        assert all(r.tags == {"billing/writer": "duckdb"} for r in requests)
        assert set(instance.get_dynamic_partitions(PARTITIONS)) == {"kitchen:acme", "kitchen:eu", "kitchen:gone"}


def test_runs_into_postgres_carry_no_writer_tag(clean_env, monkeypatch):
    kitchen_accounts(monkeypatch)
    monkeypatch.setenv("DESTINATION_TYPE", "postgres")
    monkeypatch.setenv("DESTINATION__POSTGRES__CREDENTIALS", "postgresql://loader:secret@127.0.0.1:1/warehouse")
    with instance_for_test() as instance:
        requests = billing_nightly(build_schedule_context(instance=instance))
    assert isinstance(requests, list)
    assert [(r.partition_key, r.tags) for r in requests] == [("kitchen:acme", {})]


def test_a_wrong_configuration_registers_and_runs_nothing_and_says_why(clean_env, monkeypatch):
    kitchen_accounts(monkeypatch)
    monkeypatch.setenv("SOURCES__KITCHEN__ACCOUNTS__E-U__API_KEY", "x")
    with instance_for_test() as instance:
        sensed = billing_accounts_sensor(build_sensor_context(instance=instance))
        scheduled = billing_nightly(build_schedule_context(instance=instance))
        assert instance.get_dynamic_partitions(PARTITIONS) == []
    for result in (sensed, scheduled):
        assert isinstance(result, SkipReason)
        assert "account label" in (result.skip_message or "")


def test_each_account_gets_names_of_its_own():
    assert accounts.slug("kitchen:eu") == "kitchen_eu"
    assert accounts.slug("invoicexpress:acme") == "invoicexpress_acme"
    names = {accounts.slug(k) for k in ("kitchen:acme-eu", "kitchen:acme_eu", "kitchen:acme.eu", "kitchen:Acme_eu")}
    assert len(names) == 4
    assert all(n.replace("_", "").isalnum() and n == n.lower() and "__" not in n for n in names)
    long = accounts.slug("invoicexpress:" + "a" * 80)
    assert len(long) <= 47 and long != accounts.slug("invoicexpress:" + "a" * 81)
    assert accounts.staging_layout_for("kitchen:eu") == "%s_staging_kitchen_eu"
