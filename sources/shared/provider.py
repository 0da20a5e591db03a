"""What a provider folder declares so that the pipeline, remap, Dagster and the docs can find,
configure and run it: one `Provider` per folder, read directly by all of them.

A provider's `__init__.py` defines `PROVIDER = Provider(...)`: its API (`declaration.Api`), its
settings (each key of `[sources.<name>]` declared once, secrets included) and `account`, which
turns the values of those settings into the `Api` and `Account` the shared driver runs. The
pipeline discovers every folder under `sources/` that has one; nothing else lists providers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import dlt
import httpx

from sources.shared.declaration import REQUIRED, Api, Setting

if TYPE_CHECKING:
    from dlt.extract.source import DltSource

    from sources.shared.driver import Account


@dataclass(frozen=True)
class Provider:
    """A provider as the pipeline sees it.

    Attributes:
        name: folder name = dlt source name = config section = `provider` column value.
        title: the provider's display name.
        api: the API as the driver reads it.
        settings: every key of its stanza, in the order the docs list them.
        account: the `Api` and `Account` of one account from its settings' values (every
            setting present, defaults applied); raises `ConfigurationError` for a value it refuses.
    """

    name: str
    title: str
    api: Api
    settings: tuple[Setting, ...]
    account: Callable[[Mapping[str, Any]], tuple[Api, Account]]

    def setting(self, name: str) -> Setting:
        return next(s for s in self.settings if s.name == name)

    @property
    def account_setting(self) -> Setting | None:
        """The setting whose value is the `account` column (None: the API tells it)."""
        return next((s for s in self.settings if s.account), None)

    @property
    def required(self) -> tuple[Setting, ...]:
        """The settings an account cannot run without: its secrets and required keys."""
        return tuple(s for s in self.settings if s.required)

    def key(self, name: str, account: str | None = None) -> str:
        """The dlt key of a setting: of the base stanza, or of the account stanza `account`."""
        return config_key(self.name, name, account)

    def env(self, name: str, account: str | None = None) -> str:
        """The environment variable of a setting: of the base stanza, or of the account stanza `account`."""
        return env_name(self.name, name, account)

    def value(self, setting: Setting, stanza: str | None = None) -> Any:
        """A setting exactly where it is set (dlt's config or secrets, the environment first),
        coerced to its type; None when it is not set there."""
        accessor = dlt.secrets if setting.secret else dlt.config
        value: Any = accessor.get(self.key(setting.name, stanza), setting.type)
        if isinstance(value, str) and not value.strip():
            return None
        return value

    def values(self, stanza: str | None = None, given: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """Every setting of one stanza: `given`, else as configured, else its default (a
        required one left None)."""
        found: dict[str, Any] = {}
        for setting in self.settings:
            value = (given or {}).get(setting.name)
            if value is None:
                value = self.value(setting, stanza)
            if value is None and setting.default is not REQUIRED:
                value = setting.default
            found[setting.name] = value
        return found

    def source(self, transport: httpx.BaseTransport | None = None, **given: Any) -> DltSource:
        """This provider as a plain dlt source of one account (its base stanza, `given` values
        first), for use in a dlt pipeline of one's own: `pipeline.run(PROVIDER.source())`;
        `transport`, when given, carries its requests (an in-process API in tests)."""
        import dataclasses

        from dlt.extract.source import DltSource

        from sources.shared.driver import billing_resource

        api, account = self.account(self.values(given=given))
        if transport is not None:
            account = dataclasses.replace(account, transport=transport)
        return DltSource(dlt.Schema(self.name), self.name, [billing_resource(api, account)])

    def settings_table(self) -> str:
        """The provider's settings as the Markdown table its README shows (`docs_tables`)."""
        rows = [
            "| key | env | default | meaning |",
            "|---|---|---|---|",
        ]
        for setting in self.settings:
            where = "secrets.toml" if setting.secret else "config.toml"
            if setting.required:
                default = "required"
            elif setting.default in (None, ""):
                default = "unset"
            elif isinstance(setting.default, (list, tuple)):
                default = "`[" + ", ".join(f'"{v}"' for v in setting.default) + "]`"
            else:
                default = f"`{setting.default}`"
            rows.append(f"| `{setting.name}` ({where}) | `{self.env(setting.name)}` | {default} | {setting.help} |")
        return "\n".join(rows)


SETTINGS_START = "<!-- settings: written from settings.py by `python -m sources.shared.provider`; do not edit -->"
SETTINGS_END = "<!-- end of settings -->"


def docs_tables(readme: str, provider: Provider) -> str:
    """`readme` with its settings table (between `SETTINGS_START` and `SETTINGS_END`) written anew
    from the provider's declaration."""
    start, end = readme.index(SETTINGS_START) + len(SETTINGS_START), readme.index(SETTINGS_END)
    return readme[:start] + "\n" + provider.settings_table() + "\n" + readme[end:]


def section(provider: str, account: str | None = None) -> str:
    """The TOML table of a provider's stanza: `sources.<provider>`, or of one of its further
    accounts, `sources.<provider>.accounts.<label>` (docs/configuration.md)."""
    return f"sources.{provider}" if account is None else f"sources.{provider}.accounts.{account}"


def config_key(provider: str, name: str, account: str | None = None) -> str:
    """The dlt configuration key of a provider's setting: `sources.<provider>.<name>`
    (`sources.<provider>.accounts.<label>.<name>` for a further account)."""
    return f"{section(provider, account)}.{name}"


def env_name(provider: str, name: str, account: str | None = None) -> str:
    """The environment variable dlt reads for a provider's setting: `SOURCES__<P>__<NAME>`
    (`SOURCES__<P>__ACCOUNTS__<LABEL>__<NAME>` for a further account)."""
    return "__".join(part.upper() for part in config_key(provider, name, account).split("."))


def config_hint(provider: str, names: Iterable[str], *, file: str = "secrets.toml") -> str:
    """What to set, in words a user can act on: the environment variables and the TOML keys
    of the provider's settings `names`, in `.dlt/<file>`."""
    names = list(names)
    envs = ", ".join(env_name(provider, n) for n in names)
    keys = ", ".join(names)
    return f"check {envs} ({keys} under [sources.{provider}] in .dlt/{file})"


def main() -> None:
    """Write every built-in provider's settings table into its README (`sources/<name>/README.md`)."""
    from pathlib import Path

    from pipelines.registry import discover

    for provider in discover().values():
        readme = Path(__file__).parents[1] / provider.name / "README.md"
        if readme.exists():
            readme.write_text(docs_tables(readme.read_text(encoding="utf-8"), provider), encoding="utf-8")


if __name__ == "__main__":
    main()
