"""A sandbox in its own process, so that its CPU and memory are not the pipeline's.

    python -m benchmarks.serve invoicexpress --latency 0.1 --option clients=500 --option invoices_per_client=90

prints one JSON line `{"url": ..., "env": {...}}`, then answers commands read from stdin, one
JSON line each: `stats` (requests answered, 429s, and for InvoiceXpress what was served: distinct
invoices, their lines and exact sum of totals), `summary` (the app's own summary), `clear` (forget
the log and the tally), `quit`.
`SandboxProcess` drives it from a benchmark.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import threading
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
    args = parser.parse_args()
    options = {k: _value(v) for k, v in (o.split("=", 1) for o in args.option)}
    if isinstance(options.get("lines_per_invoice"), list):
        options["lines_per_invoice"] = tuple(options["lines_per_invoice"])
    app: Any = apps[args.provider](seed=args.seed, latency=args.latency, **options)
    account = getattr(app, "account", None)
    if type(account) is Account:
        app.account = TallyAccount(
            account.seed, account.n_clients, account.invoices_per_client, account.lines_per_invoice
        )
    with SandboxServer(app) as server:
        print(json.dumps({"url": server.url, "env": app.pipeline_env(server.url)}), flush=True)
        for line in sys.stdin:
            command = line.strip()
            if command == "stats":
                out: dict[str, Any] = {"requests": app.log.count(), "status_429": app.log.count(status=429)}
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
            elif command == "clear":
                app.log.clear()
                if isinstance(getattr(app, "account", None), TallyAccount):
                    app.account.clear_tally()
                print("{}", flush=True)
            elif command == "quit":
                break


class SandboxProcess:
    """Start `python -m benchmarks.serve` and talk to it.

    with SandboxProcess("invoicexpress", latency=0.1, clients=500) as sandbox:
        sandbox.url, sandbox.env, sandbox.stats()
    """

    def __init__(self, provider: str, *, latency: float = 0.0, seed: int = 42, **options: Any) -> None:
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
        self.url = ""
        self.env: dict[str, str] = {}

    def __enter__(self) -> SandboxProcess:
        self.proc = subprocess.Popen(
            self.command, cwd=REPO, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        first = json.loads(self._readline())
        self.url, self.env = first["url"], first["env"]
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
