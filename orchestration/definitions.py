"""Dagster definitions: one partition per provider account, run in parallel into one warehouse
(docs/dagster.md, "Running many accounts with Dagster"). Start the UI from the project folder with
`.venv/bin/dagster dev -m orchestration`.

- `billing_accounts`: a dynamic partition per configured account, keyed `provider:label` as
  `PROVIDERS=provider:label` names it (docs/configuration.md, "Several accounts of one provider").
  The sensor `billing_accounts_sensor` and the nightly schedule add the accounts configuration
  has and Dagster does not; a partition whose account was removed stays (with its history) and
  is no longer scheduled.
- `billing_account`: the asset of one account's rows in the canonical tables; a materialization
  is one `billing-elt load --providers provider:label` run (orchestration/accounts.py), its summary
  as metadata. A failed account fails its partition alone, with the run's one-paragraph message.
  Each data check the load ran (docs/checks.md) is an asset check of the account's partition,
  with its figures as metadata; those whose failure is an error are blocking.
- `billing_nightly`: every configured account at 02:15 UTC, one run per account; Dagster's run
  queue runs them in parallel.
- A DuckDB warehouse takes one writer at a time: its runs carry the tag `billing/writer=duckdb`,
  which orchestration/dagster.yaml limits to one run at a time, and each run also waits for its
  turn on the file (orchestration/accounts.py), so a Dagster instance without that limit queues
  them too instead of failing them.

We use plain `@asset`s rather than dagster-dlt's `@dlt_assets`: those need a configured dlt source
when the definitions load, make one asset per dlt resource (one per provider, not per account), and
run `pipeline.run` themselves, bypassing the run lock, the repair of local state, the pending-load
check, `pipeline_runs`, the views and our failure paragraphs that `pipelines/run.py` provides.
"""

# No `from __future__ import annotations`: Dagster reads the `context` annotation at definition time.
import logging
import warnings
from typing import Any

from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    DefaultScheduleStatus,
    DefaultSensorStatus,
    Definitions,
    DynamicPartitionsDefinition,
    Failure,
    MaterializeResult,
    PreviewWarning,
    RunRequest,
    ScheduleEvaluationContext,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    asset,
    define_asset_job,
    schedule,
    sensor,
)

from orchestration import accounts
from pipelines import checks, config

PARTITIONS = "billing_accounts"
NIGHTLY_CRON = "15 2 * * *"
WRITER_TAG = "billing/writer"
DUCKDB_WRITER = "duckdb"

billing_accounts = DynamicPartitionsDefinition(name=PARTITIONS)


def writer_tags() -> dict[str, str]:
    """`billing/writer=duckdb` when the warehouse is a DuckDB file (orchestration/dagster.yaml lets
    one such run go at a time); nothing for a warehouse that takes many writers."""
    return {WRITER_TAG: DUCKDB_WRITER} if accounts.is_duckdb() else {}


def _say(context: AssetExecutionContext) -> Any:
    def say(level: int, line: str) -> None:
        if level >= logging.ERROR:
            context.log.error(line)
        elif level >= logging.WARNING:
            context.log.warning(line)
        else:
            context.log.info(line)

    return say


CHECK_DESCRIPTIONS = {
    checks.FRESHNESS: "Hours since the account's last successful load, against [checks] max_hours_since_load.",
    checks.VOLUME: "Invoices the account's latest complete listing held, against the median of its last "
    "successful runs ([checks] max_volume_drop).",
    checks.TOTALS: "Invoices whose own figures disagree: total is not subtotal + tax + shipping − withholding.",
    checks.UNMAPPED: "Records of the account waiting in unmapped_records.",
    checks.SCHEMA_DRIFT: "Changes in the provider's payloads (schema_changes); an error when a field the mapping "
    "reads vanished.",
    checks.FX_COVERAGE: "Documents with no rate in the reporting currency.",
}
with warnings.catch_warnings():
    # Partitioned asset checks are a preview feature of Dagster (1.13): each check's result
    # belongs to the account's partition, as the asset's materialization does.
    warnings.simplefilter("ignore", PreviewWarning)
    CHECK_SPECS = [
        AssetCheckSpec(
            name,
            asset="billing_account",
            description=CHECK_DESCRIPTIONS[name],
            blocking=severity == checks.ERROR,
            partitions_def=billing_accounts,
        )
        for name, severity in checks.CHECKS.items()
    ]


def check_results(done: accounts.AccountRun) -> list[AssetCheckResult]:
    """One result per check of the account's load (a check the load could not run fails as a warning)."""
    found = {c.check_name: c for c in done.report.checks}
    results = []
    for name in checks.CHECKS:
        check = found.get(name)
        if check is None:
            results.append(
                AssetCheckResult(
                    check_name=name,
                    passed=False,
                    severity=AssetCheckSeverity.WARN,
                    description="the load could not run this check (its log says why)",
                )
            )
            continue
        results.append(
            AssetCheckResult(
                check_name=name,
                passed=check.passed,
                severity=AssetCheckSeverity.ERROR if check.severity == checks.ERROR else AssetCheckSeverity.WARN,
                description=check.detail,
                metadata={"observed": check.observed, "expected": check.expected, "run_id": done.report.run_id},
            )
        )
    return results


@asset(
    partitions_def=billing_accounts,
    group_name="billing",
    kinds={"dlt"},
    check_specs=CHECK_SPECS,
    description=(
        "One provider account's invoices, invoice items and clients in the warehouse "
        "(docs/canonical-model.md), loaded as `billing-elt load --providers provider:label` does."
    ),
)
def billing_account(context: AssetExecutionContext) -> MaterializeResult:
    key = context.partition_key
    if accounts.is_duckdb():
        context.log.info(
            "the warehouse is a DuckDB file, which takes one writer at a time: accounts load one after "
            f"another (run tag {WRITER_TAG}={DUCKDB_WRITER}; orchestration/dagster.yaml)"
        )
    done = accounts.run_account(key, say=_say(context), command=f"dagster run {context.run.run_id} ({key})")
    metadata = done.metadata()
    if not done.ok:
        raise Failure(description=done.message, metadata=metadata, allow_retries=False)
    return MaterializeResult(metadata=metadata, check_results=check_results(done))


billing_job = define_asset_job(
    "billing_accounts_job",
    selection=[billing_account],
    tags=writer_tags(),
    description="Load one provider account (the run's partition).",
)


def _configured_or_reason() -> list[str] | SkipReason:
    try:
        return accounts.configured_accounts()
    except config.UsageError as exc:
        return SkipReason(f"the configuration is wrong, no account was registered or run: {exc}")


def missing_partitions(instance: Any, keys: list[str]) -> list[str]:
    known = set(instance.get_dynamic_partitions(PARTITIONS))
    return [k for k in keys if k not in known]


@sensor(minimum_interval_seconds=300, default_status=DefaultSensorStatus.RUNNING)
def billing_accounts_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Add a partition for every configured account that has none yet (every five minutes)."""
    keys = _configured_or_reason()
    if isinstance(keys, SkipReason):
        return keys
    missing = missing_partitions(context.instance, keys)
    if not missing:
        return SkipReason(f"every configured account has its partition ({len(keys)})")
    context.log.info("new accounts: %s", ", ".join(missing))
    return SensorResult(dynamic_partitions_requests=[billing_accounts.build_add_request(missing)])


@schedule(
    job=billing_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="UTC",
    default_status=DefaultScheduleStatus.RUNNING,
)
def billing_nightly(context: ScheduleEvaluationContext) -> list[RunRequest] | SkipReason:
    """Every configured account, one run each, at 02:15 UTC (registering new accounts first)."""
    keys = _configured_or_reason()
    if isinstance(keys, SkipReason):
        return keys
    if not keys:
        return SkipReason("no provider account is configured")
    missing = missing_partitions(context.instance, keys)
    if missing:
        context.instance.add_dynamic_partitions(PARTITIONS, missing)
    tags = writer_tags()
    return [RunRequest(run_key=key, partition_key=key, tags=tags) for key in keys]


defs = Definitions(
    assets=[billing_account],
    jobs=[billing_job],
    schedules=[billing_nightly],
    sensors=[billing_accounts_sensor],
)
