"""The report's view of the data checks (docs/checks.md): in its data-health section, the latest
checks of every account and the latest changes recorded in the providers' payloads.

Read from `data_checks` (each account's latest check run) and `schema_changes` (the newest
`CHANGES_SHOWN`); a warehouse without these tables says that it does not record them (a warehouse
with `data_checks` but no `schema_changes` has had no change: the table is written on the first).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.checks import DATA_CHECKS
from sources.shared.structure import SCHEMA_CHANGES

if TYPE_CHECKING:
    from pipelines.report import Figures
    from pipelines.warehouse import Reader

CHANGES_SHOWN = 20


def read(r: Reader, relations: set[str], figures: Figures) -> None:
    """The latest checks of each account, and the newest schema changes, into `figures`."""
    t = r.table
    if DATA_CHECKS in relations:
        figures.checks = r.dicts(
            "SELECT run_id, checked_at, provider, account, check_name, severity, passed, observed, expected, detail "
            "FROM (SELECT *, DENSE_RANK() OVER (PARTITION BY provider, account ORDER BY checked_at DESC, run_id DESC) "
            f"AS latest FROM {t(DATA_CHECKS)}) AS checks WHERE latest = 1 "
            "ORDER BY provider, account, passed, check_name"
        )
    if SCHEMA_CHANGES not in relations and DATA_CHECKS in relations:
        # Loads that check also compare payloads; the table is written on the first change.
        figures.schema_changes = []
    elif SCHEMA_CHANGES in relations:
        figures.schema_changes = r.dicts(
            "SELECT provider, account, record_type, path, change, type_before, type_after, first_seen_run, "
            f"example_key FROM {t(SCHEMA_CHANGES)} ORDER BY first_seen_run DESC, provider, account, record_type, "
            f"path LIMIT {CHANGES_SHOWN}"
        )


def html(f: Figures) -> str:
    """The two parts of the data-health section."""
    from pipelines.report import _cell, _esc, _note, _table, _who

    parts = ["<h3>Data checks</h3>"]
    if f.checks is None:
        parts.append(_note("Not recorded in this warehouse: it has no data_checks table (run `billing-elt check`)."))
    else:
        failed = sum(1 for c in f.checks if not c["passed"])
        accounts = len({(c["provider"], c["account"]) for c in f.checks})
        parts.append(
            _note(
                f"The latest checks of each of {accounts} account(s): {failed} failed. A failed error makes "
                "`billing-elt check` exit 4; each row says what to do."
            )
        )
        rows = []
        for c in f.checks:
            result = "passed" if c["passed"] else "failed"
            css = "" if c["passed"] else f' class="status-failed check-{_esc(c["severity"])}"'
            key = f"{c['provider']}:{c['account']}:{c['check_name']}"
            rows.append(
                f'<tr data-check="{_esc(key)}" data-passed="{str(bool(c["passed"])).lower()}">'
                f"{_who(c['check_name'], _where(c))}<td>{_esc(c['severity'])}</td><td{css}>{result}</td>"
                f"{_cell(c['observed'])}{_cell(c['expected'])}"
                f"{_cell(None if c['passed'] else c['detail'], 'detail')}{_cell(c['checked_at'])}</tr>"
            )
        headers = ["Check", "Severity", "Result", "Observed", "Expected", "What to do", "Checked"]
        parts.append(_table(headers, rows, range(0)))
    parts.append("<h3>Changes in the providers' payloads</h3>")
    if f.schema_changes is None:
        parts.append(_note("Not recorded in this warehouse: it has no schema_changes table yet."))
    elif not f.schema_changes:
        parts.append(_note("None: every load stored payloads of the structure earlier loads stored.", "none"))
    else:
        rows = [
            f'<tr data-change="{_esc(s["change"])}">{_who(s["path"], _where(s))}'
            f"<td>{_esc(s['record_type'])}</td><td>{_esc(s['change'].replace('_', ' '))}</td>"
            f"{_cell(_types(s))}{_cell(s['first_seen_run'])}{_cell(s['example_key'])}</tr>"
            for s in f.schema_changes
        ]
        parts.append(_note(f"The newest {len(rows)}, from schema_changes; the data is kept in raw either way."))
        parts.append(_table(["Path", "Record", "Change", "Type", "First seen by run", "Example"], rows, range(0)))
    return "".join(parts)


def _where(row: dict[str, Any]) -> str:
    return f"{row['provider']} · {row['account']}"


def _types(change: dict[str, Any]) -> str:
    before, after = change.get("type_before"), change.get("type_after")
    if before and after:
        return f"{before} → {after}"
    return str(after or before or "")
