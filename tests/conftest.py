from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support import Workspace, real_sockets


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "sockets: runs the command line in a subprocess against sandboxes on real loopback sockets, as a user "
        "runs it (every other integration test runs in-process; BILLING_TEST_SOCKETS=1 runs them all so)",
    )


@pytest.fixture(autouse=True)
def _sockets_when_marked(request: pytest.FixtureRequest) -> Iterator[None]:
    """A test marked `sockets` serves its sandboxes on loopback and runs the CLI in a subprocess."""
    with real_sockets(request.node.get_closest_marker("sockets") is not None):
        yield


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    """A clean working directory for one pipeline, with its own state and DuckDB file."""
    return Workspace(tmp_path)
