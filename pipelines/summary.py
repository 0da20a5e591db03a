"""How a run's outcome is told: one line per provider account, then what was skipped and why,
and each failure explained in one paragraph."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TypeVar

from dlt.common.configuration.exceptions import ConfigFieldMissingException

from sources.shared import stats as run_stats
from sources.shared.errors import BillingError
from sources.shared.provider import Provider
from sources.shared.redact import redact

E = TypeVar("E", bound=BaseException)


@dataclass
class Outcome:
    """How one provider's run ended."""

    provider: str
    status: str  # loaded | failed | skipped
    account: str = ""
    message: str = ""
    stats: run_stats.RunStats | None = None
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None

    def count(self, name: str) -> int:
        """One of the run's counters; a failed account's rows are those its committed loads hold,
        not those it read before failing."""
        if self.stats is None:
            return 0
        if self.status == "failed" and name in run_stats.ROWS:
            return self.stats.committed.get(name, 0)
        return int(getattr(self.stats, name, 0) or 0)


def find_cause(exc: BaseException, kind: type[E]) -> E | None:
    """The first exception of `kind` in `exc`'s chain: causes, contexts, and the exception a
    dlt `PipelineStepFailed` wraps."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [exc]
    while stack:
        current = stack.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, kind):
            return current
        stack.extend([current.__cause__, current.__context__, getattr(current, "exception", None)])
    return None


def describe_failure(provider: Provider, exc: BaseException) -> str:
    """A one-paragraph, redacted explanation of why a provider failed."""
    billing_error = find_cause(exc, BillingError)
    if billing_error is not None:
        return billing_error.describe()
    missing = find_cause(exc, ConfigFieldMissingException)
    if missing is not None:
        keys = ", ".join(provider.env(f) for f in missing.fields)
        return f"{provider.name}: missing configuration {keys} (or [sources.{provider.name}] in .dlt/)"
    return redact(f"{provider.name}: {type(exc).__name__}: {exc}")


def summary_lines(outcomes: Iterable[Outcome], run_id: str | None = None) -> list[tuple[int, str]]:
    """The end-of-run table, one line per provider, then skipped rows and failures explained,
    each line with its log level: a failed account's explanation is an error (what `grep ERROR`
    on a cron log finds), the rest is information. The first line is `Summary` (with the run id
    when given)."""
    header = (
        "provider",
        "account",
        "status",
        "clients",
        "invoices",
        "lines",
        "unchanged",
        "requests",
        "retries",
        "time",
    )
    rows: list[tuple[str, ...]] = [header]
    notes: list[tuple[int, str]] = []
    for o in outcomes:
        s = o.stats
        if s is not None:
            rows.append(
                (
                    o.provider,
                    o.account or s.account or "-",
                    o.status,
                    *(
                        f"{o.count(name):,}"
                        for name in ("clients", "invoices", "lines", "unchanged", "requests", "retries")
                    ),
                    f"{s.duration:.1f}s",
                )
            )
            for reason, count in sorted(s.skipped.items()):
                examples = ", ".join(s.skipped_examples.get(reason, []))
                example = f" (e.g. {examples})" if examples else ""
                notes.append((logging.INFO, f"  {o.provider}: skipped {count:,} — {reason}{example}"))
            if s.mismatches:
                notes.append(
                    (
                        logging.INFO,
                        f"  {o.provider}: {s.mismatches:,} invoice(s) whose own figures disagree with "
                        "subtotal + tax + shipping − withholding; the provider's total was kept",
                    )
                )
        else:
            rows.append((o.provider, o.account or "-", o.status, "", "", "", "", "", "", ""))
        if o.message:
            level = logging.ERROR if o.status == "failed" else logging.INFO
            note = f"  {o.message}" if o.message.startswith(o.provider) else f"  {o.provider}: {o.message}"
            notes.append((level, note))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    title = f"Summary of run {run_id}" if run_id else "Summary"
    return [(logging.INFO, line) for line in (title, *lines)] + notes
