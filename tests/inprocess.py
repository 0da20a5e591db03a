"""The command line run inside the test process, as `python -m pipelines.billing` would run it in
a subprocess: the same arguments and environment, the exit code, stdout and stderr captured.

Every run starts from what a new process would find and leaves the test process as it was:

- the environment is exactly the run's, and the working directory is the run's, for the duration
  of the run only;
- dlt starts from a fresh injection container (its run context reads the `.dlt/` of the working
  directory and the global folder under the run's `HOME`, its config providers and runtime
  configuration are made anew), and dlt's logger, timezone and signal bookkeeping are restored;
- every logger's level, handlers, filters and propagation are restored, so that the handlers a
  run installs (`pipelines.cli.setup_logging`) never outlive it; warnings print to the run's
  stderr under Python's default filters, as in a new interpreter;
- the SIGINT and SIGTERM handlers are restored;
- the project's module-level state (registered secrets, run statistics, the retry policy and the
  stop flag of `sources.shared.http`) starts empty and is put back afterwards.

What a process alone can do stays with the subprocess (`tests/support.py`, `Workspace.run`):
being killed or signalled, a server that hangs past a timeout on a real socket, the console
script itself.
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import signal
import sys
import threading
import traceback
import warnings
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx

# Python's own warning filters in a new interpreter (`python -W` unset, not a debug build).
_DEFAULT_WARNING_FILTERS: list[tuple[Literal["default", "ignore"], type[Warning], str | None]] = [
    ("default", DeprecationWarning, "__main__"),
    ("ignore", DeprecationWarning, None),
    ("ignore", PendingDeprecationWarning, None),
    ("ignore", ImportWarning, None),
    ("ignore", ResourceWarning, None),
]
_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# One in-process run at a time: the environment and the working directory belong to the process.
_one_at_a_time = threading.Lock()


@dataclass
class Captured:
    code: int
    stdout: str
    stderr: str


def run_cli(
    argv: Sequence[str],
    env: Mapping[str, str],
    cwd: Path,
    transports: Mapping[str, httpx.BaseTransport] | None = None,
) -> Captured:
    """Run `pipelines.cli.main(argv)` here with `env` as the whole environment and `cwd` as the
    working directory; `transports` (provider name → httpx transport) carry the providers'
    requests. An exception that escapes `main` is printed as Python prints it and exits 1."""
    out, err = io.StringIO(), io.StringIO()
    with _one_at_a_time, contextlib.ExitStack() as stack:
        stack.enter_context(_environment(env))
        stack.enter_context(contextlib.chdir(cwd))
        stack.enter_context(_logging_restored())
        stack.enter_context(_signal_handlers_restored())
        stack.enter_context(_project_state_fresh())
        stack.enter_context(_dlt_fresh())
        stack.enter_context(contextlib.redirect_stdout(out))
        stack.enter_context(contextlib.redirect_stderr(err))
        stack.enter_context(_python_warnings())
        code = _main(argv, transports)
        for handler in _all_handlers():
            with contextlib.suppress(Exception):
                handler.flush()
    return Captured(code, out.getvalue(), err.getvalue())


def _main(argv: Sequence[str], transports: Mapping[str, httpx.BaseTransport] | None) -> int:
    from pipelines.cli import main

    try:
        return main(list(argv), transports=transports)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            return code or 0
        print(code, file=sys.stderr)
        return 1
    except Exception:
        traceback.print_exc(file=sys.stderr)
        return 1


@contextlib.contextmanager
def _environment(env: Mapping[str, str]) -> Iterator[None]:
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@dataclass
class _LoggerState:
    level: int
    handlers: list[logging.Handler]
    filters: list[Any]
    propagate: bool
    disabled: bool


def _loggers() -> dict[str, logging.Logger]:
    found = {"": logging.getLogger()}
    for name, logger in list(logging.Logger.manager.loggerDict.items()):
        if isinstance(logger, logging.Logger):
            found[name] = logger
    return found


def _all_handlers() -> list[logging.Handler]:
    return [h for logger in _loggers().values() for h in logger.handlers]


@contextlib.contextmanager
def _logging_restored() -> Iterator[None]:
    """Every logger as it was: what the run configures (handlers on the root and on `dlt`,
    levels, redacting filters) is undone, and loggers it created are left unconfigured."""
    saved = {
        name: _LoggerState(lg.level, list(lg.handlers), list(lg.filters), lg.propagate, lg.disabled)
        for name, lg in _loggers().items()
    }
    for handler in _all_handlers():  # the run's output never goes to the test's own log capture
        handler.flush()
    record_factory, disable = logging.getLogRecordFactory(), logging.root.manager.disable
    try:
        yield
    finally:
        for name, logger in _loggers().items():
            state = saved.get(name)
            if state is None:
                logger.setLevel(logging.NOTSET)
                logger.handlers, logger.filters, logger.propagate, logger.disabled = [], [], True, False
            else:
                logger.setLevel(state.level)
                logger.handlers, logger.filters = state.handlers, state.filters
                logger.propagate, logger.disabled = state.propagate, state.disabled
        logging.setLogRecordFactory(record_factory)
        logging.disable(disable)


@contextlib.contextmanager
def _signal_handlers_restored() -> Iterator[None]:
    saved = {sig: signal.getsignal(sig) for sig in _SIGNALS}
    try:
        yield
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def _project_state_fresh() -> Iterator[None]:
    """The module-level state of `sources.shared` as a new process has it, then as it was."""
    from sources.shared import http, redact, stop
    from sources.shared import stats as run_stats

    secrets = set(redact._secrets)
    current, latest = dict(run_stats._current), dict(run_stats._latest)
    policy, stopping = http.default_policy(), stop.requested()
    redact._secrets.clear()
    run_stats._current.clear()
    run_stats._latest.clear()
    http.configure(http.RetryPolicy())
    stop.clear()
    try:
        yield
    finally:
        redact._secrets.clear()
        redact._secrets.update(secrets)
        run_stats._current.clear()
        run_stats._current.update(current)
        run_stats._latest.clear()
        run_stats._latest.update(latest)
        http.configure(policy)
        stop.clear()
        if stopping is not None:
            stop.request(stopping)


@contextlib.contextmanager
def _dlt_fresh() -> Iterator[None]:
    """A fresh dlt injection container for the run (as in a new process: the run context, config
    providers and runtime configuration are made from the run's working directory and
    environment on first use), and the previous one, with dlt's module state, put back after."""
    from dlt.common import logger as dlt_logger
    from dlt.common import time as dlt_time
    from dlt.common.configuration.container import Container
    from dlt.common.runtime import signals as dlt_signals

    instance, main_thread = Container._INSTANCE, Container._MAIN_THREAD_ID
    saved_logger, saved_tz = dlt_logger.LOGGER, dlt_time.get_context_timezone()
    saved_signals = (
        dlt_signals._received_signal,
        dict(dlt_signals._signal_counts),
        dict(dlt_signals._original_handlers),
    )
    Container.reset_main_thread()
    dlt_time.set_context_timezone(None)
    try:
        yield
    finally:
        Container._INSTANCE, Container._MAIN_THREAD_ID = instance, main_thread
        dlt_logger.LOGGER = saved_logger
        dlt_time.set_context_timezone(saved_tz)
        dlt_signals._received_signal = saved_signals[0]
        dlt_signals._signal_counts.clear()
        dlt_signals._signal_counts.update(saved_signals[1])
        dlt_signals._original_handlers.clear()
        dlt_signals._original_handlers.update(saved_signals[2])


@contextlib.contextmanager
def _python_warnings() -> Iterator[None]:
    """Warnings as a new interpreter shows them: Python's default filters, printed to the run's
    stderr (the test session's own filters and capture do not apply to the run)."""
    with warnings.catch_warnings():
        warnings.resetwarnings()
        for action, category, module in reversed(_DEFAULT_WARNING_FILTERS):
            warnings.filterwarnings(action, category=category, module=module or "")
        warnings.showwarning = _show_on_stderr
        yield


def _show_on_stderr(
    message: Warning | str,
    category: type[Warning],
    filename: str,
    lineno: int,
    file: Any = None,
    line: str | None = None,
) -> None:
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))
