"""Find providers by looking at `sources/`: every folder whose package defines `PROVIDER`."""

from __future__ import annotations

import importlib
import pkgutil

import sources
from sources.shared.provider import Provider


def discover() -> dict[str, Provider]:
    """Every provider under `sources/`, by name, in alphabetical order."""
    found: dict[str, Provider] = {}
    for module in pkgutil.iter_modules(sources.__path__):
        if not module.ispkg or module.name == "shared":
            continue
        package = importlib.import_module(f"sources.{module.name}")
        provider = getattr(package, "PROVIDER", None)
        if isinstance(provider, Provider):
            if provider.name != module.name:
                raise RuntimeError(f"sources/{module.name} declares provider {provider.name!r}: names must match")
            found[provider.name] = provider
    return dict(sorted(found.items()))
