"""The data checks: is the warehouse's data fresh, complete and as expected? (docs/checks.md;
docs/canonical-model.md, `data_checks`; docs/configuration.md, `billing-elt check`, `[checks]`).

    billing-elt check        # every account the warehouse holds: no API call; exit 0, or 4 on an error

Each check gives one row per provider account: `freshness`, `volume`, `totals`, `unmapped`,
`schema_drift`, `fx_coverage` (`CHECKS`). They read the warehouse only, through the pipeline's
SQL client (the same statements on DuckDB and Postgres), and are recorded in `data_checks`
through dlt, in a schema of their own (as `pipeline_runs`). `billing-elt check` records them
under a run id of its own and prints one line per failed check; every load runs them for the
accounts it ran, under its own run id, after its views are refreshed, names the failures at the
end of its summary and keeps its own exit code (`after_load`). Dagster reports them as asset
checks of the account's partition (orchestration/definitions.py).
"""

from __future__ import annotations

import datetime as dt
import logging
import statistics
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import dlt

from pipelines import config
from pipelines.failures import Stopped, Where, explain, stop_signal
from pipelines.retry import loading
from pipelines.warehouse import Reader, pipeline_reader
from sources.shared.redact import redact
from sources.shared.structure import ADDED, SCHEMA_CHANGES, VANISHED, Reads

log = logging.getLogger("billing.run")

DATA_CHECKS = "data_checks"
RUNS_SCHEMA = "billing_runs"  # pipelines/run.py: the schema of pipeline_runs, which is not a provider's
EXIT_CHECK_FAILED = 4
ERROR, WARNING = "error", "warning"
FRESHNESS, VOLUME, TOTALS, UNMAPPED, SCHEMA_DRIFT, FX_COVERAGE = (
    "freshness",
    "volume",
    "totals",
    "unmapped",
    "schema_drift",
    "fx_coverage",
)
# Each check and the severity of its failure (schema_drift: an error only for a field the mapping
# reads that vanished, else a warning).
CHECKS: dict[str, str] = {
    FRESHNESS: ERROR,
    VOLUME: ERROR,
    TOTALS: WARNING,
    UNMAPPED: WARNING,
    SCHEMA_DRIFT: ERROR,
    FX_COVERAGE: WARNING,
}
DEFAULT_MAX_HOURS_SINCE_LOAD = 36.0
DEFAULT_MAX_VOLUME_DROP = 0.5
VOLUME_RUNS = 7  # the successful runs whose median a listing is compared with
TOTAL_TOLERANCE = "0.01"
SECTION = "checks"
KEYS = ("max_hours_since_load", "max_volume_drop")


# --- settings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """`[checks]` (env `CHECKS__<KEY>`), docs/configuration.md."""

    max_hours_since_load: float = DEFAULT_MAX_HOURS_SINCE_LOAD
    max_volume_drop: float = DEFAULT_MAX_VOLUME_DROP


def settings() -> Settings:
    """The checks' settings (a key of `[checks]` that is not one of them: pipelines/keys.py).

    Raises:
        config.UsageError: `max_hours_since_load` is not a number above 0, or `max_volume_drop`
            not a number from 0 to 1.
    """
    hours = _number("max_hours_since_load", DEFAULT_MAX_HOURS_SINCE_LOAD)
    if hours <= 0:
        raise config.UsageError(f"CHECKS__MAX_HOURS_SINCE_LOAD = {hours:g} must be more than 0 hours")
    drop = _number("max_volume_drop", DEFAULT_MAX_VOLUME_DROP)
    if not 0 <= drop <= 1:
        raise config.UsageError(f"CHECKS__MAX_VOLUME_DROP = {drop:g} must be a share from 0 to 1 (0.5 is half)")
    return Settings(hours, drop)


def _number(key: str, default: float) -> float:
    value: Any = dlt.config.get(f"{SECTION}.{key}")
    if value in (None, ""):
        return default
    try:
        return float(str(value).strip())
    except ValueError:
        raise config.UsageError(f"CHECKS__{key.upper()} = {value!r} is not a number") from None


# --- the checks ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Check:
    """One `data_checks` row (without its run id and time)."""

    provider: str
    account: str
    check_name: str
    severity: str
    passed: bool
    observed: str
    expected: str
    detail: str

    @property
    def fails_with_error(self) -> bool:
        return not self.passed and self.severity == ERROR

    def line(self) -> str:
        """What a person reads: the account, the check, its severity and what to do."""
        return f"{self.provider} [{self.account}] {self.check_name} ({self.severity}): {self.detail}"


Account = tuple[str, str]


def evaluate(
    r: Reader,
    settings: Settings,
    now: dt.datetime,
    accounts: Iterable[Account] | None = None,
    reads: Callable[[str], Reads | None] | None = None,
    pending: Sequence[Mapping[str, Any]] = (),
) -> list[Check]:
    """Every check for `accounts` (every account the warehouse holds when None, see
    `held_accounts`), read from the warehouse `r` as of `now`; `reads(provider)` gives what a
    provider's mapping reads (default: the provider's declaration); `pending` are `pipeline_runs`
    rows of the run being recorded (a load's own, written together with its checks)."""
    relations = r.relations()
    chosen = sorted(set(accounts) if accounts is not None else held_accounts(r, relations))
    if not chosen:
        return []
    warehouse = _Warehouse(r, relations, pending)
    reads = reads or declared_reads
    found: list[Check] = []
    for provider, account in chosen:
        who = f"{provider} [{account}]"
        found += [
            freshness(warehouse.runs(provider, account), settings, now, who, provider, account),
            volume(warehouse.listed(provider, account), settings, who, provider, account),
            totals(warehouse.mismatches(provider, account), who, provider, account),
            unmapped(warehouse.unmapped(provider, account), who, provider, account),
            schema_drift(
                warehouse.changes(provider, account),
                warehouse.latest_run(provider, account),
                reads(provider),
                who,
                provider,
                account,
            ),
            fx_coverage(warehouse.fx(provider, account), who, provider, account),
        ]
    return found


def held_accounts(r: Reader, relations: set[str] | None = None) -> set[Account]:
    """The accounts to check: those with rows in the canonical tables, and those whose latest run
    failed (an account that never loaded included). An account reset whose last run loaded, with
    no rows left, is not checked."""
    relations = relations if relations is not None else r.relations()
    t = r.table
    found: set[Account] = set()
    for table in ("invoices", "clients", "unmapped_records"):
        if table in relations:
            _, rows = r.query(f"SELECT DISTINCT provider, account FROM {t(table)}")
            found.update((str(p), str(a)) for p, a in rows)
    if "pipeline_runs" in relations:
        _, rows = r.query(
            "SELECT provider, account FROM (SELECT provider, account, status, ROW_NUMBER() OVER "
            "(PARTITION BY provider, account ORDER BY started_at DESC) AS latest "
            f"FROM {t('pipeline_runs')} WHERE status <> 'skipped') AS runs "
            "WHERE latest = 1 AND status = 'failed' AND account NOT IN ('', '-')"
        )
        found.update((str(p), str(a)) for p, a in rows)
    return found


def declared_reads(provider: str) -> Reads | None:
    """What the provider's mapping declares it reads (`Mappers.reads`); None for a provider this
    code does not know (a folder removed since its rows were loaded)."""
    from pipelines.registry import discover

    found = discover().get(provider)
    return found.api.mapping.reads if found is not None else None


class _Warehouse:
    """What the checks read, one query per table for every account at once."""

    def __init__(self, r: Reader, relations: set[str], pending: Sequence[Mapping[str, Any]] = ()) -> None:
        self.r, self.relations = r, relations
        self.pending = {
            (str(row["provider"]), str(row["account"])): row for row in pending if row["status"] in ("loaded", "failed")
        }
        self._cache: dict[str, dict[Account, Any]] = {}
        self._fx: tuple[bool, dict[Account, list[dict[str, Any]]]] | None = None

    def _columns(self, table: str) -> set[str]:
        literal, name = self.r.dataset.replace("'", "''"), table.replace("'", "''")
        _, rows = self.r.query(
            "SELECT column_name FROM information_schema.columns "
            f"WHERE table_schema = '{literal}' AND table_name = '{name}'"
        )
        return {str(x[0]).lower() for x in rows}

    def _grouped(self, key: str, load: Callable[[], list[dict[str, Any]]]) -> dict[Account, Any]:
        if key not in self._cache:
            grouped: dict[Account, list[dict[str, Any]]] = defaultdict(list)
            for row in load():
                grouped[(str(row["provider"]), str(row["account"]))].append(row)
            self._cache[key] = grouped
        return self._cache[key]

    def runs(self, provider: str, account: str) -> dict[str, Any]:
        """The account's last successful load and its latest run."""

        def load() -> list[dict[str, Any]]:
            if "pipeline_runs" not in self.relations:
                return []
            return self.r.dicts(
                "SELECT provider, account, MAX(CASE WHEN status = 'loaded' THEN finished_at END) AS last_loaded, "
                "MAX(started_at) AS last_run FROM "
                f"{self.r.table('pipeline_runs')} GROUP BY provider, account"
            )

        def latest() -> list[dict[str, Any]]:
            if "pipeline_runs" not in self.relations:
                return []
            return self.r.dicts(
                "SELECT provider, account, status, message FROM (SELECT provider, account, status, message, "
                "ROW_NUMBER() OVER (PARTITION BY provider, account ORDER BY started_at DESC) AS latest "
                f"FROM {self.r.table('pipeline_runs')} WHERE status <> 'skipped') AS runs WHERE latest = 1"
            )

        summary = dict(self._grouped("runs", load).get((provider, account), [{}])[0])
        last = self._grouped("latest", latest).get((provider, account), [{}])[0]
        now = self.pending.get((provider, account))
        if now is not None:
            last = now
            if now["status"] == "loaded":
                known = [w for w in (_when(summary.get("last_loaded")), _when(now["finished_at"])) if w is not None]
                summary["last_loaded"] = max(known, default=None)
        return {**summary, "status": last.get("status"), "message": last.get("message")}

    def listed(self, provider: str, account: str) -> list[dict[str, Any]]:
        """The account's runs that know how many invoices they listed, newest first."""

        def load() -> list[dict[str, Any]]:
            if "pipeline_runs" not in self.relations or "listed" not in self._columns("pipeline_runs"):
                return []
            return self.r.dicts(
                "SELECT provider, account, run_id, status, listed, started_at FROM (SELECT provider, account, "
                "run_id, status, listed, started_at, ROW_NUMBER() OVER (PARTITION BY provider, account "
                "ORDER BY started_at DESC) AS newest FROM "
                f"{self.r.table('pipeline_runs')} WHERE listed IS NOT NULL AND status IN ('loaded', 'failed')) "
                f"AS runs WHERE newest <= {VOLUME_RUNS * 4} ORDER BY provider, account, started_at DESC"
            )

        now = self.pending.get((provider, account))
        # The run's own row may be recorded already (each provider's outcome is, once settled).
        found = [
            r
            for r in self._grouped("listed", load).get((provider, account), [])
            if now is None or r["run_id"] != now["run_id"]
        ]
        if now is not None and now.get("listed") is not None:
            found.insert(0, now)
        return found

    def latest_run(self, provider: str, account: str) -> str | None:
        """The id of the account's latest run that loaded rows (loaded, or failed after its load)."""

        def load() -> list[dict[str, Any]]:
            if "pipeline_runs" not in self.relations:
                return []
            return self.r.dicts(
                "SELECT provider, account, MAX(run_id) AS run_id FROM "
                f"{self.r.table('pipeline_runs')} WHERE status IN ('loaded', 'failed') GROUP BY provider, account"
            )

        now = self.pending.get((provider, account))
        if now is not None:
            return str(now["run_id"])
        rows = self._grouped("latest_run", load).get((provider, account))
        return str(rows[0]["run_id"]) if rows and rows[0]["run_id"] is not None else None

    def mismatches(self, provider: str, account: str) -> dict[str, Any]:
        def load() -> list[dict[str, Any]]:
            if "invoices" not in self.relations:
                return []
            live = "deleted_at IS NULL AND " if "deleted_at" in self._columns("invoices") else ""
            return self.r.dicts(
                "SELECT provider, account, COUNT(*) AS invoices, MIN(invoice_id) AS first_id, "
                f"MAX(invoice_id) AS last_id FROM {self.r.table('invoices')} WHERE {live}"
                "ABS(total - (subtotal + tax_total + shipping_total - withholding_total)) > "
                f"CAST({TOTAL_TOLERANCE} AS DECIMAL(18, 6)) GROUP BY provider, account"
            )

        rows = self._grouped("totals", load).get((provider, account))
        return rows[0] if rows else {"invoices": 0}

    def unmapped(self, provider: str, account: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            if "unmapped_records" not in self.relations:
                return []
            return self.r.dicts(
                "SELECT provider, account, record_type, reason, COUNT(*) AS records, MIN(first_seen_at) AS since "
                f"FROM {self.r.table('unmapped_records')} GROUP BY provider, account, record_type, reason "
                "ORDER BY provider, account, COUNT(*) DESC, reason"
            )

        return self._grouped("unmapped", load).get((provider, account), [])

    def changes(self, provider: str, account: str) -> list[dict[str, Any]]:
        def load() -> list[dict[str, Any]]:
            if SCHEMA_CHANGES not in self.relations:
                return []
            return self.r.dicts(
                "SELECT provider, account, record_type, path, change, type_before, type_after, first_seen_run, "
                f"example_key FROM {self.r.table(SCHEMA_CHANGES)} ORDER BY first_seen_run, record_type, path"
            )

        return self._grouped("changes", load).get((provider, account), [])

    def fx(self, provider: str, account: str) -> dict[str, Any] | None:
        """Documents without a rate in the reporting currency, by currency; None when the views
        have no reporting-currency columns (docs/canonical-model.md, "Reporting currency")."""
        if self._fx is None:
            columns = self._columns("invoices_current") if "invoices_current" in self.relations else set()
            applies = {"total_rc", "fx_rate_date"} <= columns
            grouped: dict[Account, list[dict[str, Any]]] = defaultdict(list)
            if applies:
                currency = "reporting_currency" if "reporting_currency" in columns else "CAST(NULL AS TEXT)"
                for row in self.r.dicts(
                    f"SELECT provider, account, currency, MAX({currency}) AS reporting_currency, "
                    "COUNT(*) AS documents, SUM(CASE WHEN total_rc IS NULL AND total IS NOT NULL THEN 1 ELSE 0 END) "
                    f"AS unconverted FROM {self.r.table('invoices_current')} GROUP BY provider, account, currency"
                ):
                    grouped[(str(row["provider"]), str(row["account"]))].append(row)
            self._fx = (applies, grouped)
        applies, found = self._fx
        return {"rows": found.get((provider, account), [])} if applies else None


def _check(
    provider: str,
    account: str,
    name: str,
    passed: bool,
    observed: str,
    expected: str,
    detail: str,
    severity: str | None = None,
) -> Check:
    return Check(provider, account, name, severity or CHECKS[name], passed, observed, expected, detail)


def _when(value: Any) -> dt.datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = dt.datetime.fromisoformat(value)
    if value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def freshness(
    runs: Mapping[str, Any], settings: Settings, now: dt.datetime, who: str, provider: str, account: str
) -> Check:
    """Hours since the account's last successful load, against `max_hours_since_load`."""
    limit = settings.max_hours_since_load
    expected = f"at most {limit:g} h"
    last = _when(runs.get("last_loaded"))
    failing = ""
    if runs.get("status") == "failed" and runs.get("message"):
        failing = f"; its latest run failed: {_shorten(str(runs['message']))}"
    command = f"`billing-elt load --providers {provider}:{account}`"
    if last is None:
        return _check(
            provider,
            account,
            FRESHNESS,
            False,
            "never loaded",
            expected,
            f"{who} has no successful load recorded in pipeline_runs{failing}. Fix what its runs report, then run "
            f"{command}.",
        )
    hours = max(0.0, (now - last).total_seconds() / 3600)
    observed = f"{hours:.1f} h since {last:%Y-%m-%d %H:%M} UTC"
    if hours <= limit:
        return _check(provider, account, FRESHNESS, True, observed, expected, f"{who} was loaded {hours:.1f} h ago.")
    return _check(
        provider,
        account,
        FRESHNESS,
        False,
        observed,
        expected,
        f"{who} was last loaded successfully {hours:.1f} h ago, past the {limit:g} h limit{failing}. Check that its "
        f"scheduled load runs (cron, Dagster) and succeeds, or run {command}.",
    )


def volume(listed: Sequence[Mapping[str, Any]], settings: Settings, who: str, provider: str, account: str) -> Check:
    """The invoices the account's latest complete listing held (`pipeline_runs.listed`), against
    the median of its last `VOLUME_RUNS` successful runs that know theirs."""
    if not listed:
        return _check(
            provider,
            account,
            VOLUME,
            True,
            "no complete listing recorded",
            "-",
            f'{who} has no run that read its whole listing yet (docs/checks.md: what "listed" means): nothing '
            "to compare.",
        )
    latest, earlier = listed[0], [r for r in listed[1:] if r["status"] == "loaded"][:VOLUME_RUNS]
    count = int(latest["listed"])
    observed = f"{count:,} listed by run {latest['run_id']}"
    if not earlier:
        return _check(
            provider, account, VOLUME, True, observed, "-", f"{who}: no earlier successful run to compare with."
        )
    median = statistics.median(int(r["listed"]) for r in earlier)
    floor = (1 - settings.max_volume_drop) * median
    expected = (
        f"at least {floor:,.0f} ({1 - settings.max_volume_drop:.0%} of the median {median:,.0f} of {len(earlier)} runs)"
    )
    if count >= floor and not (count == 0 and median > 0):
        return _check(provider, account, VOLUME, True, observed, expected, f"{who} listed {count:,} invoices.")
    drop = 1 - count / median if median else 0
    what = (
        f"{who} listed no invoice although its last {len(earlier)} successful runs listed a median of {median:,.0f}"
        if count == 0
        else f"{who} listed {count:,} invoices, {drop:.0%} fewer than the median {median:,.0f} of its last "
        f"{len(earlier)} successful runs"
    )
    return _check(
        provider,
        account,
        VOLUME,
        False,
        observed,
        expected,
        f"{what}: check at the provider that the account still holds them and that its credentials and filters "
        "(workspace, state, client_ids) still see them all; if the drop is real, it passes once the median follows.",
    )


def totals(found: Mapping[str, Any], who: str, provider: str, account: str) -> Check:
    """Live invoices whose total is not subtotal + tax + shipping − withholding within 0.01."""
    count = int(found.get("invoices") or 0)
    expected = f"0 beyond {TOTAL_TOLERANCE}"
    if not count:
        return _check(provider, account, TOTALS, True, "0 invoices", expected, f"{who}: every invoice adds up.")
    examples = ", ".join(dict.fromkeys(str(found[k]) for k in ("first_id", "last_id") if found.get(k) is not None))
    return _check(
        provider,
        account,
        TOTALS,
        False,
        f"{count:,} invoices",
        expected,
        f"{count:,} invoice(s) of {who} have a total that is not subtotal + tax + shipping − withholding "
        f"(e.g. {examples}): the provider's own total is kept; check these documents at the provider.",
    )


def unmapped(found: Sequence[Mapping[str, Any]], who: str, provider: str, account: str) -> Check:
    """Records waiting in `unmapped_records`."""
    count = sum(int(r["records"]) for r in found)
    if not count:
        return _check(provider, account, UNMAPPED, True, "0 records", "0", f"{who}: every record was mapped.")
    top = found[0]
    kinds = ", ".join(sorted({f"{r['record_type']}s" for r in found}))
    return _check(
        provider,
        account,
        UNMAPPED,
        False,
        f"{count:,} records ({kinds})",
        "0",
        f'{count:,} record(s) of {who} wait in unmapped_records, most for "{_shorten(str(top["reason"]))}" '
        f"({int(top['records']):,}): correct them at the provider (the next load takes them) or adapt the "
        f"mapping and run `billing-elt remap {provider}:{account}`.",
    )


def schema_drift(
    changes: Sequence[Mapping[str, Any]],
    latest_run: str | None,
    reads: Reads | None,
    who: str,
    provider: str,
    account: str,
) -> Check:
    """An error while a field the mapping reads has vanished from the payloads (and not come
    back); a warning when the account's latest run (`latest_run`) recorded any other change."""
    back: dict[tuple[str, str], str] = {}
    for row in changes:
        if row["change"] == ADDED:
            key = (str(row["record_type"]), str(row["path"]))
            back[key] = max(back.get(key, ""), str(row["first_seen_run"]))
    gone = [
        row
        for row in changes
        if row["change"] == VANISHED
        and reads is not None
        and row["path"] in reads.of(str(row["record_type"]))
        and back.get((str(row["record_type"]), str(row["path"])), "") < str(row["first_seen_run"])
    ]
    if gone:
        paths = ", ".join(f"{r['path']} ({r['record_type']})" for r in gone)
        return _check(
            provider,
            account,
            SCHEMA_DRIFT,
            False,
            f"{len(gone)} field(s) the mapping reads vanished",
            "none",
            f"{who}: {paths} vanished from the provider's payloads (first seen by run {gone[0]['first_seen_run']}) "
            f"although the mapping reads them, so their columns are now empty or the records unmapped: adapt "
            f"sources/{provider}/mapping.py (and its READS) to the new payloads and run "
            f"`billing-elt remap {provider}:{account}`.",
            ERROR,
        )
    recent = [row for row in changes if latest_run is not None and row["first_seen_run"] == latest_run]
    if recent:
        counted: dict[str, int] = defaultdict(int)
        for row in recent:
            counted[str(row["change"])] += 1
        summary = ", ".join(f"{n} {change.replace('_', ' ')}" for change, n in sorted(counted.items()))
        first = recent[0]
        return _check(
            provider,
            account,
            SCHEMA_DRIFT,
            False,
            f"{len(recent)} change(s): {summary}",
            "none",
            f"{who}: its latest load saw the provider's payloads change ({summary}, e.g. {first['change']} "
            f"{first['path']} in {first['record_type']} {first['example_key']}); the data is kept in raw: see "
            "schema_changes, and map a new field with a mapping change and `billing-elt remap`.",
            WARNING,
        )
    return _check(provider, account, SCHEMA_DRIFT, True, "no change", "none", f"{who}: no new change in its payloads.")


def fx_coverage(found: Mapping[str, Any] | None, who: str, provider: str, account: str) -> Check:
    """Documents with no rate in the reporting currency (`invoices_current.total_rc` NULL)."""
    if found is None:
        return _check(
            provider,
            account,
            FX_COVERAGE,
            True,
            "not applicable",
            "-",
            f"{who}: the warehouse's views have no reporting-currency columns (total_rc, fx_rate_date) yet.",
        )
    rows = found["rows"]
    missing = [r for r in rows if int(r["unconverted"] or 0)]
    count = sum(int(r["unconverted"]) for r in missing)
    documents = sum(int(r["documents"] or 0) for r in rows)
    reporting = next(
        (str(r["reporting_currency"]) for r in rows if r.get("reporting_currency")), "the reporting currency"
    )
    if not count:
        return _check(
            provider,
            account,
            FX_COVERAGE,
            True,
            f"0 of {documents:,} documents",
            "0",
            f"{who}: every document has a rate to {reporting}.",
        )
    currencies = ", ".join(f"{r['currency']} {int(r['unconverted']):,}" for r in missing)
    return _check(
        provider,
        account,
        FX_COVERAGE,
        False,
        f"{count:,} of {documents:,} documents",
        "0",
        f"{count:,} document(s) of {who} have no rate to {reporting} ({currencies}): give their rates in "
        "[analysis] fx_rates_file, or keep [sources.ecb] enabled so that the latest rates are read.",
    )


def _shorten(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


# --- recording --------------------------------------------------------------------------------------

COLUMNS: dict[str, Any] = {
    "run_id": {"data_type": "text", "nullable": False},
    "checked_at": {"data_type": "timestamp", "timezone": True, "nullable": False},
    "provider": {"data_type": "text", "nullable": False},
    "account": {"data_type": "text", "nullable": False},
    "check_name": {"data_type": "text", "nullable": False},
    "severity": {"data_type": "text", "nullable": False},
    "passed": {"data_type": "bool", "nullable": False},
    "observed": {"data_type": "text"},
    "expected": {"data_type": "text"},
    "detail": {"data_type": "text"},
}


def rows(run_id: str, checked_at: dt.datetime, checks: Iterable[Check]) -> list[dict[str, Any]]:
    return [
        {
            "run_id": run_id,
            "checked_at": checked_at,
            "provider": c.provider,
            "account": c.account,
            "check_name": c.check_name,
            "severity": c.severity,
            "passed": c.passed,
            "observed": c.observed,
            "expected": c.expected,
            "detail": c.detail,
        }
        for c in checks
    ]


def resource(run_id: str, checked_at: dt.datetime, checks: Sequence[Check]) -> Any:
    """The dlt resource that appends the checks to `data_checks` (in the schema of `pipeline_runs`);
    None when there are none."""
    if not checks:
        return None
    return dlt.resource(rows(run_id, checked_at, checks), name=DATA_CHECKS, write_disposition="append", columns=COLUMNS)


def record(pipeline: dlt.Pipeline, run_id: str, checked_at: dt.datetime, checks: Sequence[Check]) -> None:
    """Append the checks to `data_checks` through dlt, in the schema of `pipeline_runs`."""
    if not checks:
        return
    found = resource(run_id, checked_at, checks)
    loading(pipeline, lambda: pipeline.run(found, schema=dlt.Schema(RUNS_SCHEMA)), DATA_CHECKS)


def lines(found: Sequence[Check]) -> list[str]:
    """The failed checks, errors first, one line each."""
    failed = sorted((c for c in found if not c.passed), key=lambda c: (c.severity != ERROR, c.provider, c.account))
    return [c.line() for c in failed]


def after_load(
    pipeline: dlt.Pipeline,
    runs: Sequence[Mapping[str, Any]],
    target: Where | None = None,
    now: dt.datetime | None = None,
) -> list[Check]:
    """The checks of the accounts a load ran (`runs`: its `pipeline_runs` rows, about to be
    written with the checks, `resource`); a failure to check is a warning, never the load's
    failure (its exit code is its own)."""
    accounts = {
        (str(row["provider"]), str(row["account"]))
        for row in runs
        if row["status"] != "skipped" and row["account"] != "-"
    }
    if not accounts:
        return []
    try:
        with pipeline_reader(pipeline) as r:
            return evaluate(r, settings(), now or dt.datetime.now(dt.UTC), accounts, pending=runs)
    except Exception as exc:
        signum = stop_signal(exc)
        if signum is not None:
            raise Stopped(signum) from None
        reason = (explain(exc, target) if target is not None else None) or redact(f"{type(exc).__name__}: {exc}")
        log.warning("the data checks could not be run: %s", reason)
        return []


def summary_lines(found: Sequence[Check]) -> list[str]:
    """Lines for the end of a load's summary (indented, as its notes)."""
    if not found:
        return []
    failed = lines(found)
    if not failed:
        return [f"  checks: all {len(found)} passed ({DATA_CHECKS})"]
    errors = sum(1 for c in found if c.fails_with_error)
    head = (
        f"  checks: {len(failed)} of {len(found)} failed ({errors} error(s)); `billing-elt check` exits 4 on an error:"
    )
    return [head, *(f"    {line}" for line in failed)]


# --- the command -----------------------------------------------------------------------------------


def check(*, pipeline_name: str | None = None) -> int:
    """`billing-elt check`: the checks of every account the warehouse holds, recorded in
    `data_checks`; each failed one printed on stdout. Returns 0, or 4 when a check of severity
    `error` failed; 2 for a wrong `[checks]` setting, 3 when another run holds the lock, 1 when
    the warehouse cannot be read or written. A misspelt or unknown configuration key is a
    warning first (pipelines/keys.py)."""
    from pipelines.lock import LockHeld
    from pipelines.run import (
        EXIT_FAILED,
        EXIT_LOCKED,
        EXIT_OK,
        EXIT_USAGE,
        cannot_lock,
        describe_target,
        locked,
        warn_unknown_keys,
        where,
    )

    warn_unknown_keys()
    try:
        chosen = settings()
        name = config.pipeline_name(pipeline_name)
        target = where(name)
    except config.UsageError as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    # A DuckDB file not created yet holds nothing; another warehouse is asked (the loads that
    # wrote it may have run elsewhere, with their own local state: Dagster's per-account pipelines).
    if target.database is not None and not target.database.exists():
        log.info("nothing to check: no load has run into %s yet", describe_target(target))
        return EXIT_OK
    try:
        with locked(target, name):
            found = _check_locked(target, name, chosen)
    except LockHeld as held:
        log.error("%s", held)
        return EXIT_LOCKED
    except Stopped as stopped:
        log.error("stopped by signal %d: the checks were not recorded; run them again", stopped.signum)
        return 128 + stopped.signum
    except OSError as exc:
        log.error("%s", explain(exc, target) or cannot_lock(exc))
        return EXIT_FAILED
    if found is None:
        return EXIT_FAILED
    for line in lines(found):
        print(line, flush=True)
    return EXIT_CHECK_FAILED if any(c.fails_with_error for c in found) else EXIT_OK


def _check_locked(target: Where, name: str, chosen: Settings) -> list[Check] | None:
    from pipelines.run import (
        cannot_open,
        check_warehouse,
        delete_loaded_packages,
        describe_target,
        finish_interrupted_load,
        make_pipeline,
        new_run_id,
        ready_to_write,
        version,
    )

    run_id = new_run_id()
    log.info(
        "billing-elt %s · check %s · %s · dataset %s · from the warehouse, no API call",
        version(),
        run_id,
        describe_target(target),
        config.dataset_name(),
    )
    working_dir = target.pipelines_dir / name
    if not ready_to_write(target, working_dir):
        return None
    try:
        pipeline = make_pipeline(name)
        check_warehouse(pipeline)
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        log.error("%s", explain(exc, target) or cannot_open(exc))
        return None
    if not finish_interrupted_load(pipeline, target):
        return None
    now = dt.datetime.now(dt.UTC)
    try:
        with pipeline_reader(pipeline) as r:
            found = evaluate(r, chosen, now)
        record(pipeline, run_id, now, found)
    except Exception as exc:
        if stop_signal(exc) is not None:
            raise Stopped(stop_signal(exc) or 2) from None
        log.error("the checks could not be run or recorded: %s", explain(exc, target) or redact(str(exc)))
        return None
    delete_loaded_packages(working_dir)
    if not found:
        log.info("nothing to check: %s holds no provider account yet", describe_target(target))
        return found
    failed = [c for c in found if not c.passed]
    errors = sum(1 for c in found if c.fails_with_error)
    accounts = len({(c.provider, c.account) for c in found})
    log.info(
        "checks of run %s: %d check(s) of %d account(s), %d failed (%d error(s)); recorded in %s",
        run_id,
        len(found),
        accounts,
        len(failed),
        errors,
        DATA_CHECKS,
    )
    return found
