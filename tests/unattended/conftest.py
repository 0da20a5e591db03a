from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from sandbox import kitchen
from sandbox.framework import App as SandboxApp
from tests.support import serve

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unattended runs are about what a process does (signals, kills, locks held by another
    process, hung servers, the console script): every test here runs on real sockets."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.sockets)


@pytest.fixture
def app() -> Iterator[tuple[SandboxApp, dict[str, str]]]:
    sandbox = kitchen.create_app(fixtures=False)
    with serve(sandbox) as server:
        yield sandbox, {**sandbox.pipeline_env(server.url), "PROVIDERS": "kitchen"}
