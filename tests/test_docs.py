"""The docs read the providers' declarations: each README's settings table is the one its
settings.py declares (`python -m sources.shared.provider` writes them)."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipelines.registry import discover
from sources.shared.provider import docs_tables

SOURCES = Path(__file__).parents[1] / "sources"


@pytest.mark.parametrize("name", sorted(discover()))
def test_each_readme_lists_the_settings_its_provider_declares(name: str) -> None:
    readme = (SOURCES / name / "README.md").read_text(encoding="utf-8")
    assert docs_tables(readme, discover()[name]) == readme, "run `python -m sources.shared.provider`"
