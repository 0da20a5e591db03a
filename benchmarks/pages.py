"""InvoiceXpress listing pages on disk, exactly as the API (the sandbox) serves them.

Pages are generated once with the sandbox's own data generator and encoder and kept under
`.bench/` (gitignored), so the load benchmark involves no HTTP and a second run reuses them.
"""

from __future__ import annotations

import json
import math
import shutil
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from benchmarks.common import SCRATCH, Expected
from sandbox.framework import json_response
from sandbox.invoicexpress.data import Account

# The provider whose listing pages these are: the load-path benchmark is about one data shape, and
# InvoiceXpress's sandbox generates invoices one at a time from a seed, so a million of them never
# sit in memory.
PROVIDER = "invoicexpress"
PER_PAGE = 30
PER_CLIENT = 90  # three pages per client, as in the network benchmark
SEED = 42


@dataclass
class PageSet:
    """Page files and what they hold."""

    directory: Path
    files: list[Path]
    expected: Expected
    page_invoices: list[int]

    def head(self, n: int) -> tuple[list[Path], int]:
        """The first pages holding at least `n` invoices (whole pages), and how many they hold."""
        files, held = [], 0
        for path, count in zip(self.files, self.page_invoices, strict=True):
            if held >= n:
                break
            files.append(path)
            held += count
        return files, held

    @property
    def glob(self) -> str:
        return str(self.directory / "page-*.json")


def generate(n: int, lines: tuple[int, int], seed: int = SEED, root: Path = SCRATCH) -> PageSet:
    """Write (or reuse) `n` invoices as pages of 30, three pages per client."""
    directory = root / f"ix-pages-s{seed}-n{n}-l{lines[0]}_{lines[1]}"
    manifest = directory / "manifest.json"
    if not manifest.exists():
        tmp = directory.with_name(directory.name + ".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir(parents=True)
        clients = math.ceil(n / PER_CLIENT)
        account = Account(seed, clients=clients, invoices_per_client=PER_CLIENT, lines_per_invoice=lines)
        expected = Expected()
        counts: list[int] = []
        left = n
        for client in range(clients):
            in_client = min(PER_CLIENT, left)
            left -= in_client
            pages = math.ceil(in_client / PER_PAGE)
            for page in range(pages):
                invoices = [
                    account.invoice(client, p) for p in range(page * PER_PAGE, min(in_client, (page + 1) * PER_PAGE))
                ]
                for invoice in invoices:
                    assert invoice is not None
                    expected.add(invoice)
                body = {
                    "invoices": invoices,
                    "pagination": {
                        "total_entries": in_client,
                        "current_page": page + 1,
                        "total_pages": pages,
                        "per_page": PER_PAGE,
                    },
                }
                counts.append(len(invoices))
                (tmp / f"page-{len(counts):07d}.json").write_bytes(json_response(body).body)
        (tmp / "manifest.json").write_text(
            json.dumps(
                {
                    "invoices": expected.invoices,
                    "lines": expected.lines,
                    "total": str(expected.total),
                    "page_invoices": counts,
                }
            )
        )
        shutil.rmtree(directory, ignore_errors=True)
        tmp.rename(directory)
    meta = json.loads(manifest.read_text())
    files = sorted(directory.glob("page-*.json"))
    return PageSet(
        directory, files, Expected(meta["invoices"], meta["lines"], Decimal(meta["total"])), meta["page_invoices"]
    )
