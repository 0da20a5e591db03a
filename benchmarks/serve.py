"""A sandbox in its own process, so that its CPU and memory are not the pipeline's.

    python -m benchmarks.serve invoicexpress --latency 0.1 --option clients=500 --option invoices_per_client=90

prints one JSON line `{"url": ..., "env": {...}, "accounts": [...]}`, then answers commands read
from stdin, one JSON line each: `stats` (requests answered, 429s, and for InvoiceXpress what was
served: distinct invoices, their lines and exact sum of totals), `summary` (the app's own summary),
`summaries` (every account's), `clear` (forget the log and the tally), `quit`.

    python -m benchmarks.serve fohlio --latency 0.1 --accounts '[{}, {}, {}]'

serves several accounts of one provider, one app (seeds `seed`, `seed + 1`, ...) and one port
each, with `--option`s common to all and each entry's own options; `accounts` in the first line
lists each one's `url` and `config` (the provider's configuration keys pointing at it), `stats`
counts every account's requests together. `SandboxProcess` drives it from a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
from contextlib import ExitStack
from decimal import Decimal
from types import TracebackType
from typing import Any

from benchmarks.common import REPO
from sandbox.invoicexpress.data import Account
from sandbox.server import SandboxServer, available


class TallyAccount(Account):
    """An InvoiceXpress account that also counts what it serves: each distinct invoice once,
    so that a load of a million invoices can be checked without generating them twice."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._tally_lock = threading.Lock()
        self.clear_tally()

    def clear_tally(self) -> None:
        self.served: set[int] = set()
        self.served_lines = 0
        self.served_total = Decimal(0)

    def invoice(self, client_index: int, position: int) -> dict[str, Any] | None:
        invoice = super().invoice(client_index, position)
        if invoice is not None:
            with self._tally_lock:
                if invoice["id"] not in self.served:
                    self.served.add(invoice["id"])
                    self.served_lines += len(invoice["items"])
                    self.served_total += Decimal(str(invoice["total"]))
        return invoice


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def main() -> None:
    apps = available()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("provider", choices=sorted(apps))
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--option", action="append", default=[], help="key=JSON value for create_app")
    parser.add_argument(
        "--accounts", type=json.loads, default=[{}], help="JSON list: one account per entry, its own create_app options"
    )
    args = parser.parse_args()
    options = {k: _value(v) for k, v in (o.split("=", 1) for o in args.option)}
    if isinstance(options.get("lines_per_invoice"), list):
        options["lines_per_invoice"] = tuple(options["lines_per_invoice"])
    served: list[Any] = [
        _app(apps[args.provider], seed=args.seed + i, latency=args.latency, **{**options, **own})
        for i, own in enumerate(args.accounts)
    ]
    with ExitStack() as stack:
        servers = [stack.enter_context(SandboxServer(app)) for app in served]
        app, url = served[0], servers[0].url
        accounts = [{"url": s.url, "config": a.config(s.url)} for a, s in zip(served, servers, strict=True)]
        print(json.dumps({"url": url, "env": app.pipeline_env(url), "accounts": accounts}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                out: dict[str, Any] = {
                    "requests": sum(a.log.count() for a in served),
                    "status_429": sum(a.log.count(status=429) for a in served),
                }
                if isinstance(getattr(app, "account", None), TallyAccount):
                    with app.account._tally_lock:
                        out.update(
                            invoices=len(app.account.served),
                            lines=app.account.served_lines,
                            total=str(app.account.served_total),
                        )
                print(json.dumps(out), flush=True)
            elif command == "summary":
                print(json.dumps(app.summary(), default=str), flush=True)
            elif command == "summaries":
                print(json.dumps({"summaries": [a.summary() for a in served]}, default=str), flush=True)
            elif command == "clear":
                for a in served:
                    a.log.clear()
                    if isinstance(getattr(a, "account", None), TallyAccount):
                        a.account.clear_tally()
                print("{}", flush=True)
            elif command == "quit":
                break


def _app(create_app: Any, **options: Any) -> Any:
    """One sandbox app; an InvoiceXpress one counts what it serves (`TallyAccount`)."""
    app = create_app(**options)
    account = getattr(app, "account", None)
    if type(account) is Account:
        app.account = TallyAccount(
            account.seed, account.n_clients, account.invoices_per_client, account.lines_per_invoice
        )
    return app


class SandboxProcess:
    """Start `python -m benchmarks.serve` and talk to it.

    with SandboxProcess("invoicexpress", latency=0.1, clients=500) as sandbox:
        sandbox.url, sandbox.env, sandbox.stats()

    `accounts` (a list of per-account `create_app` options) serves several accounts instead of
    one: `sandbox.accounts` holds each one's `url` and `config`, `sandbox.summaries()` their summaries.
    """

    def __init__(
        self,
        provider: str,
        *,
        latency: float = 0.0,
        seed: int = 42,
        accounts: list[dict[str, Any]] | None = None,
        **options: Any,
    ) -> None:
        # Generated records only, so what is loaded can be checked exactly against what was generated
        # (the published samples a sandbox also serves by default are not in its generator's counts).
        options.setdefault("fixtures", False)
        self.command = [
            sys.executable,
            "-m",
            "benchmarks.serve",
            provider,
            "--seed",
            str(seed),
            "--latency",
            str(latency),
        ]
        self.command += [arg for k, v in options.items() for arg in ("--option", f"{k}={json.dumps(v)}")]
        if accounts is not None:
            self.command += ["--accounts", json.dumps(accounts)]
        self.url = ""
        self.env: dict[str, str] = {}
        self.accounts: list[dict[str, Any]] = []

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        first = json.loads(self._readline())
        self.url, self.env, self.accounts = first["url"], first["env"], first["accounts"]
        return self

    def _readline(self) -> str:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sandbox process exited: {' '.join(self.command)}")
        return line

    def _ask(self, command: str) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        return dict(json.loads(self._readline()))

    def stats(self) -> dict[str, Any]:
        """Requests answered, 429s and (InvoiceXpress) the distinct invoices served."""
        return self._ask("stats")

    def summary(self) -> dict[str, Any]:
        """What the sandbox holds (`App.summary`), exact totals as strings."""
        return self._ask("summary")

    def summaries(self) -> list[dict[str, Any]]:
        """Every account's summary, in the order of `accounts`."""
        return list(self._ask("summaries")["summaries"])

    def clear(self) -> None:
        self._ask("clear")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if self.proc.poll() is None and self.proc.stdin is not None:
                self.proc.stdin.write("quit\n")
                self.proc.stdin.close()
            self.proc.wait(timeout=10)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()


if __name__ == "__main__":
    main()
