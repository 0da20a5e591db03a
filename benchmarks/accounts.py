"""Many accounts: `Scale.accounts` accounts of one provider loaded by the pipeline's `load` (what
`billing-elt load` runs), one account at a time (`account_concurrency` 1) and eight at once
(`account_concurrency` 8).

Every account is a `[sources.<provider>.accounts.<label>]` stanza, given as environment variables
`SOURCES__<P>__ACCOUNTS__<LABEL>__<KEY>` (docs/configuration.md, "Several accounts of one
provider"), each pointing at its own sandbox (one port each, all in one sandbox process, the same
latency on every response). Both runs start from an empty warehouse and read the same accounts;
what they loaded is checked against each account's own summary from its sandbox.
"""

from __future__ import annotations

import datetime as dt
import importlib
import math
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from benchmarks.common import (
    Scale,
    Section,
    Timer,
    check,
    environ,
    fmt_int,
    fmt_s,
    fmt_x,
    provider,
    query,
    workdir,
)
from benchmarks.serve import SandboxProcess
from pipelines.run import load
from sandbox.server import available

# The provider measured. Fohlio reads its account-wide listings page after page (no requests of
# one account overlap), so an account's time is its requests × the latency and only account
# concurrency overlaps them; and a stanza without `account` takes its label as account value
# (docs/configuration.md, "Several accounts of one provider"), so the accounts need nothing but
# their sandbox's own configuration. The sandbox package sizes an account (`bench_options`).
PROVIDER = "fohlio"
CONCURRENCY = 8
TITLE = "5. Many accounts"
TABLES = ("invoices", "invoice_items", "clients")


@dataclass
class AccountsRun:
    concurrency: int
    wall: float  # the whole `load` call
    span: float  # first account's start to last account's finish, from billing.pipeline_runs
    requests: int  # what the sandboxes answered
    rows: tuple[int, int, int]  # invoices, lines, clients in the warehouse
    total: Decimal


def label(i: int) -> str:
    return f"a{i + 1:02d}"


def accounts_env(sandbox: SandboxProcess) -> dict[str, str]:
    """Every served account as an account stanza `a01`, `a02`, ... in environment variables."""
    source = provider(PROVIDER)
    return {
        source.env(key, label(i)): str(value)
        for i, account in enumerate(sandbox.accounts)
        for key, value in account["config"].items()
        if value is not None
    }


def _check_accounts(
    db: Path, summaries: list[dict[str, Any]], concurrency: int
) -> tuple[tuple[int, int, int], Decimal]:
    """Each account's rows equal its sandbox's summary; every account loaded. Returns the totals."""
    where = f"WHERE provider = '{PROVIDER}'"
    found: dict[str, list[int]] = {}
    for n, table in enumerate(TABLES):
        for account, count in query(db, f"SELECT account, count(*) FROM billing.{table} {where} GROUP BY 1"):
            found.setdefault(account, [0, 0, 0])[n] = count
    totals: dict[tuple[str, str], Decimal] = {
        (a, c): Decimal(t)
        for a, c, t in query(db, f"SELECT account, currency, sum(total) FROM billing.invoices {where} GROUP BY 1, 2")
    }
    statuses = dict(query(db, f"SELECT account, status FROM billing.pipeline_runs {where}"))
    run = f"accounts (concurrency {concurrency})"
    check(len(found) == len(summaries), f"{run}: rows of {len(found)} accounts, {len(summaries)} served")
    for i, summary in enumerate(summaries):
        name = label(i)
        expected = [summary["invoices"], summary["lines"], summary["clients"]]
        check(found.get(name) == expected, f"{run}: account {name} loaded {found.get(name)}, served {expected}")
        served_totals = {c: Decimal(str(t)) for c, t in summary["totals"].items()}
        loaded_totals = {c: t for (a, c), t in totals.items() if a == name}
        check(loaded_totals == served_totals, f"{run}: account {name} totals {loaded_totals} != {served_totals}")
        check(statuses.get(name) == "loaded", f"{run}: account {name} is {statuses.get(name)!r} in pipeline_runs")
    rows = tuple(sum(f[n] for f in found.values()) for n in range(3))
    return (rows[0], rows[1], rows[2]), sum(totals.values(), Decimal(0))


def _span(db: Path) -> float:
    """Seconds from the first account's start to the last one's finish (billing.pipeline_runs)."""
    started, finished = query(
        db, f"SELECT min(started_at), max(finished_at) FROM billing.pipeline_runs WHERE provider = '{PROVIDER}'"
    )[0]
    check(isinstance(started, dt.datetime) and isinstance(finished, dt.datetime), "accounts: no pipeline_runs rows")
    return (finished - started).total_seconds()


def load_accounts(sandbox: SandboxProcess, concurrency: int) -> AccountsRun:
    """One run of `load` over every account into a fresh warehouse and dlt state, configured by
    environment variables as the CLI is; checked against the sandboxes."""
    with workdir("accounts-") as work:
        sandbox.clear()
        env = {**accounts_env(sandbox), "ACCOUNT_CONCURRENCY": str(concurrency), "PROVIDERS": PROVIDER}
        env["SOURCES__ECB__ENABLED"] = "false"  # the reference rates from the shipped history, no request to the ECB
        env.update(
            PIPELINES_DIR=str(work / "pipelines"), DESTINATION__DUCKDB__CREDENTIALS=str(work / "warehouse.duckdb")
        )
        # The shell's own settings of the provider would add accounts or change these.
        with environ(env, unset_prefix=f"SOURCES__{PROVIDER.upper()}__"), Timer() as timer:
            code = load(PROVIDER, progress_interval=0)
        check(code == 0, f"accounts (concurrency {concurrency}): the load exited {code}")
        requests = int(sandbox.stats()["requests"])
        db = work / "warehouse.duckdb"
        rows, total = _check_accounts(db, sandbox.summaries(), concurrency)
        return AccountsRun(concurrency, timer.seconds, _span(db), requests, rows, total)


def run(scale: Scale) -> Section:
    if scale.accounts < 1:
        return Section(f"{TITLE}: skipped, BENCH_ACCOUNTS is 0", [], [])
    sizing = importlib.import_module(available()[PROVIDER].__module__).bench_options
    options = sizing(scale.account_clients)
    with SandboxProcess(PROVIDER, latency=scale.latency, accounts=[{}] * scale.accounts, **options) as sandbox:
        runs = [load_accounts(sandbox, c) for c in (1, CONCURRENCY)]
    one, many = runs
    check(many.requests == one.requests, f"accounts: {many.requests} requests at {CONCURRENCY}, {one.requests} at 1")
    check(many.rows == one.rows and many.total == one.total, f"accounts: {many.rows} rows at {CONCURRENCY}, {one.rows}")
    rounds = math.ceil(scale.accounts / CONCURRENCY)
    ideal = scale.accounts / rounds
    speedup, span_speedup = one.wall / many.wall, one.span / many.span
    rows = [
        [
            f"account_concurrency = {r.concurrency}",
            fmt_int(scale.accounts),
            fmt_int(r.requests),
            " / ".join(fmt_int(n) for n in r.rows),
            fmt_s(r.wall),
            fmt_s(r.span),
            "1x" if r is one else f"{fmt_x(speedup)} (accounts alone {fmt_x(span_speedup)})",
            "1x" if r is one else f"{fmt_x(ideal)} ({scale.accounts} accounts in {rounds} rounds of ≤ {CONCURRENCY})",
        ]
        for r in runs
    ]
    per_account = one.requests / scale.accounts
    notes = [
        f"{scale.accounts} {provider(PROVIDER).title} accounts (stanzas `[sources.{PROVIDER}.accounts.a01]` … "
        f"as `SOURCES__{PROVIDER.upper()}__ACCOUNTS__A01__*` variables), each served by a sandbox of its own "
        f"({scale.latency * 1000:.0f} ms added to every response; all on one port each in one process) and "
        f"read page after page: {per_account:,.0f} requests per account. Each run is the pipeline's `load` "
        "(what `billing-elt load` runs, configured by environment variables) into an empty warehouse.",
        "Wall = the whole `load` (opening the warehouse, the run record and the views included); accounts = the "
        "first account's start to the last one's finish in `billing.pipeline_runs`. At concurrency 1 each "
        "account is its own extract, normalize and load; at 8 the accounts are extracted together and "
        "normalized and loaded once.",
        f"Ideal speed-up: {scale.accounts} accounts take {rounds} rounds of at most {CONCURRENCY} at once, "
        f"{fmt_x(ideal)} when every account takes the same time.",
        "Checked before reporting: both runs answered the same requests and loaded the same rows; every "
        "account's invoice, line and client counts and totals per currency equal its sandbox's own summary, "
        "and every account is `loaded` in `billing.pipeline_runs`.",
    ]
    return Section(
        f"{TITLE}: {scale.accounts} {provider(PROVIDER).title} accounts, {scale.latency * 1000:.0f} ms per request",
        [
            "run",
            "accounts",
            "requests",
            "rows (invoices / lines / clients)",
            "wall",
            "accounts, first start → last finish",
            "speed-up",
            "ideal speed-up",
        ],
        rows,
        notes,
    )
