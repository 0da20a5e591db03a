"""One provider account's run, kept apart from the accounts running beside it (docs/dagster.md,
"Running many accounts with Dagster").

Each account runs through `pipelines.run.load`, the code of `billing-elt load --providers
provider:label`, with three things of its own so that hundreds can run at once into one warehouse:

- its own dlt pipeline, `<pipeline_name>_<provider>_<label>` (`billing_kitchen_eu`): its local
  state folder in the pipelines dir, its run lock beside that folder (`pipelines/lock.py`), and its
  pipeline state in the warehouse (`_dlt_pipeline_state`, restored from there when a run starts on
  a machine without the folder). With one pipeline for every account, the second account to start
  would find the lock held and exit 3;
- its own staging dataset for merges (`billing_staging_kitchen_eu`): dlt empties a staging table
  before every load into it, so two accounts sharing `billing_staging` would delete each other's
  rows between their staging insert and their merge, and an account's cursor would move past
  rows that never reached the tables. A DuckDB warehouse keeps the shared `billing_staging`: its
  writers take turns (below);
- for a DuckDB file, one writer at a time: DuckDB lets one process write a file. Accounts queue on
  `<file>.writers.lock.run` beside it and run one after another (each then takes the run lock as
  the command line does), instead of finding the run lock held and failing at random.

Nothing here knows a provider: the accounts come from `pipelines.config`, as for the command line.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from pipelines import config, run
from pipelines.lock import SUFFIX, LockHeld, RunLock
from pipelines.registry import discover
from sources.shared.redact import RedactingFilter, redact

log = logging.getLogger("billing.run")

WRITERS_SUFFIX = ".writers" + SUFFIX
WAIT_POLL_SECONDS = 0.5
WAIT_LOG_EVERY_SECONDS = 60.0
_SLUG_MAX = 40
_PLAIN_KEY = re.compile(r"^[a-z0-9]+:[a-z0-9]+(_[a-z0-9]+)*$")


def configured_accounts() -> list[str]:
    """`provider:label` of every account that configuration sets up (its secrets and required keys
    set), in the order `billing-elt load` runs them; `PROVIDERS` narrows them as it does there.

    Raises:
        config.UsageError: the configuration is wrong (a malformed label, two stanzas of one account).
    """
    providers = discover()
    selected, wanted, _ = config.select_accounts(providers, os.environ.get("PROVIDERS"))
    return [
        account.name
        for provider in selected
        for account in config.choose_accounts(provider, wanted.get(provider.name))
        if config.account_not_configured(account) is None
    ]


def slug(key: str) -> str:
    """`kitchen_eu` for `kitchen:eu`: lower-case letters, digits and single `_` only, a name every
    destination takes as it is (dlt would rewrite `__` in a dataset name). A key that does not map
    one to one (`kitchen:acme-eu`, a provider name with `_`) or is long gets a short hash of
    itself, so two accounts never share a name."""
    if _PLAIN_KEY.match(key) and len(key) <= _SLUG_MAX:
        return key.replace(":", "_", 1)
    cleaned = re.sub(r"[^a-z0-9]+", "_", key.lower()).strip("_")[:_SLUG_MAX]
    return f"{cleaned}_{hashlib.sha1(key.encode()).hexdigest()[:6]}"


def pipeline_name_for(key: str) -> str:
    """The dlt pipeline of one account: `<pipeline_name>_<provider>_<label>` (`billing_kitchen_eu`).
    `PIPELINE_NAME=<it> billing-elt reset provider:label` resets what these runs loaded."""
    return f"{config.pipeline_name()}_{slug(key)}"


def staging_layout_for(key: str) -> str:
    """dlt's `staging_dataset_name_layout` of one account: `%s_staging_<provider>_<label>`."""
    return f"%s_staging_{slug(key)}"


def is_duckdb() -> bool:
    return run.where().database is not None


def writers_lock_path() -> Path | None:
    """`<file>.writers.lock.run` beside the DuckDB warehouse file; None for other destinations."""
    database = run.where().database
    return None if database is None else database.with_name(database.name + WRITERS_SUFFIX)


@contextmanager
def one_duckdb_writer(key: str, command: str) -> Iterator[None]:
    """For a DuckDB warehouse, wait until no other account writes the file, then hold the turn for
    the block; for any other destination, nothing. Waiting is logged when it starts and every
    minute after. A lock that cannot be created is left to the run, which explains it."""
    path = writers_lock_path()
    if path is None:
        yield
        return
    turn = RunLock(path)
    started, said = time.monotonic(), -WAIT_LOG_EVERY_SECONDS
    while True:
        try:
            turn.acquire(command)
            break
        except LockHeld as held:
            waited = time.monotonic() - started
            if waited - said >= WAIT_LOG_EVERY_SECONDS:
                said = waited
                log.info(
                    "%s waits for its turn: DuckDB lets one process write %s, and %s is writing it (waited %.0f s)",
                    key,
                    path.name.removesuffix(WRITERS_SUFFIX),
                    _holder(held.holder),
                    waited,
                )
            time.sleep(WAIT_POLL_SECONDS)
        except OSError:
            yield
            return
    if time.monotonic() - started >= WAIT_POLL_SECONDS:
        log.info("%s has its turn on the DuckDB warehouse after %.1f s", key, time.monotonic() - started)
    try:
        yield
    finally:
        turn.release()


def _holder(holder: Mapping[str, Any]) -> str:
    return str(holder.get("command") or "another account")


@contextmanager
def staging_apart(key: str) -> Iterator[None]:
    """The account's own staging dataset for the block (not for DuckDB, whose writers take turns),
    through dlt's `destination.<name>.staging_dataset_name_layout`, set in the environment for the
    block only (the environment wins over .dlt/ files)."""
    if is_duckdb():
        yield
        return
    name = config.destination_type().rsplit(".", 1)[-1].upper()
    variable = f"DESTINATION__{name}__STAGING_DATASET_NAME_LAYOUT"
    before = os.environ.get(variable)
    os.environ[variable] = staging_layout_for(key)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(variable, None)
        else:
            os.environ[variable] = before


class _Collect(logging.Handler):
    """Keeps the run's error paragraphs and forwards every line to `say` (an orchestrator's log)."""

    def __init__(self, say: Callable[[int, str], None] | None) -> None:
        super().__init__(logging.INFO)
        self.say = say
        self.errors: list[str] = []
        self.addFilter(RedactingFilter())

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if record.levelno >= logging.ERROR:
            self.errors.append(message)
        if self.say is not None:
            self.say(record.levelno, message)


@contextmanager
def _collected(say: Callable[[int, str], None] | None) -> Iterator[_Collect]:
    handler = _Collect(say)
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        log.setLevel(level)


@dataclass
class AccountRun:
    """How one account's run ended: the exit code of `billing-elt load` and what it reported."""

    key: str
    pipeline_name: str
    code: int
    report: run.RunReport
    errors: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.code == run.EXIT_OK

    @property
    def message(self) -> str:
        """The one paragraph that says why the account failed ("" when it loaded)."""
        if self.ok:
            return ""
        failed = [o.message for o in self.report.outcomes if o.status == "failed" and o.message]
        text = " ".join(failed or self.errors)
        return redact(text or f"{self.key}: the load ended with exit code {self.code} (docs/configuration.md)")

    def metadata(self) -> dict[str, Any]:
        """The run summary of the account: status, rows per table, unmapped, new invoice history rows,
        run id, destination."""
        outcome = next(iter(self.report.outcomes), None)
        stats = outcome.stats if outcome is not None else None

        def count(name: str) -> int:
            return int(getattr(stats, name, 0) or 0) if stats is not None else 0

        status = outcome.status if outcome is not None else "failed"
        return {
            "status": status if self.ok or status != "loaded" else "failed",
            "account": (outcome.account if outcome is not None else "") or self.key,
            "run_id": self.report.run_id,
            "destination": self.report.destination,
            "pipeline_name": self.pipeline_name,
            "invoices": count("invoices"),
            "invoice_items": count("lines"),
            "clients": count("clients"),
            "unchanged": count("unchanged"),
            "unmapped": count("unmapped"),
            "deleted": count("deleted"),
            # States this run added to the account's invoice history (pipelines/history.py).
            "history_rows": self.report.history_rows.get((outcome.provider, outcome.account), 0) if outcome else 0,
            "requests": count("requests"),
            "retries": count("retries"),
            "exit_code": self.code,
            **({"message": self.message} if not self.ok else {}),
        }


def progress_interval() -> float:
    """`PROGRESS_INTERVAL` as for the command line (seconds between progress lines, 0: none)."""
    try:
        return float(os.environ.get("PROGRESS_INTERVAL", config.DEFAULT_PROGRESS_INTERVAL))
    except ValueError:
        return config.DEFAULT_PROGRESS_INTERVAL


def run_account(
    key: str,
    *,
    say: Callable[[int, str], None] | None = None,
    command: str = "dagster",
    transports: Mapping[str, httpx.BaseTransport] | None = None,
) -> AccountRun:
    """Run the one account `key` (`provider:label`) as `billing-elt load --providers key` does,
    in its own pipeline and staging dataset, taking its turn on a DuckDB file. `say(level, line)`
    receives every line of the run (the header, progress, the summary, each failure's paragraph)."""
    report = run.RunReport()
    with _collected(say) as collected:
        name = pipeline_name_for(key)
        try:
            with one_duckdb_writer(key, command), staging_apart(key):
                code = run.load(
                    key, pipeline_name=name, progress_interval=progress_interval(), transports=transports, report=report
                )
        except config.UsageError as exc:  # from reading where the warehouse is, before the run
            log.error("%s", exc)
            code = run.EXIT_USAGE
    return AccountRun(key, name, code, report, collected.errors)
