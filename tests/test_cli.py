"""The command line as its users meet it, parsed and dispatched without a warehouse: `--version`,
each command's own help, the command a bare `billing-elt` runs, wrong command lines (exit 2),
and a stop (KeyboardInterrupt, dlt's SignalReceivedException) escaping a command: one line, exit
128 + the signal, no traceback. The commands themselves are replaced by stand-ins."""

from __future__ import annotations

import contextlib
import io
import signal
from collections.abc import Iterator
from typing import Any

import pytest
from dlt.common.exceptions import SignalReceivedException

from pipelines import cli
from pipelines import remap as remap_module
from pipelines import report as report_module
from pipelines.run import version
from sources.shared import stop
from tests.inprocess import _logging_restored, _signal_handlers_restored

OPTIONS = {
    "load": ["--providers", "--allow-mass-delete", "--progress-interval", "--pipeline-name", "PROVIDERS"],
    "reset": ["PROVIDER[:LABEL]", "--pipeline-name"],
    "remap": ["PROVIDER[:LABEL][,...]", "--pipeline-name"],
    "report": ["--output", "--db"],
    "check": ["--pipeline-name"],
}
EXIT_CODES = {
    "load": ["0 ", "1 ", "2 ", "3 ", "130 / 143"],
    "reset": ["0 ", "1 ", "2 ", "3 ", "130 / 143"],
    "remap": ["0 ", "1 ", "2 ", "3 ", "130 / 143"],
    "report": ["0 ", "1 ", "2 ", "130 / 143"],
    "check": ["0 ", "1 ", "2 ", "3 ", "4 ", "130 / 143"],
}


@pytest.fixture(autouse=True)
def _process_kept() -> Iterator[None]:
    """The logging and signal handlers a command line installs, undone after each test."""
    with _logging_restored(), _signal_handlers_restored():
        yield


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Every command replaced by a stand-in that records how it was called and exits 0."""
    made: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []

    def stand_in(name: str) -> Any:
        def called(*args: Any, **kwargs: Any) -> int:
            made.append((name, args, kwargs))
            return 0

        return called

    monkeypatch.setattr(cli, "load", stand_in("load"))
    monkeypatch.setattr(cli, "reset", stand_in("reset"))
    monkeypatch.setattr(remap_module, "remap", stand_in("remap"))
    monkeypatch.setattr(report_module, "run", stand_in("report"))
    monkeypatch.setattr(cli.checks, "check", stand_in("check"))
    monkeypatch.delenv("PROVIDERS", raising=False)
    monkeypatch.delenv("PROGRESS_INTERVAL", raising=False)
    return made


def help_of(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = cli.main([*argv, "--help"])
    return code, out.getvalue()


def test_version_prints_the_program_and_its_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out == f"billing-elt {version()}\n"


def test_the_overview_lists_every_command_with_one_line() -> None:
    code, text = help_of()
    assert code == 0
    listed = text.split("commands:")[1]
    for command, (line, _, _) in cli.COMMANDS.items():
        assert f"    {command}" in listed and line.split()[0] in listed
    assert "--version" in text and "COMMAND --help" in text and "exit codes:" in text


@pytest.mark.parametrize("command", list(OPTIONS))
def test_each_command_has_its_own_help_with_its_options_examples_and_exit_codes(command: str) -> None:
    code, text = help_of(command)
    assert code == 0
    assert text.startswith(f"usage: billing-elt {command} ")
    for option in OPTIONS[command]:
        assert option in text, option
    examples, codes = text.split("examples:")[1].split("exit codes:")
    assert f"billing-elt {command}" in examples or command == "load"
    for exit_code in EXIT_CODES[command]:
        assert f"\n  {exit_code}" in codes, exit_code
    others = {o for c, options in OPTIONS.items() if c != command for o in options if o.startswith("--")}
    assert not [o for o in others - set(OPTIONS[command]) if o in text.split("examples:")[0]]


def test_no_command_is_a_load_with_the_providers_and_interval_of_the_environment(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert cli.main([]) == 0
    assert cli.main(["--providers", "kitchen:eu"]) == 0
    monkeypatch.setenv("PROVIDERS", "fohlio")
    monkeypatch.setenv("PROGRESS_INTERVAL", "7")
    assert cli.main(["load", "--allow-mass-delete"]) == 0
    assert cli.main(["load", "--providers", "kitchen", "--progress-interval", "0"]) == 0
    assert [(name, args[0]) for name, args, _ in calls] == [
        ("load", None),
        ("load", "kitchen:eu"),
        ("load", "fohlio"),
        ("load", "kitchen"),
    ]
    assert [(k["allow_mass_delete"], k["progress_interval"]) for _, _, k in calls] == [
        (False, cli.config.DEFAULT_PROGRESS_INTERVAL),
        (False, cli.config.DEFAULT_PROGRESS_INTERVAL),
        (True, 7.0),
        (False, 0.0),
    ]


def test_each_command_gets_its_arguments(calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]]) -> None:
    assert cli.main(["reset", "kitchen:eu"]) == 0
    assert cli.main(["remap"]) == 0
    assert cli.main(["remap", "kitchen,fohlio", "--pipeline-name", "other"]) == 0
    assert cli.main(["report", "-o", "out.html", "--db", "demo.duckdb"]) == 0
    assert cli.main(["check"]) == 0
    assert calls == [
        ("reset", ("kitchen:eu",), {"pipeline_name": None}),
        ("remap", (None,), {"pipeline_name": None}),
        ("remap", ("kitchen,fohlio",), {"pipeline_name": "other"}),
        ("report", ("out.html", "demo.duckdb"), {}),
        ("check", (), {"pipeline_name": None}),
    ]


def test_a_command_written_after_its_options_is_still_found(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
) -> None:
    assert cli.main(["--pipeline-name", "other", "remap", "kitchen"]) == 0
    assert calls == [("remap", ("kitchen",), {"pipeline_name": "other"})]


@pytest.mark.parametrize(
    ("argv", "usage", "said"),
    [
        (["resett", "x"], "usage: billing-elt [", "invalid choice: 'resett'"),
        (["reset"], "usage: billing-elt reset ", "required: PROVIDER[:LABEL]"),
        (["load", "kitchen"], "usage: billing-elt load ", "unrecognized arguments: kitchen"),
        (["check", "--allow-mass-delete"], "usage: billing-elt check ", "unrecognized arguments: --allow-mass-delete"),
        (["report", "--output"], "usage: billing-elt report ", "expected one argument"),
        (["load", "--progress-interval", "soon"], "usage: billing-elt load ", "invalid float value"),
    ],
)
def test_a_wrong_command_line_is_its_usage_and_exit_2(
    argv: list[str],
    usage: str,
    said: str,
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith(usage) and said in err
    assert calls == []


def test_a_progress_interval_in_the_environment_that_is_no_number_is_exit_2(
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("PROGRESS_INTERVAL", "soon")
    assert cli.main([]) == 2
    assert "PROGRESS_INTERVAL is not a number of seconds" in capsys.readouterr().err
    assert calls == []


@pytest.mark.parametrize(
    ("argv", "raised", "code", "said"),
    [
        ([], SignalReceivedException(signal.SIGTERM), 143, "stopped by SIGTERM: the load did not complete"),
        (["check"], KeyboardInterrupt(), 130, "stopped by SIGINT: the checks did not complete"),
        (["remap"], cli.Stopped(signal.SIGTERM), 143, "stopped by SIGTERM: the remap did not complete"),
        (["report"], KeyboardInterrupt(), 130, "stopped by SIGINT: the report may be missing or incomplete"),
    ],
)
def test_a_stop_escaping_a_command_is_one_line_and_128_plus_the_signal(
    argv: list[str],
    raised: BaseException,
    code: int,
    said: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def stopped(*args: Any, **kwargs: Any) -> int:
        raise raised

    monkeypatch.setattr(cli, "load", stopped)
    monkeypatch.setattr(cli.checks, "check", stopped)
    monkeypatch.setattr(remap_module, "remap", stopped)
    monkeypatch.setattr(report_module, "run", stopped)
    assert cli.main(argv) == code
    captured = capsys.readouterr()
    lines = captured.err.splitlines()
    assert len(lines) == 1 and said in lines[0] and lines[0].endswith(f"Exit {code}."), captured.err
    assert "Traceback" not in captured.err and "before anything was written" not in captured.err
    assert captured.out == ""


def test_a_stop_the_database_driver_turned_into_an_error_is_still_a_stop(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """DuckDB turns a KeyboardInterrupt during a query into its own "Query interrupted" error: the
    report then says it was stopped, not that the warehouse could not be read."""

    def query_interrupted(*args: Any, **kwargs: Any) -> Any:
        try:
            signal.raise_signal(signal.SIGTERM)
        except KeyboardInterrupt:
            raise RuntimeError("Query interrupted") from None

    monkeypatch.setattr(report_module, "write_report", query_interrupted)
    assert cli.main(["report"]) == 143
    lines = capsys.readouterr().err.splitlines()
    said = "stopped by SIGTERM: the report may be missing or incomplete; run it again. Exit 143."
    assert len(lines) == 1 and lines[0].endswith(said), lines
    assert stop.requested() is None  # forgotten once the command is over
