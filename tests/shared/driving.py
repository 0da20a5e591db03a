"""Running the shared driver at its own seam: one account of a provider against its sandbox served
in-process, the account's state in a plain dict, the Arrow tables it yields read back.

No dlt pipeline and no warehouse: `account_batches` is consumed directly, the way a dlt extract
would consume it, so a test sees exactly what the driver hands dlt and what it leaves in state.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from dataclasses import dataclass, field
from types import ModuleType, SimpleNamespace
from typing import Any

import httpx
import pyarrow as pa

from sandbox.framework import App
from sources.shared.declaration import REQUIRED, Api
from sources.shared.deletions import Listed
from sources.shared.driver import Account, DictStates, account_batches
from sources.shared.provider import Provider
from sources.shared.stats import RunStats, current
from sources.shared.sweep import BATCH_END


def values(provider: Provider, app: App | None = None, **given: Any) -> dict[str, Any]:
    """Every setting of `provider` from its defaults, the sandbox's configuration and `given`,
    without reading dlt's configuration (so nothing of the developer's environment leaks in)."""
    found = {s.name: (None if s.default is REQUIRED else s.default) for s in provider.settings}
    if app is not None:
        found.update(app.config("http://sandbox.test"))
    found.update(given)
    return found


def account_of(
    provider: Provider, app: App, transport: httpx.BaseTransport | None = None, **given: Any
) -> tuple[Api, Account]:
    """The provider's `Api` and `Account` for the sandbox `app`, its requests carried in-process
    (with no proactive request budget unless one is given: the sandboxes answer at once)."""
    api, account = provider.account(values(provider, app, **{"requests_per_minute": 0, **given}))
    return api, dataclasses.replace(account, transport=transport or app.transport())


def table_name(item: Any) -> str:
    """The table a dlt-marked item goes to."""
    meta = item.meta
    name = getattr(meta, "table_name", None) or meta.hints["table_name"]
    return str(name)


@dataclass
class Batch:
    """The items of one batch, by table."""

    tables: dict[str, list[pa.Table]] = field(default_factory=dict)

    def add(self, item: Any) -> None:
        assert isinstance(item.data, pa.Table), item
        self.tables.setdefault(table_name(item), []).append(item.data)

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [row for data in self.tables.get(table, []) for row in data.to_pylist()]


@dataclass
class Ran:
    """What one run of an account yielded and counted."""

    batches: list[Batch]
    stats: RunStats

    def rows(self, table: str) -> list[dict[str, Any]]:
        return [row for batch in self.batches for row in batch.rows(table)]

    def ids(self, table: str = "invoices", column: str = "invoice_id") -> list[str]:
        return [str(row[column]) for row in self.rows(table)]

    def unmapped(self) -> dict[str, dict[str, Any]]:
        """`unmapped_records` rows by record key (tombstones included)."""
        return {str(row["record_key"]): row for row in self.rows("unmapped_records")}

    @property
    def listed(self) -> Listed:
        assert self.stats.listed is not None
        return self.stats.listed


def run(api: Api, account: Account, states: dict[str, Any]) -> Ran:
    """Run one account to the end (every batch), its state in `states`."""
    batches = [Batch()]
    for item in account_batches(api, account, DictStates(states)):
        if item is BATCH_END:
            batches.append(Batch())
        else:
            batches[-1].add(item)
    stats = current(api.provider)
    assert stats is not None
    return Ran(batches, stats)


def stop(stream: Iterator[Any]) -> None:
    """Stop a run where it stands, as a failed or killed extract does (the generator closed)."""
    assert isinstance(stream, Generator)
    stream.close()


def inputs(row: Mapping[str, Any]) -> Any:
    """A row's `_mapping_inputs`, decoded."""
    text = row["_mapping_inputs"]
    return None if text is None else json.loads(text)


@dataclass(frozen=True)
class Sent:
    method: str
    path: str
    params: dict[str, list[str]]


class Recording(httpx.BaseTransport):
    """Carries requests to `inner` and notes each in `events` (shared with a consumer that notes
    the items it receives), so a test sees what was asked for before what was yielded."""

    def __init__(self, inner: httpx.BaseTransport, events: list[Any] | None = None) -> None:
        self.inner = inner
        self.events: list[Any] = [] if events is None else events
        self._lock = threading.Lock()
        self.before: Callable[[httpx.Request], None] | None = None
        self.after: Callable[[httpx.Request, httpx.Response], None] | None = None

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        params: dict[str, list[str]] = {}
        for key, value in request.url.params.multi_items():
            params.setdefault(key, []).append(value)
        with self._lock:
            self.events.append(Sent(request.method, request.url.path, params))
        if self.before is not None:
            self.before(request)
        response = self.inner.handle_request(request)
        if self.after is not None:
            self.after(request, response)
        return response

    def sent(self, path: str | None = None) -> list[Sent]:
        return [e for e in self.events if isinstance(e, Sent) and (path is None or e.path == path)]


class Clock:
    """The driver's clock (`time.time` in sources/shared/driver.py), moved by the test."""

    def __init__(self, start: float) -> None:
        self.now = start

    def advance(self, delta: dt.timedelta) -> None:
        self.now += delta.total_seconds()

    def module(self) -> ModuleType:
        return SimpleNamespace(time=lambda: self.now)  # type: ignore[return-value]
