"""A signal at any moment stops the run truthfully, and one ordinary run afterwards leaves what one
clean run writes: a SIGTERM is sent at moments spread over a whole run of two providers (the
program's start, its extracts, loads, deletions, its records, its views), through the real
console script on real sockets."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from sandbox import fohlio, kitchen
from tests.support import Workspace, serve
from tests.unattended.test_kill_recovery import leftovers, tables

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).parent / "billing-elt"
# 12 moments spread over the run in `make test`; SIGNAL_SWEEP_STEP=0.15 sweeps a moment every 150 ms
# (about 30 moments a run on a quiet machine: minutes longer, for a change to the stopping code).
MOMENTS = 12
STEP = float(os.environ.get("SIGNAL_SWEEP_STEP", "0") or 0)
HEADER = " · run "  # the run's first line: the program has started and holds the lock


def stopped_run(ws: Workspace, env: dict[str, str], after: float | None) -> tuple[int, str]:
    """A run SIGTERMed `after` seconds after its first line (None: while the program starts)."""
    proc = subprocess.Popen([str(SCRIPT), "load"], cwd=ws.path, env=ws.env(env), stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    seen = []
    if after is None:
        time.sleep(0.2)
    else:
        for line in proc.stderr:
            seen.append(line)
            if HEADER in line:
                break
        time.sleep(after)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    return proc.returncode, "".join(seen) + err


@pytest.mark.timeout(900 if STEP == 0 else 3600)
def test_a_sigterm_at_any_moment_stops_truthfully_and_one_rerun_converges(tmp_path: Path) -> None:
    apps = {"kitchen": kitchen.create_app(fixtures=False, latency=0.02), "fohlio": fohlio.create_app(latency=0.02)}
    with serve(apps["kitchen"]) as k_server, serve(apps["fohlio"]) as f_server:
        env = {**apps["kitchen"].pipeline_env(k_server.url), **apps["fohlio"].pipeline_env(f_server.url)}
        env["PROVIDERS"] = "fohlio,kitchen"
        clean = Workspace(tmp_path / "clean")
        clean.path.mkdir()
        proc = subprocess.Popen(
            [str(SCRIPT), "load"], cwd=clean.path, env=clean.env(env), stderr=subprocess.PIPE, text=True
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if HEADER in line:
                break
        started = time.monotonic()
        rest = proc.stderr.read()
        assert proc.wait() == 0, rest
        length = time.monotonic() - started
        expected = tables(clean)
        # While the program starts, then moments spread over the run, from its first line to past its end.
        count = int((length + 0.3) / STEP) + 1 if STEP > 0 else MOMENTS
        moments: list[float | None] = [None, *(i * (length + 0.3) / count for i in range(count))]

        def scenario(moment: float | None) -> str | None:
            ws = Workspace(tmp_path / (f"at_{moment:.2f}" if moment is not None else "at_start"))
            ws.path.mkdir()
            code, err = stopped_run(ws, env, moment)
            when = "while starting" if moment is None else f"{moment:.2f} s"
            lines = [line for line in err.splitlines() if "stopped by SIGTERM" in line]
            if "Traceback" in err or "Exception ignored" in err:
                return f"{when}: a traceback\n{err[-3000:]}"
            if code == 0:
                if lines:
                    return f"{when}: exit 0 but a stop line: {lines}"
            elif code != 143 or len(lines) != 1:
                return f"{when}: exit {code}, stop lines {lines}\n{err[-3000:]}"
            elif ws.db.exists() and "loaded and recorded" in lines[0]:
                # What the line says was recorded is what pipeline_runs holds, nothing more.
                said = set(re.findall(r"(fohlio|kitchen) \[", lines[0].split("loaded and recorded:")[1]))
                held = {r[0] for r in ws.query("SELECT provider FROM billing.pipeline_runs WHERE status = 'loaded'")}
                if said != held:
                    return f"{when}: the stop line says {said} were recorded, pipeline_runs holds {held}"
            again = ws.run(env)
            if again.code != 0:
                return f"{when}: the next run exited {again.code}\n{again.stderr[-3000:]}"
            if tables(ws) != expected:
                return f"{when} (exit {code}): the tables differ from a clean run's\n{lines}"
            if leftovers(ws):
                return f"{when}: left in dlt's local state: {leftovers(ws)}"
            return None

        with ThreadPoolExecutor(max_workers=2) as pool:
            problems = [p for p in pool.map(scenario, moments) if p]
    assert not problems, "\n\n".join(problems)
