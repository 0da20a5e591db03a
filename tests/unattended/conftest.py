from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Unattended runs are about what a process does (signals, kills, locks held by another
    process, hung servers, the console script): every test here runs on real sockets."""
    for item in items:
        if item.path.is_relative_to(HERE):
            item.add_marker(pytest.mark.sockets)
