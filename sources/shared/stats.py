"""Counters a person can follow during a long run, and the summary printed at its end."""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sources.shared.deletions import Listed


ROWS = ("invoices", "lines", "clients", "unchanged", "unmapped")
"""The counters of rows handed to the loader, which a failed load does not commit."""


@dataclass
class RunStats:
    """What one provider's run did. Thread-safe: worker threads update it while it is printed.

    Attributes:
        provider, account: whose run this is.
        clients_total: clients to visit, once known.
        clients_done: clients whose invoices were fully listed.
        invoices, lines, clients: rows handed to the loader.
        unchanged: invoices seen but not rewritten because their update cursor did not move.
        requests, retries: HTTP calls made and retried.
        skipped: reason → count, for everything not loaded (reported, never silent).
        mismatches: invoices whose own figures disagree with the total rule.
        deleted: rows marked deleted after the load (docs/canonical-model.md, "Deletions").
        listed: what the run's listings held, to find deletions; None until the account is known.
        committed: the row counters as they were when the run's last load was committed
            (`commit`): what a failed run really left in the warehouse.
        listed_invoices: how many invoices the run's listings held, when it read them all (every
            page of every scope, no change filter); None otherwise (docs/checks.md, `volume`).
    """

    provider: str
    account: str = ""
    clients_total: int | None = None
    clients_done: int = 0
    invoices: int = 0
    lines: int = 0
    clients: int = 0
    unchanged: int = 0
    requests: int = 0
    retries: int = 0
    mismatches: int = 0
    unmapped: int = 0
    deleted: int = 0
    listed: Listed | None = None
    listed_invoices: int | None = None
    skipped: Counter[str] = field(default_factory=Counter)
    skipped_examples: dict[str, list[str]] = field(default_factory=dict)
    started: float = field(default_factory=time.monotonic)
    finished: float | None = None
    committed: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        """Add to one or more counters atomically: `stats.add(requests=1)`."""
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def commit(self) -> None:
        """The rows counted so far are in the warehouse: a load of them was committed."""
        with self._lock:
            self.committed = {name: getattr(self, name) for name in ROWS}

    def skip(self, reason: str, example: str | None = None) -> None:
        """Count something not loaded, with a reason and an example id for the summary."""
        with self._lock:
            self.skipped[reason] += 1
            examples = self.skipped_examples.setdefault(reason, [])
            if example is not None and len(examples) < 5:
                examples.append(example)

    @property
    def duration(self) -> float:
        return (self.finished or time.monotonic()) - self.started

    def progress_line(self) -> str:
        """One line: clients done of total, rows, requests and retries so far."""
        total = "?" if self.clients_total is None else f"{self.clients_total:,}"
        parts = [
            f"clients {self.clients_done:,}/{total}",
            f"invoices {self.invoices:,}",
            f"lines {self.lines:,}",
            f"requests {self.requests:,}",
            f"retries {self.retries:,}",
        ]
        if self.unchanged:
            parts.insert(2, f"unchanged {self.unchanged:,}")
        skipped = sum(self.skipped.values())
        if skipped:
            parts.append(f"skipped {skipped:,}")
        return f"{self.provider} [{self.account}] " + " · ".join(parts) + f" · {self.duration:.0f}s"


_current: dict[tuple[str, str], RunStats] = {}
_latest: dict[str, RunStats] = {}
_current_lock = threading.Lock()


def start_run(provider: str, account: str) -> RunStats:
    """Create the stats of one provider account's run and make them visible to the progress
    printer. `account` is the label the run starts with ("" where the API tells it later)."""
    stats = RunStats(provider, account)
    with _current_lock:
        _current[(provider, account)] = stats
        _latest[provider] = stats
    return stats


def current(provider: str, account: str | None = None) -> RunStats | None:
    """The stats of the latest run in this process of the provider's account `account` (the label
    it started with), or of the provider's latest account run when `account` is None."""
    with _current_lock:
        if account is None:
            return _latest.get(provider)
        return _current.get((provider, account))


def of_provider(provider: str) -> list[RunStats]:
    """The stats of every account run of the provider in this process, oldest first."""
    with _current_lock:
        return [s for (p, _), s in _current.items() if p == provider]


def forget(provider: str, account: str | None = None) -> None:
    """Forget the stats of one account's run, or of every account of the provider (None)."""
    with _current_lock:
        for key in [k for k in _current if k[0] == provider and (account is None or k[1] == account)]:
            del _current[key]
        latest = _latest.get(provider)
        if latest is not None and (account is None or latest.account == account):
            del _latest[provider]
