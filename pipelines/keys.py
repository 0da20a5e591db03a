"""Misspelt or unknown configuration keys, named at the start of a run (docs/configuration.md,
"Analysis"): `unknown()` gives one warning line per key of `[analysis]`, `[sources.ecb]`,
`[checks]`, `[sources.<provider>]` and `[sources.<provider>.accounts.<label>]` that nothing reads,
and per name under `[sources]` that is not a provider, each with the closest known key and where
it was found (a TOML file, or `env SOURCES__...`); and per provider's secret set in a `config.toml`
(dlt reads secrets from `secrets.toml` and the environment only); never a value. A top-level
key is named only when it is close to one of the project's: dlt reads many more of its own.

Keys are read from `.dlt/config.toml` and `.dlt/secrets.toml` (the project's folder, then dlt's
global one), and from the variables `SOURCES__...`, `CHECKS__...`, `ANALYSIS__...`. A file that is
not valid TOML is skipped here: dlt says so itself. A warning never stops a run.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import dlt
from dlt.common.configuration.specs import RuntimeConfiguration, known_sections
from dlt.pipeline.configuration import PipelineConfiguration

from pipelines import checks, config, rates, registry
from sources.ecb import settings as ecb
from sources.shared.provider import Provider

ACCOUNTS = "accounts"
SOURCES = known_sections.SOURCES
# The top-level keys the project reads (pipelines/config.py, registry.py, warehouse.py).
PROJECT_KEYS = (
    "pipeline_name",
    "dataset_name",
    "destination_type",
    "pipelines_dir",
    "http_timeout",
    "request_deadline",
    "max_retry_after",
    "account_concurrency",
    "batch_clients",
    config.MAX_DELETE_FRACTION,
    registry.PACKAGES_KEY,
    "duckdb_memory_limit",
)
# Sections of fixed keys, by their path.
SECTIONS: dict[tuple[str, ...], Sequence[str]] = {
    ("analysis",): rates.ANALYSIS_KEYS,
    (SOURCES, ecb.NAME): ecb.KEYS,
    (checks.SECTION,): checks.KEYS,
}
ENV_PREFIXES = {path[0] for path in SECTIONS}
TOP_KEYS = (*PROJECT_KEYS, *sorted(ENV_PREFIXES))
# dlt's own names: its sections (`runtime`, `load`, `schema`, `data_writer`, ...) and settings.
DLT_OWN = frozenset(
    {v for k, v in vars(known_sections).items() if k.isupper() and isinstance(v, str)}
    | set(PipelineConfiguration.get_resolvable_fields())
    | set(RuntimeConfiguration.get_resolvable_fields())
)


def unknown(providers: Mapping[str, Provider] | None = None) -> list[str]:
    """One line per unknown key, where it was found: `config: unknown key "max_hours_since_lod"
    in [checks] (.dlt/config.toml): did you mean "max_hours_since_load"? It is ignored.`"""
    if providers is None:
        try:
            providers = registry.discover()
        except Exception:  # a package of providers_packages that cannot be imported: a load says so
            providers = None
    lines = [line for where, doc in documents() for line in _unknown(doc, where, providers)]
    return list(dict.fromkeys(lines))


def documents() -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every place keys are set, by name: each TOML file dlt reads, then each of our variables
    (as the table it stands for, its value left out)."""
    try:
        context = dlt.current.run_context()
        folders = list(dict.fromkeys([Path(context.settings_dir), Path(context.global_dir)]))
    except Exception:  # a TOML file dlt cannot read: dlt reports it
        folders = [Path(".dlt")]
    for folder in folders:
        for name in ("config.toml", "secrets.toml"):
            try:
                yield str(folder / name), tomllib.loads((folder / name).read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
                continue
    for variable in sorted(os.environ):
        parts = variable.lower().split("__")
        if len(parts) < 2 or parts[0] not in ENV_PREFIXES or not all(parts):
            continue
        doc: Any = ""
        for part in reversed(parts):
            doc = {part: doc}
        yield f"env {variable}", doc


def _unknown(doc: Mapping[str, Any], where: str, providers: Mapping[str, Provider] | None) -> Iterator[str]:
    top = {k: v for k, v in doc.items() if k not in DLT_OWN}
    yield from _check(top, TOP_KEYS, "at the top level", where, close_only=lambda value: True)
    for path, known in SECTIONS.items():
        yield from _check(_table(doc, *path), known, f"in [{'.'.join(path)}]", where)
    if providers is None:
        return
    sources = {k: v for k, v in _table(doc, SOURCES).items() if k not in DLT_OWN}
    yield from _check(sources, [ecb.NAME, *providers], f"in [{SOURCES}]", where, close_only=lambda value: False)
    in_config = Path(where).name == "config.toml"
    for name, provider in providers.items():
        stanza = _table(doc, SOURCES, name)
        known = [*(s.name for s in provider.settings), config.MAX_DELETE_FRACTION]
        secrets = [s.name for s in provider.settings if s.secret] if in_config else []
        yield from _check(stanza, [*known, ACCOUNTS], f"in [{SOURCES}.{name}]", where)
        yield from _misplaced(stanza, secrets, f"[{SOURCES}.{name}]", where)
        for label, account in _table(stanza, ACCOUNTS).items():
            if isinstance(account, Mapping):
                section = f"[{SOURCES}.{name}.{ACCOUNTS}.{label}]"
                yield from _check(account, known, f"in {section}", where)
                yield from _misplaced(account, secrets, section, where)


def _misplaced(table: Mapping[str, Any], secrets: Sequence[str], section: str, where: str) -> Iterator[str]:
    """A line per secret set in a `config.toml`, which dlt never reads secrets from: the provider
    is then "not configured", and this says why."""
    for key in table:
        if key in secrets:
            yield (
                f'config: the secret "{key}" in {section} ({where}) is not read from config.toml: '
                f"move it to {Path(where).with_name('secrets.toml')} (or the environment). It is ignored."
            )


def _table(doc: Mapping[str, Any], *path: str) -> Mapping[str, Any]:
    for part in path:
        found = doc.get(part)
        doc = found if isinstance(found, Mapping) else {}
    return doc


def _is_table(value: Any) -> bool:
    return isinstance(value, Mapping)


def _check(
    table: Mapping[str, Any],
    known: Sequence[str],
    section: str,
    where: str,
    *,
    close_only: Callable[[Any], bool] = _is_table,
) -> Iterator[str]:
    """A line per key of `table` not `known`; one whose value is `close_only` only when it is close
    to a known key (by default a table: a section dlt may read, a source's `schema`, a resource's)."""
    for key, value in table.items():
        if key in known:
            continue
        close = difflib.get_close_matches(key, known, n=1)
        if not close and close_only(value):
            continue
        hint = f'did you mean "{close[0]}"?' if close else f"known: {', '.join(known)}."
        yield f'config: unknown key "{key}" {section} ({where}): {hint} It is ignored.'
