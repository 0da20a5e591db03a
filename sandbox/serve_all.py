"""`make sandbox`: serve every provider's sandbox (and the ECB rates feed) on loopback until Ctrl-C,
and print the variables that point a load at them.

    make sandbox                                  # or: .venv/bin/python -m sandbox.serve_all
    make sandbox PORT=8800                        # fixed ports, 8800, 8801, ... in name order
    make sandbox ENV_FILE=sandbox.env             # the same lines written to a file as well

What it prints on stdout is a shell script: comments and `export` lines only, so that it can be
pasted into another terminal, or sourced (`. ./sandbox.env`). Besides each sandbox's settings it
names a DuckDB file and a pipeline name of their own (`sandbox.duckdb`, `billing_sandbox`), so
that a load of the sandboxes never writes into the warehouse or the local state of real accounts.
A load into Postgres (or any destination) sets `DESTINATION_TYPE` and its credentials beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import shlex
import signal
import sys
import threading
from pathlib import Path
from types import FrameType

from sandbox.framework import App
from sandbox.server import SandboxServer, available, feeds

DEFAULT_DB = "sandbox.duckdb"
PIPELINE_NAME = "billing_sandbox"


def apps(seed: int, today: dt.date) -> dict[str, App]:
    """Every provider sandbox, then every data feed, each in name order."""
    made = {name: create(seed=seed, today=today) for name, create in available().items()}
    made.update({name: create(seed=seed, today=today) for name, create in feeds().items()})
    return made


def exports(servers: dict[str, SandboxServer], db: Path, seed: int, today: dt.date) -> str:
    """The shell script printed: where each sandbox listens, and the variables to export."""
    lines = [f"# billing-elt sandboxes on loopback (seed {seed}, data up to {today}), served until Ctrl-C:"]
    lines += [f"#   {name:<14} {server.url}" for name, server in servers.items()]
    lines.append("# Export these in the shell that loads (paste them, or source the file), then run a load there:")
    lines.append("#   .venv/bin/billing-elt load            (PROVIDERS=kitchen for one provider)")
    for server in servers.values():
        for variable, value in server.app.pipeline_env(server.url).items():
            lines.append(f"export {variable}={shlex.quote(value)}")
    lines.append("# A warehouse and local state of their own, apart from your accounts' (Postgres: set")
    lines.append("# DESTINATION_TYPE=postgres and DESTINATION__POSTGRES__CREDENTIALS as well):")
    lines.append(f"export DESTINATION__DUCKDB__CREDENTIALS={shlex.quote(str(db))}")
    lines.append(f"export PIPELINE_NAME={PIPELINE_NAME}")
    return "\n".join(lines) + "\n"


def _stop(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def stop_all(servers: list[SandboxServer]) -> None:
    """Stop every server at once (each waits for its serving loop to notice)."""
    threads = [threading.Thread(target=server.stop) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m sandbox.serve_all",
        description="Serve every provider's sandbox (and the ECB rates feed) on loopback until Ctrl-C, "
        "printing the variables that point a load at them.",
    )
    parser.add_argument(
        "--port",
        type=int,
        default=0,
        help="the first port; the next sandboxes take the ports after it (default: free ports)",
    )
    parser.add_argument("--seed", type=int, default=42, help="the seed of the generated data (default 42)")
    parser.add_argument(
        "--today",
        type=dt.date.fromisoformat,
        default=None,
        help="end the generated data on this day, YYYY-MM-DD (default: today, in UTC)",
    )
    parser.add_argument("--db", default=DEFAULT_DB, help=f"the DuckDB file to name (default {DEFAULT_DB})")
    parser.add_argument("--env-file", default=None, help="also write the printed lines to this file")
    args = parser.parse_args(argv)
    today = args.today or dt.datetime.now(dt.UTC).date()
    # Ctrl-C (SIGINT) and SIGTERM stop it, even when started in the background of a script (which
    # starts it with SIGINT ignored).
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _stop)
    servers: dict[str, SandboxServer] = {}
    try:
        for offset, (name, app) in enumerate(apps(args.seed, today).items()):
            port = args.port + offset if args.port else 0
            try:
                servers[name] = SandboxServer(app, port=port).start()
            except OSError as exc:
                print(f"error: the {name} sandbox cannot listen on port {port}: {exc.strerror}", file=sys.stderr)
                return 1
        text = exports(servers, Path(args.db).expanduser().absolute(), args.seed, today)
        if args.env_file:
            Path(args.env_file).write_text(text, encoding="utf-8")
        sys.stdout.write(text)
        sys.stdout.flush()
        threading.Event().wait()  # until Ctrl-C (SIGINT) or SIGTERM
    except KeyboardInterrupt:
        pass
    finally:
        stop_all(list(servers.values()))
    print("# sandboxes stopped", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
