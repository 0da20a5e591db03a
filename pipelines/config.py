"""Everything the pipeline reads from configuration, in one place (docs/configuration.md).

Users, cron jobs and tests configure the pipeline only through dlt's mechanisms:
`.dlt/config.toml`, `.dlt/secrets.toml` and environment variables (`SECTION__KEY`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dlt

from sources.shared.http import RetryPolicy
from sources.shared.provider import Provider, section

DEFAULT_PIPELINE = "billing"
DEFAULT_DATASET = "billing"
DEFAULT_DESTINATION = "duckdb"
DEFAULT_PROGRESS_INTERVAL = 5.0
DEFAULT_HTTP_TIMEOUT = RetryPolicy.timeout
DEFAULT_MAX_RETRY_AFTER = RetryPolicy.max_retry_after
DEFAULT_REQUEST_DEADLINE = RetryPolicy.deadline
DEFAULT_ACCOUNT_CONCURRENCY = 4
DEFAULT_BATCH_CLIENTS = 100


class UsageError(Exception):
    """A wrong command line or configuration that stops the run before it starts."""


def setting(key: str, default: str) -> str:
    """A top-level pipeline setting (`pipeline_name`, `dataset_name`, `destination_type`)."""
    value: Any = dlt.config.get(key)
    return str(value) if value not in (None, "") else default


def pipeline_name(override: str | None = None) -> str:
    """`pipeline_name` (env `PIPELINE_NAME`), default `billing`."""
    return override or setting("pipeline_name", DEFAULT_PIPELINE)


def dataset_name() -> str:
    """`dataset_name` (env `DATASET_NAME`), default `billing`."""
    return setting("dataset_name", DEFAULT_DATASET)


def destination_type() -> str:
    """`destination_type` (env `DESTINATION_TYPE`), default `duckdb`."""
    return setting("destination_type", DEFAULT_DESTINATION)


def pipelines_dir() -> Path:
    """Where dlt keeps the pipeline's local state: `pipelines_dir` (env `PIPELINES_DIR`), else
    dlt's default (`~/.dlt/pipelines`; `/var/dlt/pipelines` for root)."""
    value: Any = dlt.config.get("pipelines_dir")
    if value not in (None, ""):
        return Path(str(value)).expanduser().absolute()
    from dlt.common.pipeline import get_dlt_pipelines_dir

    return Path(get_dlt_pipelines_dir()).absolute()


def seconds(key: str, default: float) -> float:
    """A positive number of seconds at top-level `key` (env: the key in upper case).

    Raises:
        UsageError: the value is not a positive number.
    """
    value: Any = dlt.config.get(key)
    if value in (None, ""):
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise UsageError(f"{key} = {value!r} is not a number of seconds") from None
    if number <= 0:
        raise UsageError(f"{key} = {value!r} must be more than 0 seconds")
    return number


def retry_policy() -> RetryPolicy:
    """How patient every provider request is (docs/operations.md, "Waits and deadlines"):

    - `http_timeout` (env `HTTP_TIMEOUT`, default 30 s): one attempt's read timeout (connect: 10 s at most);
    - `request_deadline` (env `REQUEST_DEADLINE`, default 120 s): one request with all its retries and
      waits; a server that never answers fails the account within this time;
    - `max_retry_after` (env `MAX_RETRY_AFTER`, default 90 s): the longest `Retry-After` honoured; a
      longer one fails the account at once, saying when to run again.
    """
    timeout = seconds("http_timeout", DEFAULT_HTTP_TIMEOUT)
    return RetryPolicy(
        timeout=timeout,
        connect_timeout=min(timeout, RetryPolicy.connect_timeout),
        deadline=seconds("request_deadline", DEFAULT_REQUEST_DEADLINE),
        max_retry_after=seconds("max_retry_after", DEFAULT_MAX_RETRY_AFTER),
    )


def account_concurrency() -> int:
    """How many accounts of one provider are extracted at once: `account_concurrency` (env
    `ACCOUNT_CONCURRENCY`), default 4; 1 runs them one after another, each in its own load.

    Raises:
        UsageError: the value is not a positive whole number.
    """
    value: Any = dlt.config.get("account_concurrency")
    if value in (None, ""):
        return DEFAULT_ACCOUNT_CONCURRENCY
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"account_concurrency = {value!r} is not a whole number") from None
    if number < 1:
        raise UsageError(f"account_concurrency = {value!r} must be 1 or more")
    return number


def batch_clients() -> int:
    """Clients per committed batch of a per-client listing: `batch_clients` (env `BATCH_CLIENTS`),
    default 100; 0 commits each account's run once (sources/shared/sweep.py).

    Raises:
        UsageError: the value is not a whole number of 0 or more.
    """
    value: Any = dlt.config.get("batch_clients")
    if value in (None, ""):
        return DEFAULT_BATCH_CLIENTS
    try:
        number = int(str(value).strip())
    except ValueError:
        raise UsageError(f"batch_clients = {value!r} is not a whole number") from None
    if number < 0:
        raise UsageError(f"batch_clients = {value!r} must be 0 (one commit per account) or more")
    return number


SELECTED_NAME = re.compile(r"^[A-Za-z0-9_.@-]+$")


def select(providers: dict[str, Provider], requested: str | None) -> tuple[list[Provider], bool]:
    """The providers to run (`PROVIDERS` / `--providers`: comma-separated names) and whether the
    user named them explicitly.

    Raises:
        UsageError: a requested name is not a provider.
    """
    chosen, _, explicit = select_accounts(providers, requested)
    return chosen, explicit


def select_accounts(
    providers: dict[str, Provider], requested: str | None
) -> tuple[list[Provider], dict[str, list[str] | None], bool]:
    """The providers to run, the account names asked for per provider (None: every account), and
    whether the user named them explicitly. `PROVIDERS` / `--providers` is a comma-separated list
    of `provider` or `provider:label`.

    Raises:
        UsageError: a requested name is not a provider, or a label is malformed.
    """
    if not requested or not requested.strip():
        return list(providers.values()), dict.fromkeys(providers), False
    wanted: dict[str, list[str] | None] = {}
    unknown: list[str] = []
    for entry in (e.strip() for e in requested.split(",")):
        if not entry:
            continue
        name, colon, label = (part.strip() for part in entry.partition(":"))
        name = name.lower()
        if name not in providers:
            unknown.append(name)
            continue
        if not colon:
            wanted[name] = None
            continue
        if not SELECTED_NAME.match(label):
            raise UsageError(
                f"{entry!r} does not name an account: use provider:label, the label in lower-case letters, "
                "digits and _ (as in [sources.<provider>.accounts.<label>])"
            )
        if name in wanted and wanted[name] is None:
            continue
        labels = wanted.setdefault(name, [])
        if labels is not None and label not in labels:
            labels.append(label)
    if unknown:
        raise UsageError(f"unknown provider(s): {', '.join(unknown)}; choose from {', '.join(providers)}")
    return [providers[n] for n in wanted], wanted, True


# --- accounts ---------------------------------------------------------------------------------

LABEL = re.compile(r"^[a-z0-9_]+$")
BASE_LABEL = "default"


@dataclass(frozen=True)
class AccountConfig:
    """One configured account of a provider.

    Attributes:
        provider: whose account.
        label: its name in `PROVIDERS=provider:label` and `reset provider:label`: the stanza's label
            for `[sources.<p>.accounts.<label>]`; for the base stanza `[sources.<p>]`, its account
            value (the provider's account setting: `account_name`, `workspace`, `account`), or
            `default` when that is not configured.
        stanza: the label of its `accounts` stanza; None for the base stanza.
        value: the `account` column of its rows, where configuration tells it (None: the API does).
    """

    provider: Provider
    label: str
    stanza: str | None
    value: str | None

    @property
    def name(self) -> str:
        return f"{self.provider.name}:{self.label}"

    @property
    def state_key(self) -> str:
        """The key of its run stats: the label its run starts with ("" where the API tells it)."""
        return self.value or ""

    def describe(self) -> str:
        return f"{self.provider.name} [{self.value or self.label}]"

    def hint(self, text: str) -> str:
        """`text` (a message about the base stanza's keys) with the names of this account's own."""
        if self.stanza is None:
            return text
        prefix = f"SOURCES__{self.provider.name.upper()}__"
        account_prefix = f"{prefix}ACCOUNTS__{self.stanza.upper()}__"
        text = re.sub(rf"\b{prefix}(?!ACCOUNTS__)", account_prefix, text)
        return text.replace(f"[{section(self.provider.name)}]", f"[{section(self.provider.name, self.stanza)}]")

    def values(self) -> dict[str, Any]:
        """Every setting of its stanza, as configured or defaulted; a further account's are read
        from its own stanza only (never the base stanza's), its account value from its label
        where the provider's account setting is optional."""
        found = self.provider.values(self.stanza)
        key = self.provider.account_setting
        if key is not None and self.value is not None:
            found[key.name] = self.value
        return found


def stanza_labels(provider: Provider) -> list[str]:
    """The labels of the provider's further accounts, from every place dlt reads configuration:
    environment variables `SOURCES__<P>__ACCOUNTS__<LABEL>__<KEY>` and the tables
    `[sources.<p>.accounts.<label>]` of config.toml and secrets.toml, in order of first mention.

    Raises:
        UsageError: a label is not lower-case letters, digits and `_`, or an entry is malformed.
    """
    labels: dict[str, None] = {}
    prefix = f"SOURCES__{provider.name.upper()}__ACCOUNTS__"
    for variable in sorted(os.environ):
        if not variable.upper().startswith(prefix):
            continue
        label, sep, key = variable[len(prefix) :].partition("__")
        if not sep or not key:
            example = provider.required[0].name if provider.required else "base_url"
            raise UsageError(
                f"{variable} is not an account setting: name it {prefix}<LABEL>__<KEY> "
                f"(e.g. {provider.env(example, 'eu')})"
            )
        if not LABEL.match(label.lower()):
            raise UsageError(_bad_label(provider, label, variable))
        labels[label.lower()] = None
    for accessor in (dlt.config, dlt.secrets):
        for config_provider in accessor.config_providers:
            if config_provider.is_empty or type(config_provider).__name__ == "EnvironProvider":
                continue
            found, _ = config_provider.get_value("accounts", Any, None, "sources", provider.name)
            if found is None:
                continue
            where = f"[{section(provider.name)}.accounts] in {config_provider.name}"
            if not isinstance(found, Mapping):
                raise UsageError(f"{where} must hold one table per account: [{section(provider.name, '<label>')}]")
            for label, stanza in found.items():
                if not LABEL.match(str(label)):
                    raise UsageError(_bad_label(provider, str(label), f"[{section(provider.name, str(label))}]"))
                if not isinstance(stanza, Mapping):
                    raise UsageError(f"{section(provider.name, str(label))} in {config_provider.name} must be a table")
                labels[str(label)] = None
    return list(labels)


def _bad_label(provider: Provider, label: str, where: str) -> str:
    return (
        f"{where}: account label {label!r} of {provider.name} is not allowed; a label is lower-case letters, "
        "digits and _ (e.g. eu_2)"
    )


def accounts(provider: Provider) -> list[AccountConfig]:
    """Every account of the provider: the base stanza's (when its secrets and required keys are
    set, or when it is the only one), then each further account's, in order of first mention.

    Raises:
        UsageError: a malformed label, or two accounts that would share rows and state (the same
            account value) or one label.
    """
    found: list[AccountConfig] = []
    key = provider.account_setting
    stanzas = stanza_labels(provider)
    if not stanzas or not_configured(provider) is None:
        value = _account_value(provider, None)
        found.append(AccountConfig(provider, value or BASE_LABEL, None, value))
    for stanza in stanzas:
        value = _account_value(provider, stanza)
        if value is None and key is not None and not key.required:
            value = stanza  # an optional account label defaults to the stanza's own
        found.append(AccountConfig(provider, stanza, stanza, value))
    _check_distinct(provider, found)
    return found


def _account_value(provider: Provider, stanza: str | None) -> str | None:
    """The account value a stanza configures (its default for the base stanza), or None."""
    key = provider.account_setting
    if key is None:
        return None
    value = provider.value(key, stanza)
    if value is None and stanza is None and isinstance(key.default, str) and key.default.strip():
        value = key.default
    return str(value).strip() if value is not None and str(value).strip() else None


def _check_distinct(provider: Provider, found: list[AccountConfig]) -> None:
    seen: dict[str, AccountConfig] = {}
    key = provider.account_setting
    for account in found:
        if account.value is None:
            continue
        other = seen.get(account.value)
        if other is not None:
            raise UsageError(
                f"{_where(other)} and {_where(account)} are both the {provider.name} account "
                f"{account.value!r}: their rows and incremental state would mix. Give each account its own "
                f"{key.name if key else 'account'}, or remove one of them"
            )
        seen[account.value] = account
    labels: dict[str, AccountConfig] = {}
    for account in found:
        other = labels.get(account.label)
        if other is not None:
            raise UsageError(
                f"{_where(other)} and {_where(account)} are both named {account.name}: rename the stanza "
                f"[{section(provider.name, account.label)}]"
            )
        labels[account.label] = account


def _where(account: AccountConfig) -> str:
    return f"[{section(account.provider.name, account.stanza)}]"


def choose_accounts(provider: Provider, names: list[str] | None) -> list[AccountConfig]:
    """The provider's accounts named by `names` (a label, or an account value), every one for None.

    Raises:
        UsageError: a name matches no account of the provider.
    """
    every = accounts(provider)
    if names is None:
        return every
    chosen: list[AccountConfig] = []
    for name in names:
        match = next((a for a in every if a.label == name), None) or next((a for a in every if a.value == name), None)
        if match is None:
            known = ", ".join(a.name for a in every) or "none"
            raise UsageError(f"{provider.name} has no account {name!r}; its accounts: {known}")
        if match not in chosen:
            chosen.append(match)
    return chosen


def account_not_configured(account: AccountConfig) -> str | None:
    """Why an account cannot run (a required key is missing), or None."""
    if account.stanza is None:
        return not_configured(account.provider)
    provider = account.provider
    key = provider.account_setting
    missing = [
        provider.env(setting.name, account.stanza)
        for setting in provider.required
        if provider.value(setting, account.stanza) is None and not (setting == key and account.value)
    ]
    if not missing:
        return None
    return f"not configured: set {', '.join(missing)} (or [{section(provider.name, account.stanza)}] in .dlt/)"


def not_configured(provider: Provider) -> str | None:
    """Why a provider's base stanza cannot run, or None when its secrets and required keys are set."""
    missing = [provider.env(s.name) for s in provider.required if provider.value(s) is None]
    if not missing:
        return None
    return f"not configured: set {', '.join(missing)} (or [sources.{provider.name}] in .dlt/)"


def account_names(provider: Provider) -> str:
    """`kitchen [acme]`: the provider with its configured account label, where configuration has
    one (some providers learn it from the API: then the provider alone)."""
    value = _account_value(provider, None)
    return f"{provider.name} [{value}]" if value else provider.name


def nothing_configured(providers: dict[str, Provider]) -> str:
    """The message for a run where no provider has its secrets, naming what each one needs."""
    needs = "; ".join(f"{p.name}: {', '.join(p.env(s.name) for s in p.required)}" for p in providers.values())
    return (
        "no provider is configured. Put credentials in .dlt/secrets.toml (see .dlt/secrets.toml.example) "
        f"or in environment variables ({needs}); or run `make demo` to load the sandboxes."
    )


def duckdb_name_clash(destination: str, duckdb_file: str) -> str | None:
    """Why a DuckDB file cannot hold the dataset, or None. DuckDB names a file's catalog after the
    file (up to its first dot), and a catalog and a schema of one name make `billing.invoices`
    ambiguous in every DuckDB client (docs/configuration.md, Pipeline)."""
    if destination not in ("duckdb", "dlt.destinations.duckdb"):
        return None
    catalog = Path(duckdb_file).name.split(".")[0]
    dataset = dataset_name()
    if catalog.lower() != dataset.lower():
        return None
    return (
        f"the DuckDB file {duckdb_file} is named like the dataset {dataset!r}: DuckDB calls the file's catalog "
        f"{catalog!r} too, so {dataset}.invoices would be ambiguous in every DuckDB client. Rename the file "
        "(the default is warehouse.duckdb; an existing file can simply be renamed) or set dataset_name"
    )


DEFAULT_MAX_DELETE_FRACTION = 0.2
MAX_DELETE_FRACTION = "max_delete_fraction"


def max_delete_fraction(account: AccountConfig) -> float:
    """The share of an account's invoices (and of its clients) one run may mark deleted before the
    guard refuses (docs/canonical-model.md, "Deletions"): `max_delete_fraction` of the account's
    own stanza (`[sources.<p>]` or `[sources.<p>.accounts.<label>]`, env
    `SOURCES__<P>__MAX_DELETE_FRACTION` / `SOURCES__<P>__ACCOUNTS__<LABEL>__MAX_DELETE_FRACTION`),
    else the pipeline's `max_delete_fraction` (env `MAX_DELETE_FRACTION`), else 0.2. As every
    account key, a further account's stanza never falls back to the base stanza.

    Raises:
        UsageError: the value is not a number from 0 to 1.
    """
    key = account.provider.key(MAX_DELETE_FRACTION, account.stanza)
    for name in (key, MAX_DELETE_FRACTION):
        value: Any = dlt.config.get(name)
        if value in (None, ""):
            continue
        try:
            number = float(str(value).strip())
        except ValueError:
            number = -1.0
        if not 0 <= number <= 1:
            shown = account.provider.env(MAX_DELETE_FRACTION, account.stanza) if name == key else "MAX_DELETE_FRACTION"
            raise UsageError(f"{shown} = {value!r} must be a number from 0 to 1 (0.2 allows 20 %)")
        return number
    return DEFAULT_MAX_DELETE_FRACTION
