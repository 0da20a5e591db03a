"""Dagster definitions for running many provider accounts in parallel (the `dagster` extra):
`.venv/bin/dagster dev -m orchestration`. See orchestration/definitions.py."""

from orchestration.definitions import defs

__all__ = ["defs"]
