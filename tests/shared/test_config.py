"""Account discovery and the pipeline's settings (pipelines/config.py), read through dlt's own config
providers: `.dlt/config.toml` and `.dlt/secrets.toml` of a working directory of the test's own, and
environment variables. No command line, no pipeline.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dlt.common.configuration.container import Container

from pipelines import config
from pipelines.config import AccountConfig, UsageError
from sources.flowpayroll import PROVIDER as FLOWPAYROLL
from sources.fohlio import PROVIDER as FOHLIO
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.kitchen import PROVIDER as KITCHEN
from tests.inprocess import _dlt_fresh

# Variables of the developer's environment that would configure what these tests configure.
OURS: tuple[str, ...] = ("SOURCES__", "MAX_DELETE_FRACTION", "BATCH_CLIENTS", "ACCOUNT_CONCURRENCY", "HTTP_TIMEOUT")
OURS += ("REQUEST_DEADLINE", "MAX_RETRY_AFTER", "DLT_", "RUNTIME__", "PIPELINE_NAME", "DATASET_NAME", "PROVIDERS")


@dataclass
class Project:
    """A working directory whose `.dlt/` and environment are the only configuration dlt sees."""

    path: Path
    monkeypatch: pytest.MonkeyPatch

    def configure(self, config_toml: str = "", secrets_toml: str = "", **env: str) -> None:
        (self.path / ".dlt" / "config.toml").write_text(config_toml, encoding="utf-8")
        (self.path / ".dlt" / "secrets.toml").write_text(secrets_toml, encoding="utf-8")
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        Container.reset_main_thread()  # dlt reads its providers afresh, as a new process would


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    for name in [n for n in os.environ if n.upper().startswith(OURS)]:
        monkeypatch.delenv(name)
    (tmp_path / ".dlt").mkdir()
    (tmp_path / "home").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no global ~/.dlt of the developer's
    monkeypatch.chdir(tmp_path)
    with _dlt_fresh():
        yield Project(tmp_path, monkeypatch)


def labels(found: list[AccountConfig]) -> list[tuple[str, str | None, str | None]]:
    return [(a.label, a.stanza, a.value) for a in found]


KITCHEN_BASE = '[sources.kitchen]\nworkspace = "acme"\n'
KITCHEN_KEY = '[sources.kitchen]\napi_key = "kt_base"\n'


# --- stanzas ----------------------------------------------------------------------------------


def test_further_accounts_come_from_the_environment_and_both_toml_files_in_dlt_s_lookup_order(
    project: Project,
) -> None:
    project.configure(
        KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n[sources.kitchen.accounts.us]\n',
        KITCHEN_KEY + '[sources.kitchen.accounts.us]\napi_key = "kt_us"\n[sources.kitchen.accounts.apac_2]\n',
        SOURCES__KITCHEN__ACCOUNTS__LATAM__API_KEY="kt_latam",
    )
    # The environment, then secrets.toml, then config.toml (dlt's order of lookup), each label once.
    assert config.stanza_labels(KITCHEN) == ["latam", "us", "apac_2", "eu"]
    assert config.stanza_labels(FOHLIO) == []


@pytest.mark.parametrize(
    ("variable", "message"),
    [
        ("SOURCES__KITCHEN__ACCOUNTS__EU-2__API_KEY", "account label 'EU-2' of kitchen is not allowed"),
        (
            "SOURCES__KITCHEN__ACCOUNTS__EU",
            "is not an account setting: name it SOURCES__KITCHEN__ACCOUNTS__<LABEL>__<KEY>",
        ),
    ],
)
def test_a_malformed_account_variable_is_refused_with_its_name(project: Project, variable: str, message: str) -> None:
    project.configure(**{variable: "x"})
    with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")) as refused:
        config.stanza_labels(KITCHEN)
    assert variable in str(refused.value)


def test_a_malformed_accounts_table_is_refused_with_where_it_is(project: Project) -> None:
    project.configure('[sources.kitchen.accounts.EU]\nworkspace = "acme_eu"\n')
    with pytest.raises(UsageError, match=r"\[sources.kitchen.accounts.EU\]: account label 'EU' of kitchen"):
        config.stanza_labels(KITCHEN)

    project.configure('[sources.kitchen]\naccounts = "eu"\n')
    with pytest.raises(UsageError, match=r"\[sources.kitchen.accounts\] in .* must hold one table per account"):
        config.stanza_labels(KITCHEN)


# --- accounts ---------------------------------------------------------------------------------


def test_the_base_stanza_is_an_account_when_configured_or_alone(project: Project) -> None:
    project.configure()
    assert labels(config.accounts(KITCHEN)) == [("default", None, None)]  # alone: reported as not configured
    assert config.account_not_configured(config.accounts(KITCHEN)[0]) == (
        "not configured: set SOURCES__KITCHEN__API_KEY, SOURCES__KITCHEN__WORKSPACE (or [sources.kitchen] in .dlt/)"
    )

    project.configure(KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n')
    # Not configured (no key) beside a further account: left out rather than reported.
    assert labels(config.accounts(KITCHEN)) == [("eu", "eu", "acme_eu")]

    project.configure(KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n', KITCHEN_KEY)
    assert labels(config.accounts(KITCHEN)) == [("acme", None, "acme"), ("eu", "eu", "acme_eu")]


def test_an_account_label_defaults_where_the_account_setting_is_optional(project: Project) -> None:
    project.configure(
        '[sources.fohlio.accounts.studio_b]\nbase_url = "http://b"\n[sources.flowpayroll.accounts.uk]\n',
        '[sources.fohlio]\napi_key = "f1"\n[sources.fohlio.accounts.studio_b]\napi_key = "f2"\n',
    )
    # Fohlio's `account` defaults to "default" in the base stanza and to the stanza's label beside it.
    assert labels(config.accounts(FOHLIO)) == [("default", None, "default"), ("studio_b", "studio_b", "studio_b")]
    assert config.accounts(FOHLIO)[1].values()["account"] == "studio_b"
    # Flow Payroll's has no default: the API tells the base stanza's label; a stanza's is its own.
    assert labels(config.accounts(FLOWPAYROLL)) == [("uk", "uk", "uk")]


def test_two_accounts_that_would_share_rows_or_a_name_are_refused(project: Project) -> None:
    project.configure(
        KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme"\n',
        KITCHEN_KEY + '[sources.kitchen.accounts.eu]\napi_key = "kt_eu"\n',
    )
    with pytest.raises(
        UsageError, match=r"\[sources.kitchen\] and \[sources.kitchen.accounts.eu\] are both the kitchen"
    ):
        config.accounts(KITCHEN)

    project.configure(
        '[sources.kitchen]\nworkspace = "eu"\n[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n', KITCHEN_KEY
    )
    with pytest.raises(
        UsageError, match=r"are both named kitchen:eu: rename the stanza \[sources.kitchen.accounts.eu\]"
    ):
        config.accounts(KITCHEN)


def test_accounts_are_chosen_by_label_or_by_account_value(project: Project) -> None:
    project.configure(
        KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n',
        KITCHEN_KEY + '[sources.kitchen.accounts.eu]\napi_key = "kt_eu"\n',
    )
    assert labels(config.choose_accounts(KITCHEN, None)) == [("acme", None, "acme"), ("eu", "eu", "acme_eu")]
    assert labels(config.choose_accounts(KITCHEN, ["acme_eu", "eu", "acme"])) == [
        ("eu", "eu", "acme_eu"),
        ("acme", None, "acme"),
    ]
    with pytest.raises(UsageError, match="kitchen has no account 'us'; its accounts: kitchen:acme, kitchen:eu"):
        config.choose_accounts(KITCHEN, ["us"])


def test_a_further_account_reads_its_own_stanza_only_and_names_its_own_keys(project: Project) -> None:
    project.configure(
        KITCHEN_BASE + 'per_page = 5\nstate = "active"\n[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n',
        KITCHEN_KEY,
        SOURCES__KITCHEN__ACCOUNTS__EU__PER_PAGE="25",
    )
    base, eu = config.accounts(KITCHEN)
    assert base.values() == {
        "api_key": "kt_base",
        "workspace": "acme",
        "base_url": None,
        "state": "active",
        "per_page": 5,
        "requests_per_minute": None,
        "concurrency": 1,
    }
    assert eu.values() == {**base.values(), "api_key": None, "workspace": "acme_eu", "state": "all", "per_page": 25}
    assert config.account_not_configured(base) is None
    assert config.account_not_configured(eu) == (
        "not configured: set SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY (or [sources.kitchen.accounts.eu] in .dlt/)"
    )
    assert eu.hint("check SOURCES__KITCHEN__API_KEY (api_key under [sources.kitchen] in .dlt/secrets.toml)") == (
        "check SOURCES__KITCHEN__ACCOUNTS__EU__API_KEY (api_key under [sources.kitchen.accounts.eu] in "
        ".dlt/secrets.toml)"
    )
    assert base.hint("SOURCES__KITCHEN__API_KEY") == "SOURCES__KITCHEN__API_KEY"
    assert (eu.name, eu.describe(), eu.state_key) == ("kitchen:eu", "kitchen [acme_eu]", "acme_eu")


def test_the_environment_wins_over_the_toml_files(project: Project) -> None:
    project.configure(
        '[sources.invoicexpress]\naccount_name = "acme"\nstatuses = ["final"]\n',
        '[sources.invoicexpress]\napi_key = "from-toml"\n',
        SOURCES__INVOICEXPRESS__API_KEY="from-env",
        SOURCES__INVOICEXPRESS__CLIENT_IDS='["12", "13"]',
    )
    [account] = config.accounts(INVOICEXPRESS)
    values = account.values()
    assert (values["api_key"], values["statuses"], values["client_ids"]) == ("from-env", ["final"], ["12", "13"])
    api, built = INVOICEXPRESS.account(values)
    assert built.only_clients == ["12", "13"] and not api.invoices.complete


# --- max_delete_fraction ------------------------------------------------------------------------


def test_max_delete_fraction_from_the_account_stanza_then_the_pipeline_never_the_base_stanza(
    project: Project,
) -> None:
    project.configure(
        KITCHEN_BASE
        + "max_delete_fraction = 0.3\n"
        + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\nmax_delete_fraction = 0.05\n'
        + '[sources.kitchen.accounts.us]\nworkspace = "acme_us"\n',
        KITCHEN_KEY,
    )
    base, eu, us = config.accounts(KITCHEN)
    assert [config.max_delete_fraction(a) for a in (base, eu, us)] == [0.3, 0.05, config.DEFAULT_MAX_DELETE_FRACTION]

    project.monkeypatch.setenv("MAX_DELETE_FRACTION", "0.5")
    project.monkeypatch.setenv("SOURCES__KITCHEN__ACCOUNTS__EU__MAX_DELETE_FRACTION", "0")
    assert [config.max_delete_fraction(a) for a in (base, eu, us)] == [0.3, 0.0, 0.5]


@pytest.mark.parametrize("value", ["1.5", "-0.1", "a fifth"])
def test_a_max_delete_fraction_outside_0_to_1_is_refused_naming_its_variable(project: Project, value: str) -> None:
    project.configure(KITCHEN_BASE + '[sources.kitchen.accounts.eu]\nworkspace = "acme_eu"\n', KITCHEN_KEY)
    project.monkeypatch.setenv("SOURCES__KITCHEN__ACCOUNTS__EU__MAX_DELETE_FRACTION", value)
    base, eu = config.accounts(KITCHEN)
    assert config.max_delete_fraction(base) == config.DEFAULT_MAX_DELETE_FRACTION
    with pytest.raises(UsageError, match=f"SOURCES__KITCHEN__ACCOUNTS__EU__MAX_DELETE_FRACTION = '{value}' must be"):
        config.max_delete_fraction(eu)


# --- the pipeline's own settings --------------------------------------------------------------


def test_pipeline_settings_default_and_are_validated(project: Project) -> None:
    project.configure()
    assert (config.batch_clients(), config.account_concurrency()) == (100, 4)
    assert config.retry_policy() == config.RetryPolicy()

    project.configure("batch_clients = 0\naccount_concurrency = 2\nhttp_timeout = 5\nrequest_deadline = 60\n")
    assert (config.batch_clients(), config.account_concurrency()) == (0, 2)
    policy = config.retry_policy()
    assert (policy.timeout, policy.connect_timeout, policy.deadline) == (5.0, 5.0, 60.0)

    refused: list[tuple[str, str, Callable[[], object], str]] = [
        (
            "BATCH_CLIENTS",
            "-1",
            config.batch_clients,
            "batch_clients = '-1' must be 0 (one commit per account) or more",
        ),
        ("BATCH_CLIENTS", "ten", config.batch_clients, "batch_clients = 'ten' is not a whole number"),
        ("ACCOUNT_CONCURRENCY", "0", config.account_concurrency, "account_concurrency = '0' must be 1 or more"),
        ("HTTP_TIMEOUT", "0", config.retry_policy, "http_timeout = '0' must be more than 0 seconds"),
        ("MAX_RETRY_AFTER", "soon", config.retry_policy, "max_retry_after = 'soon' is not a number of seconds"),
    ]
    for name, value, read, message in refused:
        project.configure(**{name: value})
        with pytest.raises(UsageError, match=message.replace("(", r"\(").replace(")", r"\)")):
            read()
        project.monkeypatch.delenv(name)


def test_providers_and_accounts_are_selected_by_name() -> None:
    providers = {"kitchen": KITCHEN, "fohlio": FOHLIO}
    assert config.select_accounts(providers, None) == ([KITCHEN, FOHLIO], {"kitchen": None, "fohlio": None}, False)
    chosen, wanted, explicit = config.select_accounts(providers, " Fohlio:studio_b, kitchen ,fohlio:studio_b,")
    assert (chosen, wanted, explicit) == ([FOHLIO, KITCHEN], {"fohlio": ["studio_b"], "kitchen": None}, True)
    assert config.select_accounts(providers, "kitchen,kitchen:eu")[1] == {"kitchen": None}
    with pytest.raises(UsageError, match="unknown provider"):
        config.select_accounts(providers, "kitchen,xero")
    with pytest.raises(UsageError, match="'kitchen:eu west' does not name an account"):
        config.select_accounts(providers, "kitchen:eu west")
