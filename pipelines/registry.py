"""Find providers: every subpackage of `sources/` whose package defines `PROVIDER`, then those of
the packages named by the `providers_packages` setting (docs/adding-a-provider.md, "Providers
outside sources/")."""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import dlt

from sources.shared.provider import Provider

BUILT_IN = "sources"
PACKAGES_KEY = "providers_packages"


def packages() -> list[str]:
    """`sources`, then the importable packages named by `providers_packages` (env
    `PROVIDERS_PACKAGES`: comma-separated; in `.dlt/config.toml` a list or a comma-separated string)."""
    value: Any = dlt.config.get(PACKAGES_KEY)
    named = value.split(",") if isinstance(value, str) else list(value or [])
    extra = [str(n).strip() for n in named if str(n).strip()]
    return list(dict.fromkeys([BUILT_IN, *extra]))


def discover() -> dict[str, Provider]:
    """Every provider of `packages()`, by name, in alphabetical order.

    Raises:
        RuntimeError: a folder declares a provider of another name, or two folders one name.
    """
    found: dict[str, Provider] = {}
    where: dict[str, str] = {}
    for root in packages():
        for module in pkgutil.iter_modules(importlib.import_module(root).__path__):
            if not module.ispkg or module.name == "shared":
                continue
            package = f"{root}.{module.name}"
            provider = getattr(importlib.import_module(package), "PROVIDER", None)
            if not isinstance(provider, Provider):
                continue
            if provider.name != module.name:
                raise RuntimeError(f"{package} declares provider {provider.name!r}: names must match")
            if provider.name in where:
                raise RuntimeError(f"{package} and {where[provider.name]} both declare provider {provider.name!r}")
            found[provider.name], where[provider.name] = provider, package
    return dict(sorted(found.items()))
