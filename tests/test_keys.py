"""Misspelt or unknown configuration keys (pipelines/keys.py): each is named with where it was set
and the closest known key, never with its value; dlt's own keys are never named. Read from the
`.dlt/` of a working directory of the test's own and the environment; one load shows where a run
prints them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from dlt.common.configuration.container import Container

from pipelines import keys
from pipelines.registry import discover
from sandbox import kitchen
from tests.inprocess import _dlt_fresh
from tests.support import REPO, Workspace, serve

OURS = ("SOURCES__", "CHECKS__", "ANALYSIS__", "DLT_", "RUNTIME__")
SECRET = "s3cr3t-never-shown"


@dataclass
class Project:
    path: Path
    monkeypatch: pytest.MonkeyPatch

    def unknown(self, config_toml: str = "", secrets_toml: str = "", **env: str) -> list[str]:
        (self.path / ".dlt" / "config.toml").write_text(config_toml, encoding="utf-8")
        (self.path / ".dlt" / "secrets.toml").write_text(secrets_toml, encoding="utf-8")
        for name, value in env.items():
            self.monkeypatch.setenv(name, value)
        Container.reset_main_thread()  # dlt reads its providers afresh, as a new process would
        return keys.unknown()


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


def line(key: str, section: str, where: str, hint: str) -> str:
    return f'config: unknown key "{key}" {section} ({where}): {hint} It is ignored.'


def mean(key: str) -> str:
    return f'did you mean "{key}"?'


CONFIG, SECRETS = ".dlt/config.toml", ".dlt/secrets.toml"


def test_each_section_names_the_key_where_it_is_and_the_closest_known_key(project: Project) -> None:
    config_toml = (
        "[checks]\nmax_hours_since_lod = 3\nmax_volume_drop = 0.5\n"
        '[analysis]\nreporting_curency = "USD"\n'
        "[sources.ecb]\nenable = false\n"
        '[sources.kitchen]\nworkspce = "acme"\nstate = "all"\n'
    )
    found = project.unknown(config_toml, f'[sources.kitchen]\napi_ky = "{SECRET}"\n')
    assert found == [
        line("reporting_curency", "in [analysis]", CONFIG, mean("reporting_currency")),
        line("enable", "in [sources.ecb]", CONFIG, mean("enabled")),
        line("max_hours_since_lod", "in [checks]", CONFIG, mean("max_hours_since_load")),
        line("workspce", "in [sources.kitchen]", CONFIG, mean("workspace")),
        line("api_ky", "in [sources.kitchen]", SECRETS, mean("api_key")),
    ]


def test_a_key_close_to_none_lists_the_known_ones(project: Project) -> None:
    assert project.unknown("[checks]\ncolour = 1\n") == [
        line("colour", "in [checks]", CONFIG, "known: max_hours_since_load, max_volume_drop.")
    ]


def test_an_unknown_provider_is_named_with_the_closest_provider(project: Project) -> None:
    found = project.unknown('[sources.kitchn]\nworkspace = "acme"\n[sources.stripe]\napi_key = "x"\n')
    known = ", ".join(["ecb", *discover()])
    assert found == [
        line("kitchn", "in [sources]", CONFIG, mean("kitchen")),
        line("stripe", "in [sources]", CONFIG, f"known: {known}."),
    ]


def test_account_stanzas_know_the_provider_s_keys_but_accounts(project: Project) -> None:
    secrets_toml = (
        '[sources.kitchen.accounts.eu]\napi_key = "x"\nworkspce = "eu"\nmax_delete_fraction = 0.5\n'
        '[sources.kitchen.acounts.us]\napi_key = "y"\n'
    )
    found = project.unknown("", secrets_toml, SOURCES__KITCHEN__ACCOUNTS__EU__STAT="active")
    assert found == [
        line("acounts", "in [sources.kitchen]", SECRETS, mean("accounts")),
        line("workspce", "in [sources.kitchen.accounts.eu]", SECRETS, mean("workspace")),
        line("stat", "in [sources.kitchen.accounts.eu]", "env SOURCES__KITCHEN__ACCOUNTS__EU__STAT", mean("state")),
    ]


def test_environment_variables_are_named_as_set(project: Project) -> None:
    found = project.unknown(
        CHECKS__MAX_VOLUME_DRP="0.3",
        ANALYSIS__FX_RATE_FILE="rates.csv",
        SOURCES__ECB__BASEURL="http://mirror",
        SOURCES__KITCHEN__WORKSPCE="acme",
        SOURCES__KITCHN__API_KEY=SECRET,
    )
    assert found == [
        line("fx_rate_file", "in [analysis]", "env ANALYSIS__FX_RATE_FILE", mean("fx_rates_file")),
        line("max_volume_drp", "in [checks]", "env CHECKS__MAX_VOLUME_DRP", mean("max_volume_drop")),
        line("baseurl", "in [sources.ecb]", "env SOURCES__ECB__BASEURL", mean("base_url")),
        line("workspce", "in [sources.kitchen]", "env SOURCES__KITCHEN__WORKSPCE", mean("workspace")),
        line("kitchn", "in [sources]", "env SOURCES__KITCHN__API_KEY", mean("kitchen")),
    ]


def test_a_top_level_key_is_named_only_when_close_to_one_of_the_project_s(project: Project) -> None:
    config_toml = 'dataset = "billing"\nfoo = 1\n[check]\nmax_volume_drop = 0.3\n'
    assert project.unknown(config_toml) == [
        line("dataset", "at the top level", CONFIG, mean("dataset_name")),
        line("check", "at the top level", CONFIG, mean("checks")),
    ]


def test_every_known_key_and_dlt_s_own_are_not_named(project: Project) -> None:
    every = {p.env(s.name, label): "1" for p in discover().values() for s in p.settings for label in (None, "eu")}
    every |= {p.env("max_delete_fraction", label): "0.2" for p in discover().values() for label in (None, "eu")}
    # dlt's own: pipeline and runtime settings, its sections, a source's schema, a resource's settings
    config_toml = (
        'progress = "log"\npipeline_salt = "x"\ndestination_name = "y"\nrequest_timeout = 5\n'
        + (REPO / ".dlt" / "config.toml").read_text(encoding="utf-8")
        + "[normalize]\nworkers = 2\n[sources.data_writer]\nbuffer_max_items = 100\n"
        + '[sources.kitchen.schema]\nnaming = "direct"\n[sources.ecb.fx_rates]\nwrite_disposition = "merge"\n'
    )
    env = {**every, "SOURCES__ECB__HISTORY": "h.zip", "RUNTIME__LOG_LEVEL": "INFO", "HTTP_PROXY": "http://p"}
    assert project.unknown(config_toml, '[destination.duckdb]\ncredentials = "w.duckdb"\n', **env) == []


def test_no_value_is_ever_shown(project: Project) -> None:
    found = project.unknown(
        f'[checks]\nmax_hours = "{SECRET}"\n',
        f'[sources.kitchen]\napi_ky = "{SECRET}"\n[sources.stripe]\napi_key = "{SECRET}"\n',
        SOURCES__KITCHEN__API_KY=SECRET,
        SOURCES__FOHLIO__TOKEN=SECRET,
    )
    assert len(found) == 5 and not any(SECRET in f for f in found), found


def test_a_file_that_does_not_parse_is_left_to_dlt(project: Project) -> None:
    found = project.unknown("[checks]\nmax_hours = 3\n", '[sources.kitchen\napi_key = "x"\n')  # dlt says why
    assert found == [line("max_hours", "in [checks]", CONFIG, mean("max_hours_since_load"))]


def test_the_top_level_keys_are_those_the_project_reads() -> None:
    read = re.compile(r'(?:dlt\.config\.get|seconds|setting)\(\s*"([a-z_]+)"')
    found = {key for path in (REPO / "pipelines").glob("*.py") for key in read.findall(path.read_text())}
    assert found <= set(keys.PROJECT_KEYS), found - set(keys.PROJECT_KEYS)


@pytest.mark.integration
def test_a_load_names_an_unknown_key_once_after_its_header_and_before_a_refusal(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "SOURCES__KITCHEN__PER_PAG": "50"}
        loaded = workspace.run(env)
        api_key = env.pop("SOURCES__KITCHEN__API_KEY")
        refused = workspace.run({**env, "SOURCES__KITCHEN__API_KY": api_key})
    warning = line("per_pag", "in [sources.kitchen]", "env SOURCES__KITCHEN__PER_PAG", mean("per_page"))
    lines = loaded.stderr.splitlines()
    header = next(i for i, text in enumerate(lines) if " · run " in text)
    assert loaded.code == 0 and lines[header + 1].endswith(f" WARNING {warning}"), loaded.output
    assert loaded.stderr.count(warning) == 1
    # A misspelt secret: no provider is configured (exit 2), and the key that may be why comes first.
    assert refused.code == 2 and "no provider is configured" in refused.stderr, refused.output
    assert refused.stderr.index('unknown key "api_ky" in [sources.kitchen]') < refused.stderr.index("no provider")
    assert api_key not in refused.output


@pytest.mark.integration
def test_a_first_load_where_no_settings_folder_is_says_so_once(workspace: Workspace) -> None:
    app = kitchen.create_app()
    with serve(app) as server:
        first, second = workspace.run(app.pipeline_env(server.url)), workspace.run(app.pipeline_env(server.url))
        (workspace.path / ".dlt").mkdir()
        workspace.db.unlink()
        with_folder = workspace.run(app.pipeline_env(server.url))
    said = f"no .dlt/ folder in {workspace.path}: this run reads its settings from environment variables only"
    assert first.code == 0 and said in first.stderr and str(workspace.db) in first.stderr, first.output
    assert second.code == 0 and "no .dlt/ folder" not in second.stderr  # the warehouse it made is there now
    assert with_folder.code == 0 and "no .dlt/ folder" not in with_folder.stderr


def test_a_secret_in_config_toml_is_named_with_where_it_belongs(project: Project) -> None:
    # dlt never reads a secret from config.toml: the provider would be "not configured", unexplained.
    config_toml = (
        f'[sources.kitchen]\napi_key = "{SECRET}"\nworkspace = "acme"\n[sources.fohlio.accounts.eu]\napi_key = "x"\n'
    )
    found = project.unknown(config_toml, f'[sources.flowpayroll]\nclient_secret = "{SECRET}"\n')
    moved = "is not read from config.toml: move it to .dlt/secrets.toml (or the environment). It is ignored."
    assert found == [
        f'config: the secret "api_key" in [sources.fohlio.accounts.eu] ({CONFIG}) {moved}',
        f'config: the secret "api_key" in [sources.kitchen] ({CONFIG}) {moved}',
    ]
    assert SECRET not in "\n".join(found)
