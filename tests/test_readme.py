"""The README and the guides name what exists, and `make sandbox` works as the README says.

- Every shell block of the pages a user follows (tests/doc_blocks.py) names real things: each
  `make` target is in the Makefile, each `billing-elt` command is one the command line takes,
  with options its help lists, each `python -m` module imports, and each `.venv/bin/` program is
  installed (or comes with an extra of pyproject.toml). `make` targets in the pages' prose too.
- `make sandbox` (and `python -m sandbox.serve_all`) serves every sandbox, prints the variables to
  export as a shell script, a load of one provider through `.venv/bin/billing-elt` with them
  loads what the sandbox holds, and Ctrl-C (SIGINT) stops it cleanly.

The SQL blocks run in tests/analysis/test_doc_examples.py.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import importlib.util
import io
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from pipelines.cli import main as cli_main
from pipelines.warehouse import read_only
from sandbox.kitchen import create_app as kitchen_app
from tests.doc_blocks import PAGES, REPO, SHELL_LANGUAGES, Block, page_blocks
from tests.support import Workspace

BIN = Path(sys.executable).parent
SHELL_BLOCKS = page_blocks(SHELL_LANGUAGES)
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_SEPARATORS = {"&&", "||", ";", "|", "&"}


def makefile_targets() -> set[str]:
    text = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([a-z][a-z-]*):", text, re.M))


def commands(block: Block) -> Iterator[list[str]]:
    """Each simple command of a shell block: its words, variable assignments and redirections
    left out. A cron line's five schedule fields are left out too."""
    text = block.text.replace("\\\n", " ")
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if block.lang == "cron" and len(words) > 5 and all(re.fullmatch(r"[\d*/,-]+", w) for w in words[:5]):
            words = words[5:]
        command: list[str] = []
        for word in [*words, ";"]:
            if word in _SEPARATORS:
                if command:
                    yield command
                command = []
            elif re.fullmatch(r"\d?(>>|>|<)(&\d)?", word) or re.fullmatch(r"\d>&\d", word):
                command.append("<redirect>")
            elif not command and _ASSIGNMENT.match(word):
                continue
            else:
                command.append(word)


def _without_redirections(words: list[str]) -> list[str]:
    kept, skip = [], False
    for word in words:
        if skip:
            skip = False
        elif word == "<redirect>":
            skip = True
        else:
            kept.append(word)
    return kept


def cli_help(command: str) -> tuple[int, str]:
    """`billing-elt COMMAND --help`: its exit code and the help it prints."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        try:
            code = cli_main([command, "--help"])
        except SystemExit as exit_:  # `report` parses its own arguments
            code = int(exit_.code or 0)
    return code, out.getvalue()


def extra_programs() -> set[str]:
    """Programs an optional extra installs: the name of a package it requires."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = project["optional-dependencies"]
    return {re.split(r"[\[<>=!~ ]", req, maxsplit=1)[0] for reqs in extras.values() for req in reqs}


def problems(block: Block) -> list[str]:
    """What a shell block names that does not exist."""
    found: list[str] = []
    targets = makefile_targets()
    for words in commands(block):
        words = _without_redirections(words)
        program = words[0]
        if program == "make":
            args = [w for w in words[1:] if not w.startswith("-") and not _ASSIGNMENT.match(w)]
            found += [f"make target {t!r}" for t in args if t not in targets]
            if not args:
                found.append("make without a target")
        elif program.endswith("billing-elt"):
            positional = [w for w in words[1:] if not w.startswith("-")]
            command = positional[0] if positional else "load"
            code, text = cli_help(command)
            if code != 0:
                found.append(f"billing-elt command {command!r}")
            options = [w.split("=", 1)[0] for w in words[1:] if w.startswith("--")]
            found += [f"billing-elt {command} option {o!r}" for o in options if o not in text]
        elif Path(program).name.startswith("python") and "-m" in words:
            module = words[words.index("-m") + 1]
            if importlib.util.find_spec(module) is None:
                found.append(f"python module {module!r}")
        if program.startswith(".venv/bin/"):
            name = program.removeprefix(".venv/bin/")
            if not (BIN / name).exists() and name not in extra_programs():
                found.append(f"program {program!r}")
    return found


def test_the_pages_have_shell_examples() -> None:
    pages = {block.page.name for block in SHELL_BLOCKS}
    assert {"README.md", "operations.md", "setup.md", "postgres.md", "dagster.md"} <= pages, pages
    named = [words[0] for block in SHELL_BLOCKS for words in commands(block)]
    assert "make" in named and ".venv/bin/billing-elt" in named and ".venv/bin/dlt" in named


@pytest.mark.parametrize("block", SHELL_BLOCKS, ids=[b.where for b in SHELL_BLOCKS])
def test_shell_examples_name_what_exists(block: Block) -> None:
    assert problems(block) == []


def test_a_misnamed_command_is_found() -> None:
    """The check above finds what does not exist (it is not satisfied by anything)."""
    wrong = Block(REPO / "README.md", 1, "sh", "make lodd\n.venv/bin/billing-elt resett x\nbilling-elt load --force\n")
    assert problems(wrong) == [
        "make target 'lodd'",
        "billing-elt command 'resett'",
        "billing-elt load option '--force'",
    ]
    assert problems(Block(REPO / "README.md", 1, "sh", ".venv/bin/python -m pipelines.nothing\n")) != []


def test_make_targets_in_the_prose_exist() -> None:
    targets = makefile_targets()
    for page in PAGES:
        named = set(re.findall(r"`make ([a-z][a-z-]*)", page.read_text(encoding="utf-8")))
        assert named <= targets, (page.name, named - targets)


def test_the_readme_is_a_front_page() -> None:
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 300
    links = set(re.findall(r"\]\((docs/[^)#]+)\)", readme))
    later = {"docs/history.md", "docs/checks.md"}  # written beside this page, on their own
    missing = {link for link in links - later if not (REPO / link).exists()}
    assert not missing
    for name in ("setup.md", "operations.md", "querying.md", "destinations.md", "dagster.md", "development.md"):
        assert f"docs/{name}" in links


def test_the_guides_link_to_what_exists() -> None:
    for page in PAGES[1:]:
        for link in re.findall(r"\]\(([\w./-]+\.md)\)", page.read_text(encoding="utf-8")):
            assert (page.parent / link).exists() or link in ("history.md", "checks.md"), (page.name, link)


# --- make sandbox ---------------------------------------------------------------------------------


class Served:
    """The sandboxes served by a subprocess, read as a user reads them: its stdout."""

    def __init__(self, argv: list[str]) -> None:
        # As a user starts it at a terminal, not as a sub-make of `make test` (which prints the
        # directories it enters).
        env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL", "MFLAGS")}
        self.proc = subprocess.Popen(
            argv, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
        )
        self.lines: list[str] = []
        self.ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("export PIPELINE_NAME="):
                self.ready.set()
        self.ready.set()

    def exports(self) -> dict[str, str]:
        assert self.ready.wait(120), "the sandboxes never printed their variables"
        pairs = [shlex.split(line.removeprefix("export "))[0] for line in self.lines if line.startswith("export ")]
        return dict(pair.split("=", 1) for pair in pairs)

    def ctrl_c(self) -> tuple[int, str]:
        """SIGINT to the process group, as Ctrl-C at a terminal; the exit code and stderr."""
        os.killpg(self.proc.pid, signal.SIGINT)
        _, stderr = self.proc.communicate(timeout=60)
        return self.proc.returncode, stderr

    def kill(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.communicate()


def _make_is_ready() -> str | None:
    """Why `make sandbox` cannot run here without installing anything, or None."""
    venv = REPO / ".venv"
    if Path(sys.prefix).resolve() != venv.resolve():
        return "the tests do not run in the project's .venv"
    stamp = venv / ".synced-stamp"
    inputs = [REPO / "pyproject.toml", REPO / "uv.lock", venv / ".extras"]
    if not stamp.exists() or any(p.exists() and p.stat().st_mtime > stamp.stat().st_mtime for p in inputs):
        return ".venv is not synced: make would install first"
    return None


def _refused(url: str) -> bool:
    host, port = httpx.URL(url).host, httpx.URL(url).port
    try:
        socket.create_connection((host, port or 80), timeout=2).close()
    except OSError:
        return True
    return False


@pytest.mark.integration
@pytest.mark.parametrize("way", ["make sandbox", "python -m sandbox.serve_all"])
def test_make_sandbox_serves_until_ctrl_c(tmp_path: Path, way: str) -> None:
    db, env_file = tmp_path / "sandbox.duckdb", tmp_path / "sandbox.env"
    if way == "make sandbox":
        reason = _make_is_ready()
        if reason:
            pytest.skip(reason)
        argv = ["make", "sandbox", f"DB={db}", f"ENV_FILE={env_file}"]
    else:
        argv = [sys.executable, "-m", "sandbox.serve_all", "--db", str(db), "--env-file", str(env_file)]
    served = Served(argv)
    try:
        exports = served.exports()
        printed = "".join(served.lines)
        # A shell script: comments and exports only, the same as the file it wrote.
        assert all(line.startswith(("#", "export ")) for line in served.lines), printed
        assert env_file.read_text(encoding="utf-8") == printed
        assert exports["DESTINATION__DUCKDB__CREDENTIALS"] == str(db)
        assert exports["PIPELINE_NAME"] == "billing_sandbox"
        for provider in ("INVOICEXPRESS", "FLOWPAYROLL", "KITCHEN", "FOHLIO"):
            assert any(name.startswith(f"SOURCES__{provider}__") for name in exports), provider
        urls = re.findall(r"^#\s+\w+\s+(http://127\.0\.0\.1:\d+)$", printed, re.M)
        assert len(urls) == 5, printed  # four providers and the ECB feed

        workspace = Workspace(tmp_path / "work")
        workspace.path.mkdir()
        script = BIN / "billing-elt"
        env = workspace.env({**exports, "PROVIDERS": "kitchen"})
        load = subprocess.run([str(script), "load"], cwd=workspace.path, env=env, capture_output=True, text=True)
        assert load.returncode == 0, load.stderr
        assert "pipeline billing_sandbox" in load.stderr

        header = re.search(r"data up to (\d{4}-\d\d-\d\d)", printed)
        assert header is not None
        held = kitchen_app(seed=42, today=dt.date.fromisoformat(header[1])).summary()
        with read_only(db) as con:
            rows = con.execute("SELECT provider, count(*) FROM billing.invoices GROUP BY 1").fetchall()
        assert rows == [("kitchen", held["invoices"])]

        code, stderr = served.ctrl_c()
    finally:
        served.kill()
    assert "Traceback" not in stderr
    assert "# sandboxes stopped" in stderr
    if way == "make sandbox":  # make ends as Ctrl-C ends it, by the signal; the sandboxes exit 0
        assert code in (0, -signal.SIGINT), stderr
    else:
        assert code == 0, stderr
    assert all(_refused(url) for url in urls)
