"""The in-process way of running the command line (tests/inprocess.py): what a subprocess would
do, with nothing of one run reaching the test process or the next run."""

from __future__ import annotations

import logging
import os
import signal

import pytest

from sandbox import kitchen
from tests.support import SOCKETS_VARIABLE, Workspace, serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(bool(os.environ.get(SOCKETS_VARIABLE)), reason=f"{SOCKETS_VARIABLE} runs no test in-process"),
]


def test_a_run_goes_through_the_sandbox_transport_not_its_socket(workspace: Workspace) -> None:
    app = kitchen.create_app(fixtures=False, clients=2, invoices=5)
    with serve(app) as server:
        server._server.shutdown()  # the socket accepts no request any more
        result = workspace.run({**app.pipeline_env(server.url), "HTTP_TIMEOUT": "2", "REQUEST_DEADLINE": "4"})
    assert result.code == 0, result.output
    assert workspace.scalar("SELECT count(*) FROM billing.invoices") == 5
    assert app.log.count() > 0


def test_a_run_leaves_the_test_process_as_it_found_it(workspace: Workspace) -> None:
    app = kitchen.create_app(fixtures=False, clients=2, invoices=5)
    root = logging.getLogger()
    before = (
        dict(os.environ),
        os.getcwd(),
        list(root.handlers),
        root.level,
        list(logging.getLogger("dlt").handlers),
        {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
    )
    with serve(app) as server:
        result = workspace.run({**app.pipeline_env(server.url), "BILLING_VERBOSE": "1"})
    assert result.code == 0, result.output
    assert "Summary" in result.stderr and "→ Kitchen" in result.stderr
    after = (
        dict(os.environ),
        os.getcwd(),
        list(root.handlers),
        root.level,
        list(logging.getLogger("dlt").handlers),
        {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)},
    )
    assert after == before


def test_one_run_s_dlt_configuration_does_not_reach_the_next(tmp_path) -> None:
    app = kitchen.create_app(fixtures=False, clients=2, invoices=5)
    configured, bare = Workspace(tmp_path / "configured"), Workspace(tmp_path / "bare")
    with serve(app) as server:
        (configured.path / ".dlt").mkdir(parents=True)
        config = app.config(server.url)
        (configured.path / ".dlt" / "secrets.toml").write_text(
            "[sources.kitchen]\n" + "".join(f'{k} = "{v}"\n' for k, v in config.items() if v is not None)
        )
        loaded = configured.run()
        bare.path.mkdir()
        nothing = bare.run()
    assert loaded.code == 0, loaded.output
    assert configured.scalar("SELECT count(*) FROM billing.invoices") == 5
    assert nothing.code == 2, nothing.output
    assert "no provider is configured" in nothing.stderr
