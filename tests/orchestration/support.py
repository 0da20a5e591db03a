"""What the Dagster tests share: two Kitchen accounts served on loopback, and runs of one
partition in this process or, to run several at once as Dagster's run launcher does, in
processes of their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from sandbox import kitchen
from tests.support import REPO, serve
from tests.test_accounts import EU_KEY, account_env

SKIP = 'Dagster tests skipped: the dagster extra is not installed (make install EXTRAS="postgres dagster")'


@contextmanager
def two_accounts(
    monkeypatch: pytest.MonkeyPatch, latency: float = 0.0
) -> Iterator[tuple[kitchen.KitchenApp, kitchen.KitchenApp, dict[str, str]]]:
    """Kitchen workspace `acme` in the base stanza (`kitchen:acme`) and `acme-eu` as account `eu`
    (`kitchen:eu`), each its own sandbox, configured in this process's environment."""
    acme = kitchen.create_app(seed=1, latency=latency, workspace="acme")
    eu = kitchen.create_app(seed=2, latency=latency, workspace="acme-eu", api_key=EU_KEY, clients=5, invoices=30)
    with serve(acme) as a, serve(eu) as e:
        env = {**acme.pipeline_env(a.url), **account_env(eu, e.url, "eu")}
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        yield acme, eu, env


def expected(app: kitchen.KitchenApp) -> tuple[int, int, int]:
    s = app.summary()
    return s["invoices"], s["lines"], s["clients"]


@dataclass
class Ran:
    """One partition run in a process of its own."""

    code: int
    result: dict[str, Any]
    stderr: str


def start(key: str) -> subprocess.Popen[str]:
    """Start one partition's run in a process of its own, with this process's environment."""
    return subprocess.Popen(
        [sys.executable, "-m", "tests.orchestration.materialize", key],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: subprocess.Popen[str], timeout: float = 240) -> Ran:
    stdout, stderr = proc.communicate(timeout=timeout)
    lines = [line for line in stdout.splitlines() if line.startswith("{")]
    return Ran(proc.returncode, json.loads(lines[-1]) if lines else {}, stderr)


def run_at_once(keys: list[str]) -> dict[str, Ran]:
    """Several partitions at once, each in its own process (as Dagster's default run launcher does)."""
    procs = {key: start(key) for key in keys}
    return {key: finish(proc) for key, proc in procs.items()}
