"""The report's history parts on a warehouse with months of history, in a real headless Chromium
at a desktop's and a phone's width: the month-end receivables chart and the "when clients pay"
section render, readable and inside the page, and every figure equals what the views give
(tests/analysis/test_report.py reads them from the views and checks the whole page the same way)."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from pipelines.report import write_report
from sandbox import fohlio, kitchen
from tests.analysis.test_report import (
    DESKTOP,
    DRAWN,
    PHONE,
    READ_CHARTS,
    READ_FIGURES,
    READ_ROWS,
    check_charts,
    check_figures,
    check_rows_add_up,
    errors_and_requests,
    view_figures,
)
from tests.browser import CHROMIUM, open_in_chromium, screenshot, use_width
from tests.history.conftest import Clock
from tests.support import Workspace, serve

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (apt-get install chromium)"),
]


CURRENCIES = "SELECT DISTINCT currency FROM billing."


def months_of_history(ws: Workspace, clock: Clock) -> None:
    """Fohlio and Kitchen loaded four times over two and a half months, invoices paid (some after
    their due date), partly paid and voided in between."""
    clock.days_ago(80)
    foh = fohlio.create_app(seed=21, clients=5, invoices=40, projects=6)
    kit = kitchen.create_app(seed=8, clients=5, invoices=40)
    with serve(foh) as f_server, serve(kit) as k_server:
        env = {**foh.pipeline_env(f_server.url), **kit.pipeline_env(k_server.url)}

        def load(days_ago: float) -> None:
            clock.days_ago(days_ago)
            result = ws.run(env)
            assert result.code == 0, result.output

        def fohlio_open() -> list[int]:
            return [i for i, v in sorted(foh.team.invoices.items()) if v.status in ("sent", "overdue")]

        load(75)
        clock.days_ago(60)
        for invoice_id in fohlio_open()[:3]:
            foh.update_invoice(invoice_id, status="paid")
        foh.update_invoice(fohlio_open()[0], status="paid_partially", paid_share=Decimal("0.5"))
        for invoice in [i for i in kit.invoices if i["status"] == "open"][:2]:
            kit.update_invoice(invoice["id"], status="paid")
        load(45)
        clock.days_ago(30)
        for invoice_id in fohlio_open()[:2]:
            foh.update_invoice(invoice_id, status="paid")
        draft = next(i for i, v in sorted(foh.team.invoices.items()) if v.status == "draft")
        foh.update_invoice(draft, status="sent")
        load(15)
        load(1 / 24)


def test_the_history_sections_render_and_show_the_views_figures(workspace: Workspace, clock: Clock, tmp_path: Path):
    months_of_history(workspace, clock)
    report = write_report(tmp_path / "report.html", workspace.db)
    html = report.read_text(encoding="utf-8")
    assert '<section id="payments">' in html and '<section id="month_end">' in html
    browser, tools = open_in_chromium(report.resolve().as_uri(), tmp_path / "profile")
    seen: dict[int, dict[str, Any]] = {}
    try:
        for width in (DESKTOP, PHONE):
            use_width(tools, width)
            seen[width] = {"charts": tools.evaluate(READ_CHARTS)}
            (tmp_path / f"report-{width}.png").write_bytes(screenshot(tools, width))
            tools.evaluate("document.querySelectorAll('details').forEach(d => { d.open = true; }); true")
            seen[width].update(
                figures=tools.evaluate(READ_FIGURES), rows=tools.evaluate(READ_ROWS), drawn=tools.evaluate(DRAWN)
            )
            tools.evaluate("document.querySelectorAll('details').forEach(d => { d.open = false; }); true")
    finally:
        tools.ws.close()
        browser.terminate()
        browser.wait(timeout=30)
    errors, _ = errors_and_requests(tools)
    assert not errors, errors

    expected = view_figures(workspace.db)
    owing = {r[0] for r in workspace.query(f"{CURRENCIES} receivables_month_end WHERE outstanding <> 0")}
    timed = {r[0] for r in workspace.query(f"{CURRENCIES} invoice_payments WHERE days_to_pay IS NOT NULL")}
    assert timed, "no payment day is known: the scenario paid nothing a run saw unpaid"
    for width, page in seen.items():
        names = {c["name"] for c in page["charts"]}
        assert {f"month-end-{c}" for c in owing} <= names, width
        assert {f"days-to-pay-{c}" for c in timed} <= names, width
        check_charts(page["charts"], width)
        check_figures(page["figures"], expected, "EUR")
        assert page["drawn"], width
        check_rows_add_up(page["rows"])
        shown = {key for key, _, _ in page["figures"]}
        # Four month ends at least (the first load's month to this one), late payers, the true DSO.
        month_ends = {k.split("/")[2] for k in shown if k.startswith("monthend/")}
        assert len(month_ends) >= 3, month_ends
        assert any(k.startswith("late/") for k in shown)
        assert any(k.endswith("/days_to_pay") and expected[k] is not None for k in shown if k.startswith("dso/"))
    # The month-end chart's columns are the months the view has, oldest first.
    for currency in owing:
        chart = re.search(rf'data-chart="month-end-{currency}".*?</svg>', html, re.S)
        assert chart is not None
        first = workspace.scalar(
            "SELECT min(month_end) FROM billing.receivables_month_end WHERE currency = ?", currency
        )
        assert f"{first:%b %y}" in chart.group(0)
