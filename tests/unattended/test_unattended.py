"""A nightly job operators can trust, tried through the real command line: exit codes, the run
lock, signals, failures explained in one paragraph, announced waits and bounded deadlines,
timestamps, the run header and `pipeline_runs`, leftovers, `reset` before any load."""

from __future__ import annotations

import fcntl
import json
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from sandbox import kitchen
from sandbox.framework import App as SandboxApp
from tests.support import REPO, Result, Workspace, serve

pytestmark = pytest.mark.integration

SCRIPT = Path(sys.executable).parent / "billing-elt"
STAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ (DEBUG|INFO|WARNING|ERROR|CRITICAL) ")
BOILERPLATE = ("configured the credentials", "internet connection", "Traceback")


def script(ws: Workspace, env: dict[str, str], *args: str, timeout: float = 120) -> Result:
    """Run `.venv/bin/billing-elt ARGS` as cron would."""
    proc = subprocess.run(
        [str(SCRIPT), *args],
        cwd=ws.path,
        env=ws.env({"HOME": str(ws.path), **env}),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def explained(result: Result) -> str:
    for word in BOILERPLATE:
        assert word not in result.output, result.output
    return result.stderr


# --- exit codes and the console script --------------------------------------------------------


def test_the_console_script_tells_a_wrong_command_line_from_a_failed_provider(workspace, app):
    _, env = app
    assert script(workspace, env, "bogus").code == 2
    assert script(workspace, {**env, "PROVIDERS": "nosuch"}).code == 2
    assert script(workspace, {"PROVIDERS": ""}).code == 2  # nothing configured
    failed = script(workspace, {**env, "SOURCES__KITCHEN__API_KEY": "wrong-key-2718"})
    assert failed.code == 1, failed.output
    ok = script(workspace, env)
    assert ok.code == 0, ok.output


# --- the run lock -----------------------------------------------------------------------------


def test_a_second_run_exits_3_at_once_naming_the_first(workspace, monkeypatch):
    # The first run's requests are held until the second has ended, so the first still holds the
    # lock however long the second takes to start on a busy machine (a fixed latency raced it).
    slow, ended = kitchen.create_app(fixtures=False), threading.Event()
    answer = slow.serve

    released: list[bool] = []

    def held(request):
        released.append(ended.wait(timeout=25))  # within the client's 30 s read timeout
        return answer(request)

    monkeypatch.setattr(slow, "serve", held)
    with serve(slow) as server:
        env = {**slow.pipeline_env(server.url), "PROVIDERS": "kitchen"}
        first = subprocess.Popen(
            [str(SCRIPT), "load"],
            cwd=workspace.path,
            env=workspace.env(env),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert first.stderr is not None
        for line in first.stderr:
            if "→ Kitchen" in line:
                break
        started = time.monotonic()
        second = script(workspace, env)
        took = time.monotonic() - started
        ended.set()
        rest = first.stderr.read()
        assert first.wait(timeout=120) == 0, rest
    assert second.code == 3, second.output
    assert f"process {first.pid} on {socket.gethostname()}" in second.stderr
    assert "Nothing was done" in second.stderr
    # It did not wait for the first: every request the first made was still held when it ended.
    assert released and all(released), (released, took)
    assert "Summary" in rest  # the first run was not disturbed


# --- signals ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_whole_run_at_once(workspace, signum, code):
    slow = kitchen.create_app(fixtures=False, latency=3)
    with serve(slow) as server:
        env = slow.pipeline_env(server.url)
        proc = subprocess.Popen(
            [str(SCRIPT), "load"],
            cwd=workspace.path,
            env=workspace.env({**env, "PROVIDERS": "kitchen"}),
            stderr=subprocess.PIPE,
            text=True,
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            if "→ Kitchen" in line:
                break
        time.sleep(0.5)
        sent = time.monotonic()
        proc.send_signal(signum)
        rest = proc.stderr.read()
        assert proc.wait(timeout=60) == code, rest
        took = time.monotonic() - sent
    assert took < 10, took
    stopped = [line for line in rest.splitlines() if "stopped by" in line]
    assert len(stopped) == 1 and signal.Signals(signum).name in stopped[0], rest
    assert "kitchen was stopped in its extract: nothing of it was committed" in stopped[0]
    assert "Traceback" not in rest and "Summary" not in rest
    assert (
        not workspace.db.exists()
        or workspace.scalar("SELECT count(*) FROM information_schema.tables WHERE table_name = 'invoices'") == 0
    )


# --- waits and deadlines ----------------------------------------------------------------------


def throttled(retry_after: str, times: int) -> SandboxApp:
    """Kitchen behind a throttle: the first `times` requests get a 429 with `retry_after`."""
    app = kitchen.create_app(fixtures=False)
    app.inject(
        "status", status=429, times=times, body={"message": "Too Many Attempts."}, headers={"Retry-After": retry_after}
    )
    return app


def test_a_wait_is_said_as_it_happens(workspace):
    app = throttled("1", times=1)
    with serve(app) as server:
        result = script(workspace, {**app.pipeline_env(server.url), "PROVIDERS": "kitchen"})
    assert result.code == 0, result.output
    waits = [line for line in result.stderr.splitlines() if "waiting" in line]
    assert len(waits) == 1, result.stderr
    assert " WARNING kitchen [acme]: HTTP 429 from GET " in waits[0] and "(Retry-After 1 s), retry 1 of 5" in waits[0]


def test_a_retry_after_beyond_the_cap_fails_the_account_at_once_saying_when_to_retry(workspace):
    app = throttled("3600", times=100)
    with serve(app) as server:
        started = time.monotonic()
        result = script(workspace, {**app.pipeline_env(server.url), "PROVIDERS": "kitchen"})
        took = time.monotonic() - started
    assert result.code == 1 and took < 30, (took, result.output)
    assert "asking to wait 3600 s (Retry-After), more than max_retry_after = 90 s" in result.stderr
    assert re.search(r"run again after \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", result.stderr)
    assert workspace.scalar("SELECT status FROM billing.pipeline_runs") == "failed"


def test_a_server_that_never_answers_fails_within_the_request_deadline(workspace):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        env = {
            **kitchen.create_app(fixtures=False).pipeline_env(f"http://127.0.0.1:{listener.getsockname()[1]}"),
            "PROVIDERS": "kitchen",
            "HTTP_TIMEOUT": "1",
            "REQUEST_DEADLINE": "4",
        }
        started = time.monotonic()
        result = script(workspace, env)
        took = time.monotonic() - started
    finally:
        stop.set()
        thread.join()
        for conn in held:
            conn.close()
        listener.close()
    assert result.code == 1, result.output
    assert "could not reach" in result.stderr and "ReadTimeout" in result.stderr
    assert "(request_deadline)" in result.stderr
    # The deadline, as the run itself measured it (the wall time adds the interpreter's start,
    # which a busy machine stretches).
    elapsed = re.search(r"after \d+ attempt\(s\) in (\d+) s", result.stderr)
    assert elapsed is not None and int(elapsed[1]) <= 4 + 2, result.stderr
    assert took < 4 + 60, took


# --- what a run says, and what it leaves ------------------------------------------------------


def test_every_line_has_a_utc_timestamp_and_the_run_is_recorded(workspace, app):
    _, env = app
    env = {k: v for k, v in env.items() if k != "PROVIDERS"}
    runs = [script(workspace, env) for _ in range(3)]
    for result in runs:
        assert result.code == 0, result.output
        lines = result.stderr.splitlines()
        assert lines and all(STAMP.match(line) for line in lines), result.stderr
    header = next(line for line in runs[0].stderr.splitlines() if "billing-elt " in line)
    assert f"duckdb {workspace.db}" in header and "dataset billing" in header and "kitchen [acme]" in header
    run_id = re.search(r"Summary of run (\S+)", runs[-1].stderr).group(1)  # type: ignore[union-attr]
    assert f"run {run_id}" in next(line for line in runs[-1].stderr.splitlines() if "billing-elt " in line)
    rows = workspace.query(
        "SELECT run_id, provider, account, status, invoices, unchanged, requests, message, "
        "finished_at >= started_at FROM billing.pipeline_runs ORDER BY started_at"
    )
    assert len(rows) == 3 + 3 * 3  # kitchen, and the three providers not configured, skipped
    last = [r for r in rows if r[0] == run_id]
    kitchen_row = next(r for r in last if r[1] == "kitchen")
    assert kitchen_row[2:] == ("acme", "loaded", 0, 45, 2, None, True)
    assert {r[3] for r in last if r[1] != "kitchen"} == {"skipped"}
    # Completed load packages are deleted: dlt's local state stays small.
    local = workspace.path / "pipelines" / "billing"
    assert not list((local / "load" / "loaded").iterdir())
    assert sum(f.stat().st_size for f in local.rglob("*") if f.is_file()) < 500_000


def test_reset_before_any_load_has_nothing_to_reset_and_creates_nothing(workspace):
    result = script(workspace, {}, "reset", "kitchen")
    assert result.code == 0, result.output
    assert "nothing to reset" in result.stderr
    assert list(workspace.path.iterdir()) == []


def test_the_lock_record_names_the_holder_and_is_emptied_on_release(workspace, app):
    _, env = app
    assert script(workspace, env).code == 0
    lock = Path(str(workspace.db) + ".lock.run")
    assert lock.exists() and lock.read_text() == ""
    with lock.open("r+") as held:
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write(json.dumps({"pid": 4242, "host": "cronbox", "started_at": "2025-01-01T02:00:00Z", "command": "x"}))
        held.flush()
        result = script(workspace, env)
    assert result.code == 3
    assert "process 4242 on cronbox, started 2025-01-01T02:00:00Z" in result.stderr


def test_the_readme_cron_line_calls_the_script():
    readme = (REPO / "README.md").read_text()
    cron = [line for line in readme.splitlines() if re.match(r"^(?:[\d*/,-]+\s+){5}.*billing-elt", line.strip())]
    assert cron and all("make " not in line and ".venv/bin/billing-elt load" in line for line in cron), cron
    assert all(line.strip().split(None, 5)[5].startswith("cd ") for line in cron)
