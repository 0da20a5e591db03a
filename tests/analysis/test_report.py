"""The HTML report, opened in a real headless Chromium: every chart renders, nothing errors,
nothing is fetched, and every figure shown equals the analysis views'."""

from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.report import money
from pipelines.warehouse import read_only
from tests.browser import CHROMIUM, open_in_chromium
from tests.support import Workspace

pytestmark = pytest.mark.integration


def write_report(workspace: Workspace, output: Path) -> Path:
    proc = subprocess.run(
        [sys.executable, "-m", "pipelines.billing", "report", "--output", str(output)],
        cwd=workspace.path,
        env=workspace.env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert output.exists()
    return output


@pytest.fixture(scope="module")
def report(loaded: Workspace, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_report(loaded, tmp_path_factory.mktemp("report") / "report.html")


def test_the_report_is_self_contained(report: Path) -> None:
    page = report.read_text(encoding="utf-8")
    assert "<script" not in page and "http://" not in page.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in page and "<link" not in page and "@import" not in page
    assert page.count("<svg") >= 3


def view_figures(db: Path) -> dict[str, Decimal | None]:
    """What each `data-figure` key must show, read from the views here."""
    expected: dict[str, Decimal | None] = {}
    with read_only(db) as con:
        buckets = ["not_yet_due", "days_1_30", "days_31_60", "days_61_90", "days_over_90", "no_due_date", "outstanding"]
        sums = ", ".join(f"sum({b})" for b in buckets)
        for currency, *values in con.execute(
            f"SELECT currency, {sums} FROM billing.receivables_aging GROUP BY 1"
        ).fetchall():
            expected.update({f"aging/{currency}/{b}": v for b, v in zip(buckets, values, strict=True)})
        for currency, month, invoiced, credited, net in con.execute(
            "SELECT currency, month, sum(invoiced), sum(credited), sum(net) FROM billing.revenue_monthly GROUP BY 1, 2"
        ).fetchall():
            key = f"revenue/{currency}/{month:%Y-%m}"
            expected.update({f"{key}/invoiced": invoiced, f"{key}/credited": credited, f"{key}/net": net})
        for row in con.execute(
            "SELECT provider, account, client_id, currency, outstanding, invoiced, paid FROM billing.client_balances"
        ).fetchall():
            key = f"client/{row[3]}/{row[0]}/{row[1]}/{row[2]}"
            expected.update({f"{key}/outstanding": row[4], f"{key}/invoiced": row[5], f"{key}/paid": row[6]})
        for provider, account, currency, outstanding, revenue, days in con.execute(
            "SELECT provider, account, currency, outstanding, net_revenue_90d, dso_days FROM billing.dso"
        ).fetchall():
            key = f"dso/{provider}/{account}/{currency}"
            expected.update(
                {f"{key}/outstanding": outstanding, f"{key}/net_revenue_90d": revenue, f"{key}/dso_days": days}
            )
    return expected


@pytest.mark.skipif(
    CHROMIUM is None, reason="chromium is not installed (apt-get install chromium); browser test skipped"
)
def test_the_report_renders_in_chromium_with_the_views_figures(loaded: Workspace, report: Path, tmp_path: Path) -> None:
    browser, tools = open_in_chromium(report.resolve().as_uri(), tmp_path / "profile")
    try:
        charts = tools.evaluate(
            """Array.from(document.querySelectorAll('svg.chart')).map(s => {
                 const box = s.getBoundingClientRect();
                 const marks = Array.from(s.querySelectorAll('rect, circle, polyline')).filter(e => {
                   const b = e.getBoundingClientRect(); return b.width > 0 && b.height > 0; });
                 return {name: s.dataset.chart, width: box.width, height: box.height, marks: marks.length};
               })"""
        )
        shown = tools.evaluate(
            """Array.from(document.querySelectorAll('[data-figure]')).map(
                 e => [e.dataset.figure, e.dataset.value, e.textContent])"""
        )
        height = tools.evaluate("Math.ceil(document.documentElement.scrollHeight)")
        tools.call("Emulation.setDeviceMetricsOverride", width=1400, height=height, deviceScaleFactor=1, mobile=False)
        picture = tools.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        screenshot = tmp_path / "report.png"
        screenshot.write_bytes(base64.b64decode(picture["data"]))
        if os.environ.get("REPORT_PICTURE"):  # to refresh docs/report.png by hand
            shutil.copy(screenshot, os.environ["REPORT_PICTURE"])
    finally:
        tools.ws.close()
        browser.terminate()
        browser.wait(timeout=30)

    errors = [
        e
        for e in tools.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")
    ]
    assert not errors, errors
    requests = [e["params"]["request"]["url"] for e in tools.events if e.get("method") == "Network.requestWillBeSent"]
    assert all(url.startswith(("file:", "data:")) for url in requests), requests

    currencies = {r[0] for r in loaded.query("SELECT DISTINCT currency FROM billing.receivables_aging")}
    names = {c["name"] for c in charts}
    assert {f"aging-{c}" for c in currencies} <= names and {f"revenue-{c}" for c in currencies} <= names
    assert any(n.startswith("clients-") for n in names)
    for chart in charts:
        assert chart["width"] > 0 and chart["height"] > 0 and chart["marks"] > 0, chart

    expected = view_figures(loaded.db)
    keys = {key for key, _, _ in shown}
    assert {k for k in expected if k.startswith(("aging/", "dso/"))} <= keys
    for key, value, text in shown:
        if key.startswith("revenue/") and key not in expected:
            expected[key] = Decimal(0)  # a month without documents, inside the months shown
        assert key in expected, key
        want = expected[key]
        if want is None:
            assert value == "" and text == "—", key
            continue
        assert Decimal(value) == want, key
        if key.endswith("/dso_days"):
            assert text == f"{want:,.1f} days", key
        else:
            assert text == money(want), key
    assert screenshot.stat().st_size > 10_000
