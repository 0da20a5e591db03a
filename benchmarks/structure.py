"""What describing stored payloads for `schema_changes` costs per invoice (sources/shared/structure.py).

    python -m benchmarks.structure            # 3,000 invoices per provider
    BENCH_N=30000 python -m benchmarks.structure

For InvoiceXpress (the load benchmark's pages, benchmarks/pages.py) and Kitchen (its sandbox's
listing pages), each page is split into records as the API client does and decoded; then, per
page, the shared `RecordWriter` maps and writes it into Arrow batches (what a load does per record
before dlt writes parquet), with and without the structure observer, and the observer alone.
Times are CPU seconds of this process (`time.process_time`), the best of several passes, so that
other work on the machine weighs as little as it can. `warm` is a run past its first pages (the
shape cache filled); `cold` a fresh observer on every pass.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from typing import Any

import httpx

from benchmarks.common import provider
from benchmarks.pages import generate
from sources.shared.declaration import Api, Context
from sources.shared.driver import RecordWriter
from sources.shared.model import TableWriter
from sources.shared.records import Record, split_page
from sources.shared.stats import RunStats
from sources.shared.structure import Observer

PASSES = 7


def invoicexpress_pages(n: int) -> list[list[Record]]:
    pages = generate(n, (3, 7))
    return [split_page(path.read_bytes(), "invoices")[1] or [] for path in pages.files]


def kitchen_pages(n: int) -> list[list[Record]]:
    from sandbox import kitchen

    app = kitchen.create_app(invoices=n, clients=max(1, n // 20), fixtures=False)
    client = httpx.Client(transport=app.transport(), base_url="http://sandbox")
    headers = {"Authorization": f"Bearer {app.api_key}", "Accept": "application/json"}
    pages: list[list[Record]] = []
    page = 1
    while True:
        body = client.get("/api/invoices", params={"page": page, "per_page": 100, "state": "all"}, headers=headers)
        records = split_page(body.content, "data")[1] or []
        if not records:
            return pages
        pages.append(records)
        page += 1


def best(work: Callable[[], Any], invoices: int) -> float:
    """µs of CPU per invoice: the best of `PASSES` passes."""
    seconds = []
    for _ in range(PASSES):
        started = time.process_time()
        work()
        seconds.append(time.process_time() - started)
    return min(seconds) / invoices * 1e6


def measure(name: str, pages: list[list[Record]]) -> dict[str, float]:
    api: Api = provider(name).api
    invoices = sum(len(p) for p in pages)
    for records in pages:
        for record in records:
            record.value  # decoded once, as the driver does before anything else  # noqa: B018
    context = Context(provider=name, account="bench", client_names={}, page=_page_context(name))

    def write(observer: Observer | None) -> Callable[[], None]:
        def run() -> None:
            writer = RecordWriter(api, TableWriter(), RunStats(name, "bench"))
            writer.observer = observer
            for records in pages:
                for _ in writer.write(records, context):
                    pass

        return run

    warm = Observer(api.mapping.lines)

    def observe_warm() -> None:
        for records in pages:
            warm.invoices(records)

    def observe_cold() -> None:
        cold = Observer(api.mapping.lines)
        for records in pages:
            cold.invoices(records)

    lines = sum(len(r.value.get(api.mapping.lines) or []) for p in pages for r in p)
    return {
        "invoices": invoices,
        "lines per invoice": lines / invoices,
        "write": best(write(None), invoices),
        "write + observe": best(write(Observer(api.mapping.lines)), invoices),
        "observe warm": best(observe_warm, invoices),
        "observe cold": best(observe_cold, invoices),
    }


def _page_context(name: str) -> Any:
    return None


def main() -> int:
    n = int(os.environ.get("BENCH_N", "3000"))
    for name, pages in (("invoicexpress", invoicexpress_pages(n)), ("kitchen", kitchen_pages(n))):
        figures = measure(name, pages)
        share = figures["observe warm"] / figures["write"] * 100
        print(
            f"{name}: {figures['invoices']:,} invoices, {figures['lines per invoice']:.1f} lines each · "
            f"map + Arrow {figures['write']:.1f} µs/invoice · with the observer {figures['write + observe']:.1f} · "
            f"observer alone {figures['observe warm']:.1f} warm, {figures['observe cold']:.1f} cold "
            f"({share:.0f} % of map + Arrow)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
