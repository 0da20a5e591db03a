"""Serve one sandbox by hand: `python -m sandbox invoicexpress --port 8801` (or `ecb`, the rates feed)."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import threading

from sandbox.server import SandboxServer, available, feeds


def main() -> None:
    apps = {**available(), **feeds()}
    parser = argparse.ArgumentParser(description="Serve a provider sandbox (or the ECB rates feed) on loopback.")
    parser.add_argument("provider", choices=sorted(apps))
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added to every response")
    parser.add_argument("--today", type=dt.date.fromisoformat, help="end the generated data on this day (YYYY-MM-DD)")
    args = parser.parse_args()
    app = apps[args.provider](seed=args.seed, latency=args.latency, today=args.today)
    with SandboxServer(app, port=args.port) as server:
        print(f"{args.provider} sandbox on {server.url}")
        for name, value in app.pipeline_env(server.url).items():
            print(f"  {name}={value}")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()  # until interrupted


if __name__ == "__main__":
    main()
