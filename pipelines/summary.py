"""How a run's outcome is told: one line per provider account, then what was skipped and why,
and each failure explained in one paragraph."""

from __future__ import annotations

import datetime as dt
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


def format_summary(outcomes: Iterable[Outcome], run_id: str | None = None) -> str:
    """The end-of-run table: one line per provider, then skipped rows and failures explained.
    The first line is `Summary` (with the run id when given)."""
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
    notes: list[str] = []
    for o in outcomes:
        s = o.stats
        if s is not None:
            rows.append(
                (
                    o.provider,
                    o.account or s.account or "-",
                    o.status,
                    f"{s.clients:,}",
                    f"{s.invoices:,}",
                    f"{s.lines:,}",
                    f"{s.unchanged:,}",
                    f"{s.requests:,}",
                    f"{s.retries:,}",
                    f"{s.duration:.1f}s",
                )
            )
            for reason, count in sorted(s.skipped.items()):
                examples = ", ".join(s.skipped_examples.get(reason, []))
                example = f" (e.g. {examples})" if examples else ""
                notes.append(f"  {o.provider}: skipped {count:,} — {reason}{example}")
            if s.mismatches:
                notes.append(
                    f"  {o.provider}: {s.mismatches:,} invoice(s) whose own figures disagree with "
                    "subtotal + tax + shipping − withholding; the provider's total was kept"
                )
        else:
            rows.append((o.provider, o.account or "-", o.status, "", "", "", "", "", "", ""))
        if o.message:
            notes.append(f"  {o.message}" if o.message.startswith(o.provider) else f"  {o.provider}: {o.message}")
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    title = f"Summary of run {run_id}" if run_id else "Summary"
    return "\n".join([title, *lines, *notes])
