"""`billing-elt report [--output FILE]`: one self-contained HTML page about the receivables.

    billing-elt report                        # report.html from the configured warehouse
    billing-elt report --output /srv/www/billing.html
    billing-elt report --db demo.duckdb       # a DuckDB file other than the configured one

Every figure comes from the analysis views (`pipelines/views.py`), read through the same
reader as `make query` (the DuckDB file read-only, or the configured destination's dlt SQL
client): receivables aging per currency, revenue by month per currency (credit notes
negative), the clients with the most outstanding, days sales outstanding, and the data's
health (last run per provider account, unmapped records, deletions, the latest data checks and
changes in the providers' payloads, where the warehouse records them). Each currency has its own
card, chart and table rows, in its own amounts.

The page leads with the totals of every currency together in the reporting currency
(`[analysis] reporting_currency`, the views' `_rc` columns, docs/reporting-currency.md): what
is outstanding and overdue, at the rates of today, and revenue by month, each document at the
rate of its issue date. It says which rates it used and how many documents had none (those are
in no total), and that the conversion is for reporting, not accounting: the ECB publishes its
reference rates for information purposes only.

The page is dated by the warehouse's `CURRENT_DATE`, the date the views age receivables to.
It also says how recent the data is (the newest invoice date, per currency and per provider
account) wherever old data would make a figure look strange: an account whose newest invoice
is months old has all its receivables over 90 days and no days sales outstanding. The
revenue charts share one window of months, ending at the newest month with documents.

Every table adds up across its row: aging buckets to the outstanding amount, invoiced plus
credit notes to net, and a client's invoiced to paid + outstanding + uncollectible (+ other,
shown only where a document has no balance or is paid with a balance left).

The page needs nothing but itself: no script, no stylesheet or font from elsewhere, charts
drawn here as inline SVG. It reads on a phone as on a desktop: tables scroll sideways inside
their own box, and each chart carries its own phone scale (`--phone`), which the stylesheet's
media queries use to enlarge its text, so that labels keep a readable size when the chart
shrinks to the screen; x labels that would then touch are hidden (`thin`). Each figure
carries its exact value in `data-value` and a key in `data-figure`, so a test can check what
a reader sees against the views.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines import checks_report, report_history
from pipelines.fx import minor_unit
from pipelines.views import DSO_WINDOW_DAYS, VIEW_NAMES
from pipelines.warehouse import Reader, duckdb_file, reader

DEFAULT_OUTPUT = "report.html"
AGING_BUCKETS = (
    ("not_yet_due", "Not yet due"),
    ("days_1_30", "1–30 days"),
    ("days_31_60", "31–60 days"),
    ("days_61_90", "61–90 days"),
    ("days_over_90", "Over 90 days"),
    ("no_due_date", "No due date"),
)
OVERDUE_BUCKETS = ("days_1_30", "days_31_60", "days_61_90", "days_over_90")
BUCKET_COLOURS = ("#4c9f70", "#e0b43c", "#e08a3c", "#d4603a", "#a8323e", "#8c8c8c")
REVENUE_MONTHS = 24
TOP_CLIENTS = 8
# Data whose newest invoice is older than this, before the report's date, is said to be old.
STALE_AFTER_DAYS = 45
INVOICED_COLOUR, CREDITED_COLOUR, NET_COLOUR = "#3b6fb6", "#d4603a", "#1f2937"
# Chart text sizes on a desktop, in CSS px (a chart's user unit there), and the width a chart
# gets on a 390 px phone once the page's and the card's padding are taken off.
TICK_PX, LABEL_PX = 11, 12
PHONE_CHART_WIDTH = 340
# Average advance of a character of the page's sans-serif font, in em: enough to place labels.
CHAR_EM = 0.62


class ReportError(Exception):
    """The warehouse cannot give a report (no views yet, not reachable)."""


# --- the figures ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What the report shows, read from the views."""

    as_of: dt.date
    where: str
    # (provider, account, currency) → the issue date of its newest invoice (credit notes aside).
    latest: dict[tuple[str, str, str], dt.date] = field(default_factory=dict)
    aging: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    # The months every revenue chart shows; per currency one entry for each, and the last
    # month with documents of every currency (also those with none in the window).
    months: list[dt.date] = field(default_factory=list)
    revenue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    revenue_last: dict[str, dt.date] = field(default_factory=dict)
    top_clients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dso: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    runs_source: str = ""
    # None: the warehouse does not record them; an empty list: there are none.
    unmapped: list[dict[str, Any]] | None = None
    deletions: list[dict[str, Any]] | None = None
    # The latest data checks per account and the newest schema changes (pipelines/checks_report.py).
    checks: list[dict[str, Any]] | None = None
    schema_changes: list[dict[str, Any]] | None = None
    # From the views on the invoice history (pipelines/report_history.py); None where they do not exist yet.
    history: report_history.HistoryFigures | None = None
    # The reporting currency ("" in a warehouse whose views have no `_rc` columns yet); per
    # currency its outstanding and overdue converted, the days of the rates used and the open
    # documents without a rate; per month of the revenue window its figures converted.
    reporting: str = ""
    converted: dict[str, dict[str, Any]] = field(default_factory=dict)
    revenue_rc: list[dict[str, Any]] = field(default_factory=list)

    @property
    def places(self) -> int:
        """Decimals of the reporting currency (its ISO 4217 minor unit)."""
        return minor_unit(self.reporting) if self.reporting else 2

    def total_rc(self, column: str) -> Decimal | None:
        """The sum over every currency of a converted aging column; None when nothing converted."""
        values = [row[column] for row in self.converted.values() if row[column] is not None]
        return sum(values, Decimal(0)) if values else None

    def unconverted(self) -> tuple[int, int]:
        """Documents without a rate: open ones (not in outstanding), those of the revenue window."""
        return (
            sum(int(row["unconverted"]) for row in self.converted.values()),
            sum(int(m["unconverted"]) for m in self.revenue_rc),
        )

    def rate_days(self) -> tuple[dt.date, dt.date] | None:
        """The oldest and newest day of the rates outstanding was converted at."""
        days = [d for row in self.converted.values() for d in (row["first_rate"], row["last_rate"]) if d]
        return (min(days), max(days)) if days else None

    def latest_invoice(self, currency: str | None = None) -> dt.date | None:
        """The newest invoice's issue date, of one currency or of all."""
        return max((d for (_, _, c), d in self.latest.items() if currency in (None, c)), default=None)

    def is_old(self, date: dt.date | None, days: int = STALE_AFTER_DAYS) -> bool:
        """Whether data whose newest invoice is of `date` is older than `days` at the report's date."""
        return date is not None and (self.as_of - date).days > days


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def _months_back(month: dt.date, count: int) -> list[dt.date]:
    months = []
    year, mon = month.year, month.month
    for _ in range(count):
        months.append(dt.date(year, mon, 1))
        year, mon = (year, mon - 1) if mon > 1 else (year - 1, 12)
    return list(reversed(months))


def revenue_window(months: Iterable[dt.date], count: int = REVENUE_MONTHS) -> list[dt.date]:
    """The months the revenue charts show: up to `count`, ending at the newest month with
    documents, starting no earlier than the oldest."""
    known = sorted(set(months))
    if not known:
        return []
    return [m for m in _months_back(known[-1], count) if m >= known[0]]


def _as_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


def client_other(row: dict[str, Any]) -> Decimal:
    """What a client's invoiced amount holds beyond paid, outstanding and uncollectible: the
    totals of documents without a balance, or paid with a balance left. Zero in a warehouse
    whose providers report balances consistently."""
    return _dec(row["invoiced"]) - _dec(row["paid"]) - _dec(row["outstanding"]) - _dec(row["uncollectible"])


def read_figures(r: Reader, where: str) -> Figures:
    """Every figure of the report, from the views in `r`'s dataset."""
    relations = r.relations()
    missing = [v for v in VIEW_NAMES if v not in relations]
    if missing:
        raise ReportError(
            f"the dataset {r.dataset} has no {', '.join(missing)} view(s): run `billing-elt load` "
            "(every load creates them), then the report again"
        )
    t = r.table
    _, today = r.query("SELECT CURRENT_DATE")
    figures = Figures(as_of=_as_date(today[0][0]), where=where)

    for row in r.dicts(
        "SELECT provider, account, currency, MAX(last_invoice_date) AS latest "
        f"FROM {t('client_balances')} GROUP BY provider, account, currency"
    ):
        if row["latest"] is not None:
            figures.latest[(row["provider"], row["account"], row["currency"])] = _as_date(row["latest"])

    buckets = ", ".join(f"SUM({b}) AS {b}" for b, _ in AGING_BUCKETS)
    for row in r.dicts(
        f"SELECT currency, {buckets}, SUM(outstanding) AS outstanding, COUNT(*) AS clients "
        f"FROM {t('receivables_aging')} GROUP BY currency ORDER BY currency"
    ):
        figures.aging[row["currency"]] = {k: _dec(v) for k, v in row.items() if k != "currency"}

    by_currency: dict[str, dict[dt.date, dict[str, Any]]] = defaultdict(dict)
    for row in r.dicts(
        "SELECT currency, month, SUM(invoiced) AS invoiced, SUM(credited) AS credited, SUM(net) AS net, "
        f"SUM(documents) AS documents FROM {t('revenue_monthly')} WHERE month IS NOT NULL "
        "GROUP BY currency, month ORDER BY currency, month"
    ):
        by_currency[row["currency"]][_as_date(row["month"])] = row
    figures.months = revenue_window(m for months in by_currency.values() for m in months)
    for currency, months in sorted(by_currency.items()):
        figures.revenue_last[currency] = max(months)
        if not any(m in months for m in figures.months):
            continue
        figures.revenue[currency] = [
            {
                "month": m,
                "invoiced": _dec(months.get(m, {}).get("invoiced")),
                "credited": _dec(months.get(m, {}).get("credited")),
                "net": _dec(months.get(m, {}).get("net")),
                "documents": int(months.get(m, {}).get("documents") or 0),
            }
            for m in figures.months
        ]

    ranked = r.dicts(
        "SELECT provider, account, client_id, client_name, currency, outstanding, invoiced, paid, uncollectible, "
        "oldest_unpaid_due_date, ROW_NUMBER() OVER (PARTITION BY currency ORDER BY outstanding DESC, "
        f"provider, account, client_id) AS rank FROM {t('client_balances')} WHERE outstanding > 0"
    )
    for row in sorted(ranked, key=lambda x: (x["currency"], x["rank"])):
        if row["rank"] <= TOP_CLIENTS:
            figures.top_clients.setdefault(row["currency"], []).append(row)

    figures.dso = r.dicts(
        "SELECT provider, account, currency, outstanding, net_revenue_90d, dso_days "
        f"FROM {t('dso')} ORDER BY provider, account, currency"
    )
    _read_converted(r, figures)
    _read_health(r, relations, figures)
    figures.history = report_history.read(r, relations)
    return figures


def _read_converted(r: Reader, figures: Figures) -> None:
    """The reporting currency's figures, where the views have them (every load creates them)."""
    t = r.table
    if "outstanding_rc" not in _columns(r, "receivables_aging"):
        return
    _, found = r.query(f"SELECT MIN(reporting_currency) FROM {t('invoices_current')}")
    if found and found[0][0]:
        figures.reporting = str(found[0][0])
    else:  # no document at all: the configured one
        from pipelines.rates import reporting_currency

        figures.reporting = reporting_currency()
    for row in r.dicts(
        "SELECT currency, SUM(outstanding) AS outstanding, SUM(outstanding_rc) AS outstanding_rc, "
        "SUM(overdue_rc) AS overdue_rc, MIN(fx_rate_date) AS first_rate, MAX(fx_rate_date) AS last_rate, "
        f"SUM(unconverted) AS unconverted FROM {t('receivables_aging')} GROUP BY currency ORDER BY currency"
    ):
        row["first_rate"] = _as_date(row["first_rate"]) if row["first_rate"] else None
        row["last_rate"] = _as_date(row["last_rate"]) if row["last_rate"] else None
        figures.converted[row.pop("currency")] = row
    by_month = {
        _as_date(row["month"]): row
        for row in r.dicts(
            "SELECT month, SUM(invoiced_rc) AS invoiced, SUM(credited_rc) AS credited, SUM(net_rc) AS net, "
            f"SUM(unconverted) AS unconverted, SUM(documents) AS documents FROM {t('revenue_monthly')} "
            "WHERE month IS NOT NULL GROUP BY month"
        )
    }
    for month in figures.months:
        row = by_month.get(month, {})
        figures.revenue_rc.append(
            {
                "month": month,
                **{k: row.get(k) for k in ("invoiced", "credited", "net")},
                "unconverted": int(row.get("unconverted") or 0),
                "documents": int(row.get("documents") or 0),
            }
        )


def _columns(r: Reader, table: str) -> set[str]:
    literal, name = r.dataset.replace("'", "''"), table.replace("'", "''")
    _, rows = r.query(
        f"SELECT column_name FROM information_schema.columns WHERE table_schema = '{literal}' AND table_name = '{name}'"
    )
    return {str(x[0]).lower() for x in rows}


def _read_health(r: Reader, relations: set[str], figures: Figures) -> None:
    t = r.table
    if "pipeline_runs" in relations:
        figures.runs_source = "pipeline_runs"
        figures.runs = r.dicts(
            "SELECT provider, account, status, started_at, finished_at, invoices, clients, unmapped, deleted, "
            "message FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY provider, account ORDER BY started_at DESC) "
            f"AS latest FROM {t('pipeline_runs')}) AS runs WHERE latest = 1 ORDER BY provider, account"
        )
    else:
        figures.runs_source = "_dlt_loads"
        loads = {
            row["provider"]: row
            for row in r.dicts(
                "SELECT schema_name AS provider, MAX(inserted_at) AS finished_at, COUNT(*) AS loads "
                f"FROM {t('_dlt_loads')} WHERE status = 0 GROUP BY schema_name"
            )
        }
        for row in r.dicts(
            "SELECT provider, account, COUNT(*) AS invoices "
            f"FROM {t('invoices')} GROUP BY provider, account ORDER BY provider, account"
        ):
            load = loads.get(row["provider"], {})
            figures.runs.append({**row, "status": "loaded", "finished_at": load.get("finished_at")})

    if "unmapped_records" in relations:
        figures.unmapped = r.dicts(
            "SELECT provider, account, record_type, reason, COUNT(*) AS records, MAX(last_seen_at) AS last_seen_at "
            f"FROM {t('unmapped_records')} GROUP BY provider, account, record_type, reason "
            "ORDER BY provider, account, record_type, reason"
        )
    elif "pipeline_runs" in relations and "unmapped" in _columns(r, "pipeline_runs"):
        # The table is written on the first record a load cannot map: with none counted by any
        # run, its absence means none, not a warehouse that does not keep them.
        _, counted = r.query(f"SELECT COALESCE(SUM(unmapped), 0) FROM {t('pipeline_runs')}")
        if not counted[0][0]:
            figures.unmapped = []

    tables = [table for table in ("invoices", "clients") if "deleted_at" in _columns(r, table)]
    if tables:
        figures.deletions = []
        for table in tables:
            figures.deletions += r.dicts(
                f"SELECT '{table}' AS record_type, provider, account, COUNT(*) AS deleted, "
                f"MAX(deleted_at) AS last_deleted_at FROM {t(table)} WHERE deleted_at IS NOT NULL "
                "GROUP BY provider, account ORDER BY provider, account"
            )
    checks_report.read(r, relations, figures)


# --- SVG charts -----------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def money(value: Any, places: int = 2) -> str:
    """`1,234.56` (`places` decimals), with a true minus sign for negatives."""
    amount = _dec(value)
    text = f"{abs(amount):,.{places}f}"
    return f"−{text}" if amount < 0 and text.strip("0.,") else text


def _compact(value: float) -> str:
    magnitude = abs(value)
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if magnitude >= limit:
            return f"{value / limit:.3g}{suffix}".replace("-", "−")
    return f"{value:.3g}".replace("-", "−")


def nice_ticks(low: float, high: float, count: int = 5) -> list[float]:
    """Round tick values covering [low, high] (which contains 0)."""
    span = high - low or 1.0
    raw = span / count
    step = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 2.5, 5, 10):
        if raw <= factor * step:
            step *= factor
            break
    start, end = math.floor(low / step), math.ceil(high / step)
    return [round(i * step, 10) for i in range(start, max(end, start + 1) + 1)]


def phone_scale(width: int) -> float:
    """How much larger a chart of `width` user units draws its text on a phone, so that the
    text keeps its desktop size in CSS px once the chart is shrunk to the phone's width."""
    return max(width / PHONE_CHART_WIDTH, 1.0)


def _text_width(text: str, size: float) -> float:
    return len(text) * size * CHAR_EM


def _svg_open(name: str, label: str, width: int, height: float, data: dict[str, str] | None = None) -> list[str]:
    """The chart's opening tag (named in `data-chart`, with more `data-` attributes from `data`)."""
    more = "".join(f' data-{k}="{_esc(v)}"' for k, v in (data or {}).items())
    return [
        f'<svg class="chart" data-chart="{_esc(name)}"{more} role="img" aria-label="{_esc(label)}" '
        f'viewBox="0 0 {width} {height:.0f}" width="{width}" height="{height:.0f}" '
        f'style="--phone:{phone_scale(width):.2f}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(label)}</title>",
    ]


def column_chart(
    name: str,
    label: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal], str | Sequence[str]]],
    line: tuple[str, Sequence[Decimal], str] | None = None,
    width: int = 760,
    height: int = 260,
    data: dict[str, str] | None = None,
    places: int = 2,
) -> str:
    """Columns per category, series stacked away from zero (negatives below the axis), and an
    optional line (e.g. net) over them. Each column has a tooltip. Margins leave room for the
    phone's larger text; category labels are spaced for the desktop, and those too close for
    the phone's size are marked `thin` (hidden there), counting back from the last."""
    k = phone_scale(width)
    highs = [sum(max(float(s[1][i]), 0.0) for s in series) for i in range(len(categories))]
    lows = [sum(min(float(s[1][i]), 0.0) for s in series) for i in range(len(categories))]
    extra_values = [float(v) for v in line[1]] if line else []
    ticks = nice_ticks(min([0.0, *lows, *extra_values]), max([0.0, *highs, *extra_values]))
    lo, hi = ticks[0], ticks[-1]
    tick_texts = [_compact(t) for t in ticks]
    left = max(_text_width(t, TICK_PX * k) for t in tick_texts) + 10
    longest = max((len(c) for c in categories), default=1)
    # The last category's label is centred on its column: room for its phone size on the right.
    slot_guess = (width - left) / max(len(categories), 1)
    right = max(8.0, (longest * TICK_PX * k * CHAR_EM - slot_guess) / 2 + 4)
    top, bottom = TICK_PX * k * 0.6 + 2, TICK_PX * k * 1.3 + 8
    plot_w, plot_h = width - left - right, height - top - bottom

    def y(value: float) -> float:
        return top + plot_h * (hi - value) / ((hi - lo) or 1.0)

    parts = _svg_open(name, label, width, height, data)
    for tick, text in zip(ticks, tick_texts, strict=True):
        parts.append(
            f'<line x1="{left:.1f}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'class="{"axis" if tick == 0 else "grid"}"/>'
            f'<text x="{left - 6:.1f}" y="{y(tick):.1f}" text-anchor="end" dominant-baseline="central" '
            f'class="tick">{text}</text>'
        )
    slot = plot_w / max(len(categories), 1)
    bar = max(slot * 0.7, 1.0)
    every = max(1, math.ceil((longest * TICK_PX * CHAR_EM + 8) / slot))
    every_phone = every * max(1, math.ceil((longest * TICK_PX * k * CHAR_EM + 8) / slot / every))
    labels = []
    for i, category in enumerate(categories):
        x = left + i * slot + (slot - bar) / 2
        up, down = 0.0, 0.0
        for series_name, values, colour in series:
            value = float(values[i])
            fill = colour if isinstance(colour, str) else colour[i]
            if value == 0:
                continue
            start = up if value > 0 else down
            end = start + value
            if value > 0:
                up = end
            else:
                down = end
            y1, y2 = sorted((y(start), y(end)))
            parts.append(
                f'<rect x="{x:.1f}" y="{y1:.1f}" width="{bar:.1f}" height="{max(y2 - y1, 0.5):.1f}" fill="{fill}">'
                f"<title>{_esc(category)} · {_esc(series_name)}: {money(values[i], places)}</title></rect>"
            )
        back = len(categories) - 1 - i
        if back % every == 0:
            css = "tick thin" if back % every_phone else "tick"
            labels.append(
                f'<text x="{x + bar / 2:.1f}" y="{top + plot_h + 5:.1f}" text-anchor="middle" '
                f'dominant-baseline="hanging" class="{css}">{_esc(category)}</text>'
            )
    parts += labels
    if line:
        points = " ".join(f"{left + i * slot + slot / 2:.1f},{y(float(v)):.1f}" for i, v in enumerate(line[1]))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{line[2]}" stroke-width="2"/>')
        for i, v in enumerate(line[1]):
            parts.append(
                f'<circle cx="{left + i * slot + slot / 2:.1f}" cy="{y(float(v)):.1f}" r="2.5" fill="{line[2]}">'
                f"<title>{_esc(categories[i])} · {_esc(line[0])}: {money(v, places)}</title></circle>"
            )
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(
    name: str,
    label: str,
    rows: Sequence[tuple[str, Decimal]],
    colour: str | Sequence[str],
    width: int = 440,
    number: Callable[[Decimal], str] = money,
) -> str:
    """Horizontal bars, one per row in the order given, each row's name just above its bar and
    its amount (written by `number`) after it, spaced for the phone's larger text. A negative
    amount draws no bar."""
    k = phone_scale(width)
    size = LABEL_PX * k
    bar_h, gap = 16.0, 9.0
    row_h = size * 1.3 + bar_h + gap
    amounts = [number(v) for _, v in rows]
    room = max((_text_width(a, size) for a in amounts), default=0.0) + 8
    top_value = max([float(v) for _, v in rows] + [0.0]) or 1.0
    fits = max(int(width / (size * CHAR_EM)), 8)
    parts = _svg_open(name, label, width, row_h * len(rows))
    for i, ((text, value), amount) in enumerate(zip(rows, amounts, strict=True)):
        bar_y = i * row_h + size * 1.3
        length = (width - room) * max(float(value), 0.0) / top_value
        fill = colour if isinstance(colour, str) else colour[i]
        shown = text if len(text) <= fits else text[: fits - 1] + "…"
        parts.append(
            f'<text x="2" y="{bar_y - size * 0.35:.1f}" class="label">{_esc(shown)}</text>'
            f'<rect x="0" y="{bar_y:.1f}" width="{max(length, 1.0):.1f}" height="{bar_h}" fill="{fill}">'
            f"<title>{_esc(text)}: {amount}</title></rect>"
            f'<text x="{length + 6:.1f}" y="{bar_y + bar_h / 2:.1f}" dominant-baseline="central" class="label">'
            f"{amount}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the page -------------------------------------------------------------------------------


def _figure(key: str, value: Any, text: str | None = None, title: str | None = None, places: int = 2) -> str:
    """A table cell showing `text` (the money format of `value` by default, `places` decimals)
    with the exact value in `data-value` and its key in `data-figure`."""
    exact = "" if value is None else str(value)
    shown = text if text is not None else ("—" if value is None else money(value, places))
    negative = " neg" if value is not None and _dec(value) < 0 else ""
    hint = f' title="{_esc(title)}"' if title else ""
    return f'<td class="num{negative}" data-figure="{_esc(key)}" data-value="{_esc(exact)}"{hint}>{_esc(shown)}</td>'


def _cell(value: Any, css: str = "") -> str:
    if value is None:
        return '<td class="muted">—</td>'
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    elif isinstance(value, dt.date):
        value = value.isoformat()
    return f'<td class="{css}">{_esc(value)}</td>' if css else f"<td>{_esc(value)}</td>"


def _table(headers: Iterable[str], rows: Iterable[str], numeric: range = range(1, 99)) -> str:
    """A table in a box of its own that scrolls sideways when the table is wider than the page;
    its first column stays in view while the others scroll."""
    head = "".join(f'<th class="{"num" if i in numeric else ""}">{_esc(h)}</th>' for i, h in enumerate(headers))
    return f'<div class="scroll"><table><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _who(name: Any, below: str) -> str:
    """A first cell: a name with, under it, where it comes from (provider and account)."""
    return f'<td class="who">{_esc(name)}<small>{_esc(below)}</small></td>'


def _note(text: str, css: str = "muted") -> str:
    return f'<p class="{css}">{_esc(text)}</p>'


def _old_data(f: Figures, currency: str) -> str:
    """'latest invoice 2025-06-30' under a currency's card when its newest invoice is old."""
    latest = f.latest_invoice(currency)
    return _note(f"latest invoice {latest.isoformat()}", "old") if latest and f.is_old(latest) else ""


def _aging_section(f: Figures) -> str:
    if not f.aging:
        return _note("Nothing is outstanding.")
    out = []
    for currency, row in f.aging.items():
        chart = bar_chart(
            f"aging-{currency}",
            f"Receivables aging, {currency}",
            [(label, row[b]) for b, label in AGING_BUCKETS],
            BUCKET_COLOURS,
            width=360,
        )
        out.append(f'<div class="card"><h3>{_esc(currency)}</h3>{chart}{_old_data(f, currency)}</div>')
    headers = ["Currency", *[label for _, label in AGING_BUCKETS], "Outstanding"]
    if f.reporting:
        headers.append(f"In {f.reporting}")
    rows = []
    for currency, row in f.aging.items():
        cells = "".join(_figure(f"aging/{currency}/{b}", row[b]) for b, _ in AGING_BUCKETS)
        total = _figure(f"aging/{currency}/outstanding", row["outstanding"])
        if f.reporting:
            total += _converted_cell(f, currency)
        rows.append(f"<tr><td><b>{_esc(currency)}</b></td>{cells}{total}</tr>")
    return '<div class="grid">' + "".join(out) + "</div>" + _table(headers, rows)


def _converted_cell(f: Figures, currency: str) -> str:
    """A currency's outstanding in the reporting currency, or why it has none."""
    row = f.converted.get(currency, {})
    value, missing = row.get("outstanding_rc"), int(row.get("unconverted") or 0)
    why = f"{missing} document(s) without a rate today, in no total" if missing else None
    return _figure(f"aging/{currency}/outstanding_rc", value, None, why, f.places)


def _window(f: Figures) -> str:
    return f"{f.months[0]:%b %Y} – {f.months[-1]:%b %Y}" if f.months else ""


def _legend(entries: Sequence[tuple[str, str, str]]) -> str:
    keys = "".join(
        f'<span><i class="key {shape}" style="background:{colour}"></i>{_esc(name)}</span>'
        for name, colour, shape in entries
    )
    return f'<p class="legend">{keys}</p>'


def _revenue_section(f: Figures) -> str:
    if not f.revenue_last:
        return _note("No billing documents yet.")
    cards, quiet = [], []
    window = f"{f.months[0]:%Y-%m}/{f.months[-1]:%Y-%m}"
    legend = _legend(
        [("invoiced", INVOICED_COLOUR, "box"), ("credit notes", CREDITED_COLOUR, "box"), ("net", NET_COLOUR, "dash")]
    )
    for currency, last in f.revenue_last.items():
        months = f.revenue.get(currency)
        if months is None:
            latest = f.latest_invoice(currency)
            since = f", latest invoice {latest.isoformat()}" if latest else ""
            quiet.append(f"<li><b>{_esc(currency)}</b>: the last in {last:%b %Y}{_esc(since)}</li>")
            continue
        chart = column_chart(
            f"revenue-{currency}",
            f"Revenue by month, {currency}",
            [m["month"].strftime("%b %y") for m in months],
            [
                ("invoiced", [m["invoiced"] for m in months], INVOICED_COLOUR),
                ("credit notes", [m["credited"] for m in months], CREDITED_COLOUR),
            ],
            line=("net", [m["net"] for m in months], NET_COLOUR),
            width=620,
            data={"window": window},
        )
        rows = []
        for m in reversed(months):
            if not m["documents"]:
                continue
            key = f"revenue/{currency}/{m['month']:%Y-%m}"
            rows.append(
                f"<tr><td>{m['month']:%B %Y}</td>{_figure(key + '/invoiced', m['invoiced'])}"
                f"{_figure(key + '/credited', m['credited'])}{_figure(key + '/net', m['net'])}"
                f'<td class="num">{m["documents"]}</td></tr>'
            )
        table = _table(["Month", "Invoiced", "Credit notes", "Net", "Documents"], rows)
        cards.append(
            f'<div class="card"><h3>{_esc(currency)}</h3>{chart}{legend}{_old_data(f, currency)}'
            f"<details><summary>Month by month ({len(rows)} with documents)</summary>{table}</details></div>"
        )
    if quiet:
        cards.append(
            f'<div class="card quiet"><h3>No billing documents in {_window(f)}</h3><ul>{"".join(quiet)}</ul></div>'
        )
    return '<div class="grid">' + "".join(cards) + "</div>"


def _clients_section(f: Figures) -> str:
    if not f.top_clients:
        return _note("No client owes anything.")
    out = []
    for currency, clients in f.top_clients.items():
        names = [f"{c['client_name'] or c['client_id'] or '(no client)'}" for c in clients]
        chart = bar_chart(
            f"clients-{currency}",
            f"Clients with the most outstanding, {currency}",
            [(n, _dec(c["outstanding"])) for n, c in zip(names, clients, strict=True)],
            INVOICED_COLOUR,
        )
        other = any(client_other(c) for c in clients)
        rows = []
        for name, c in zip(names, clients, strict=True):
            key = f"client/{currency}/{c['provider']}/{c['account']}/{c['client_id']}"
            amounts = [("invoiced", c["invoiced"]), ("paid", c["paid"]), ("outstanding", c["outstanding"])]
            amounts.append(("uncollectible", c["uncollectible"]))
            if other:
                amounts.append(("other", client_other(c)))
            cells = "".join(_figure(f"{key}/{what}", value) for what, value in amounts)
            rows.append(
                f"<tr>{_who(name, c['provider'] + ' · ' + c['account'])}{cells}"
                f"{_cell(c['oldest_unpaid_due_date'])}</tr>"
            )
        headers = ["Client", "Invoiced", "Paid", "Outstanding", "Uncollectible", *(["Other"] if other else [])]
        table = _table([*headers, "Oldest unpaid due"], rows, range(1, len(headers)))
        note = (
            _note("Other: documents without a balance, or paid with a balance left (as the provider reports them).")
            if other
            else ""
        )
        out.append(
            f'<div class="card"><h3>{_esc(currency)}</h3><div class="pair">'
            f"<div>{chart}</div><div>{table}{note}</div></div></div>"
        )
    return "".join(out)


def _dso_section(f: Figures) -> str:
    if not f.dso:
        return _note("No receivables or recent revenue.")
    rows = []
    for d in f.dso:
        key = f"dso/{d['provider']}/{d['account']}/{d['currency']}"
        days = d["dso_days"]
        latest = f.latest.get((d["provider"], d["account"], d["currency"]))
        old = f.is_old(latest, DSO_WINDOW_DAYS) or latest is None
        why = f"no positive net revenue in the last {DSO_WINDOW_DAYS} days" if days is None else None
        rows.append(
            f"<tr>{_who(d['provider'], d['account'])}<td>{_esc(d['currency'])}</td>"
            f"{_figure(key + '/outstanding', d['outstanding'])}"
            f"{_figure(key + '/net_revenue_90d', d['net_revenue_90d'])}"
            f"{_figure(key + '/dso_days', days, '—' if days is None else f'{_dec(days):,.1f} days', why)}"
            f"{report_history.dso_cells(f, d['provider'], d['account'], d['currency'])}"
            f"{_cell(latest, 'old' if old else '')}</tr>"
        )
    note = _note(
        f"Days sales outstanding: outstanding ÷ (net revenue of the last {DSO_WINDOW_DAYS} days ÷ "
        f"{DSO_WINDOW_DAYS}), as of {f.as_of.isoformat()}. “—” where those days have no positive net revenue; "
        f"a latest invoice older than {DSO_WINDOW_DAYS} days (marked) says the account's data stops before them."
    )
    headers = ["Provider, account", "Currency", "Outstanding", f"Net revenue, {DSO_WINDOW_DAYS} days", "DSO"]
    headers += report_history.DSO_HEADERS
    return note + _table([*headers, "Latest invoice"], rows, range(2, len(headers))) + report_history.dso_note(f)


def _runs_table(f: Figures) -> str:
    if f.runs_source == "pipeline_runs":
        rows = [
            f"<tr>{_who(r['provider'], r['account'])}"
            f'<td class="status-{_esc(r["status"])}">{_esc(r["status"])}</td>{_cell(r["finished_at"])}'
            f"{_cell(r['invoices'], 'num')}{_cell(r['unmapped'], 'num')}{_cell(r['deleted'], 'num')}"
            f"{_cell(r['message'])}</tr>"
            for r in f.runs
        ]
        headers = ["Provider, account", "Last run", "Finished", "Invoices", "Unmapped", "Deleted", "Message"]
        return _table(headers, rows, range(3, 6))
    rows = [
        f'<tr>{_who(r["provider"], r["account"])}{_cell(r["finished_at"])}<td class="num">{r["invoices"]:,}</td></tr>'
        for r in f.runs
    ]
    return _note(
        "Last successful load per provider, from dlt's load records (this warehouse has no "
        "pipeline_runs table yet, so failed runs are not listed)."
    ) + _table(["Provider, account", "Last load", "Invoices held"], rows, range(2, 3))


def _health_section(f: Figures) -> str:
    parts = [_runs_table(f), "<h3>Unmapped records</h3>"]
    if f.unmapped is None:
        parts.append(_note("Not recorded in this warehouse: it has no unmapped_records table."))
    elif not f.unmapped:
        parts.append(_note("None: every record the providers sent was mapped.", "none"))
    else:
        rows = [
            f"<tr>{_who(u['provider'], u['account'])}<td>{_esc(u['record_type'])}</td>"
            f'<td>{_esc(u["reason"])}</td><td class="num">{u["records"]:,}</td>{_cell(u["last_seen_at"])}</tr>'
            for u in f.unmapped
        ]
        parts.append(_table(["Provider, account", "Type", "Reason", "Records", "Last seen"], rows, range(3, 4)))
    parts.append("<h3>Deleted at the provider</h3>")
    if f.deletions is None:
        parts.append(_note("Not recorded in this warehouse: its invoices and clients have no deleted_at column."))
    elif not f.deletions:
        parts.append(_note("None: no invoice or client was found deleted at its provider.", "none"))
    else:
        rows = [
            f"<tr>{_who(d['provider'], d['account'])}<td>{_esc(d['record_type'])}</td>"
            f'<td class="num">{int(d["deleted"]):,}</td>{_cell(d["last_deleted_at"])}</tr>'
            for d in f.deletions
        ]
        parts.append(_table(["Provider, account", "Records", "Deleted", "Last deletion"], rows, range(2, 3)))
    parts.append(checks_report.html(f))
    return "".join(parts)


def _summary(f: Figures) -> str:
    tiles = [_reporting_tile(f)] if f.reporting else []
    for currency, row in f.aging.items():
        overdue = sum((row[b] for b in OVERDUE_BUCKETS), Decimal(0))
        tiles.append(
            f'<div class="tile"><div class="muted">{_esc(currency)} outstanding</div>'
            f'<div class="big">{money(row["outstanding"])}</div>'
            f'<div class="muted">of which overdue {money(overdue)}</div></div>'
        )
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


def _reporting_tile(f: Figures) -> str:
    """Every currency's outstanding and overdue together, in the reporting currency."""
    outstanding, overdue = f.total_rc("outstanding_rc"), f.total_rc("overdue_rc")

    def shown(key: str, value: Decimal | None) -> str:
        exact = "" if value is None else str(value)
        text = "—" if value is None else money(value, f.places)
        return f'<span data-figure="{key}" data-value="{_esc(exact)}">{_esc(text)}</span>'

    return (
        f'<div class="tile lead"><div class="muted">All currencies in {_esc(f.reporting)}, outstanding</div>'
        f'<div class="big">{shown("rc/outstanding", outstanding)}</div>'
        f'<div class="muted">of which overdue {shown("rc/overdue", overdue)}</div></div>'
    )


def _rates_used(f: Figures) -> str:
    days = f.rate_days()
    if days is None:
        return "no rate was needed or found"
    first, last = days
    if first == last:
        return f"the rates of {last:%d %B %Y}"
    return f"the rates of {first:%d %B %Y} to {last:%d %B %Y} (the latest of each currency)"


def _reporting_intro(f: Figures) -> str:
    if not f.reporting:
        return ""
    return (
        f"Every currency together, converted to {f.reporting} at the European Central Bank's euro reference "
        "rates, which the ECB publishes for information purposes only: these figures are for reporting, not for "
        "accounting. Each document is converted on its own and rounded to the currency's smallest unit: revenue "
        f"at the rate of its issue date, what is outstanding at {_rates_used(f)}."
    )


def _reporting_section(f: Figures) -> str:
    if not f.reporting:
        return _note("This warehouse's views have no amounts in a reporting currency yet: run a load to add them.")
    days = f.rate_days()
    open_docs, revenue_docs = f.unconverted()
    if open_docs or revenue_docs:
        missing = _reporting_missing(f, open_docs, revenue_docs)
    else:
        missing = _note("Every document had a rate: none is left out of these totals.", "none")
    rate_day = f' data-rate-date="{days[1].isoformat()}"' if days else ""
    if not f.revenue_rc:
        return f"<div{rate_day}>{missing}</div>"
    months = f.revenue_rc
    window = f"{f.months[0]:%Y-%m}/{f.months[-1]:%Y-%m}"
    chart = column_chart(
        "rc-revenue",
        f"Revenue by month, every currency in {f.reporting}",
        [m["month"].strftime("%b %y") for m in months],
        [
            ("invoiced", [_dec(m["invoiced"]) for m in months], INVOICED_COLOUR),
            ("credit notes", [_dec(m["credited"]) for m in months], CREDITED_COLOUR),
        ],
        line=("net", [_dec(m["net"]) for m in months], NET_COLOUR),
        width=620,
        data={"window": window},
        places=f.places,
    )
    legend = _legend(
        [("invoiced", INVOICED_COLOUR, "box"), ("credit notes", CREDITED_COLOUR, "box"), ("net", NET_COLOUR, "dash")]
    )
    rows = []
    for m in reversed(months):
        if not m["documents"]:
            continue
        key = f"rc/revenue/{m['month']:%Y-%m}"
        cells = "".join(_figure(f"{key}/{k}", m[k], places=f.places) for k in ("invoiced", "credited", "net"))
        rows.append(
            f'<tr><td>{m["month"]:%B %Y}</td>{cells}<td class="num">{m["unconverted"]}</td>'
            f'<td class="num">{m["documents"]}</td></tr>'
        )
    table = _table(["Month", "Invoiced", "Credit notes", "Net", "Without a rate", "Documents"], rows)
    return (
        f'<div{rate_day}>{missing}</div><div class="card"><h3>Revenue by month, {_esc(f.reporting)}</h3>'
        f"{chart}{legend}<details><summary>Month by month ({len(rows)} with documents)</summary>{table}</details></div>"
    )


def _reporting_missing(f: Figures, open_docs: int, revenue_docs: int) -> str:
    """How many documents had no rate, and in which currencies: they are in no total."""
    owed = sorted(c for c, row in f.converted.items() if row["unconverted"])
    parts = []
    if open_docs:
        parts.append(
            f'<span data-figure="rc/unconverted/outstanding" data-value="{open_docs}">{open_docs:,}</span> '
            f"open document(s) in {_esc(', '.join(owed))} (no rate today)"
        )
    if revenue_docs:
        parts.append(
            f'<span data-figure="rc/unconverted/revenue" data-value="{revenue_docs}">{revenue_docs:,}</span> '
            f"document(s) of revenue in {_esc(_window(f))} (no rate on their issue date)"
        )
    return (
        f'<p class="old">Not converted, so in none of these totals: {" and ".join(parts)}. A rate is used for 7 days '
        "at most; a currency the ECB does not publish needs a rate in fx_rates_file.</p>"
    )


def _freshness(f: Figures) -> str:
    """A notice at the top when the newest invoice is old: every age counts to the report's date."""
    latest = f.latest_invoice()
    if latest is None or not f.is_old(latest):
        return ""
    return (
        f'<p class="notice" data-latest-invoice="{latest.isoformat()}">The data is old: latest invoice '
        f"{latest.isoformat()}, {(f.as_of - latest).days:,} days before this report. Aging and days sales "
        f"outstanding count to {f.as_of.isoformat()}; revenue shows the months up to the newest document.</p>"
    )


@dataclass(frozen=True)
class Section:
    """One part of the page: a heading, an introduction (may be empty) and its content, each
    from the figures. Sections with amounts give each currency its own card or row."""

    key: str
    title: str
    intro: Callable[[Figures], str]
    content: Callable[[Figures], str]


SECTIONS = (
    Section("reporting", "All currencies together", _reporting_intro, _reporting_section),
    Section(
        "aging",
        "Receivables aging",
        lambda f: (
            f"Open and partially paid documents by days past their due date, as of {f.as_of:%d %B %Y}. "
            "Credit notes not yet applied count negative."
        ),
        _aging_section,
    ),
    Section(
        "revenue",
        "Revenue by month",
        lambda f: (
            "Billing documents by issue month, neither draft nor void; credit notes negative. "
            f"Every currency over the same months, {_window(f)}: up to {REVENUE_MONTHS}, ending at the newest "
            "month with documents."
        ),
        _revenue_section,
    ),
    Section(
        "clients",
        "Clients with the most outstanding",
        lambda f: (
            f"The top {TOP_CLIENTS} per currency. Invoiced = paid + outstanding + uncollectible"
            + (" + other." if any(client_other(c) for cs in f.top_clients.values() for c in cs) else ".")
        ),
        _clients_section,
    ),
    Section("dso", "Days sales outstanding", lambda f: "", _dso_section),
    Section(
        "payments",
        "When clients pay",
        lambda f: (
            "Paid invoices per client, from the invoice history: days from issue to payment where the payment day is "
            "known, and the clients who paid after the due date."
        ),
        report_history.payments_section,
    ),
    Section("month_end", "Receivables at month end", report_history.month_end_intro, report_history.month_end_section),
    Section("health", "Data health", lambda f: "", _health_section),
)


STYLE = """
:root { color-scheme: light; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
       color: #1f2937; margin: 0; background: #f5f6f8; }
header { background: #1f2937; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; }
header p { margin: 4px 0 0; color: #cbd5e1; }
main { padding: 8px 32px 40px; max-width: 1640px; }
section { margin-top: 28px; }
h2 { font-size: 18px; border-bottom: 2px solid #d1d5db; padding-bottom: 4px; }
h3 { font-size: 15px; margin: 0 0 8px; }
section > h3 { margin-top: 18px; }
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
.card { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08);
        margin-bottom: 16px; max-width: 100%; min-width: 0; box-sizing: border-box; }
.pair { display: flex; flex-wrap: wrap; gap: 8px 28px; align-items: flex-start; }
.pair > * { min-width: 0; max-width: 100%; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 20px; }
.tile { background: #fff; border-radius: 8px; padding: 12px 18px; box-shadow: 0 1px 2px rgba(0,0,0,.08);
        min-width: 190px; box-sizing: border-box; }
.tile.lead { border-left: 4px solid #3b6fb6; }
.big { font-size: 22px; font-weight: 600; }
.scroll { max-width: 100%; overflow-x: auto; }
.scroll th:first-child, .scroll td:first-child { position: sticky; left: 0; z-index: 1; background: #fff; }
.scroll th:first-child { background: #f3f4f6; }
td.who { white-space: normal; min-width: 8em; max-width: 18em; overflow-wrap: anywhere; }
td.who small { display: block; color: #6b7280; font-size: 12px; }
td.detail { white-space: normal; min-width: 18em; max-width: 40em; }
.quiet ul { margin: 0; padding-left: 18px; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
th { background: #f3f4f6; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.neg { color: #b42318; }
.muted { color: #6b7280; }
.old { color: #92400e; }
p.old { margin: 4px 0 0; font-size: 13px; }
.notice { background: #fef3c7; color: #78350f; border-radius: 8px; padding: 10px 14px; margin: 16px 0 0; }
.status-failed { color: #b42318; font-weight: 600; }
.legend { display: flex; flex-wrap: wrap; gap: 4px 16px; margin: 6px 0 0; font-size: 13px; color: #4b5563; }
.key { display: inline-block; width: 10px; height: 10px; margin-right: 5px; vertical-align: -1px; }
.key.dash { height: 2px; width: 14px; vertical-align: 3px; }
svg.chart { display: block; max-width: 100%; height: auto; --k: 1; }
svg .grid { stroke: #e5e7eb; } svg .axis { stroke: #6b7280; }
svg .tick { font-size: calc(11px * var(--k)); fill: #4b5563; }
svg .label { font-size: calc(12px * var(--k)); fill: #1f2937; }
details summary { cursor: pointer; color: #3b6fb6; margin-top: 6px; }
@media (max-width: 800px) {
  svg.chart { --k: var(--phone); }
  svg .thin { display: none; }
}
@media (max-width: 640px) {
  header { padding: 14px 12px; }
  header h1 { font-size: 20px; }
  main { padding: 4px 12px 32px; }
  section { margin-top: 22px; }
  .card { padding: 12px; width: 100%; }
  .tiles { gap: 8px; }
  .tile { min-width: 0; flex: 1 1 150px; padding: 10px 12px; }
  .big { font-size: 19px; }
}
"""


def render(f: Figures) -> str:
    """The whole page."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    body = ""
    for s in SECTIONS:
        intro = s.intro(f)
        body += (
            f'<section id="{s.key}"><h2>{_esc(s.title)}</h2>'
            + (_note(intro) if intro else "")
            + s.content(f)
            + "</section>"
        )
    latest = f.latest_invoice()
    newest = f" · latest invoice {latest.isoformat()}" if latest else ""
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Billing report — {f.as_of:%d %b %Y}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Billing report</h1><p>As of {f.as_of:%d %B %Y}{newest} · {_esc(f.where)} · "
        f"generated {generated}. {_header_amounts(f)}</p></header>"
        f"<main>{_freshness(f)}{_summary(f)}{body}</main></body></html>\n"
    )


def _header_amounts(f: Figures) -> str:
    if not f.reporting:
        return "Amounts are per currency, never added across currencies."
    return (
        f"Amounts are per currency; the first figures add every currency up in {_esc(f.reporting)}, "
        "for information (not accounting)."
    )


def write_report(output: str | Path = DEFAULT_OUTPUT, db: str | Path | None = None) -> Path:
    """Read the views, write the page to `output` and return its path."""
    with reader(db) as r:
        if r.dialect == "duckdb":
            where = f"{Path(db if db is not None else duckdb_file()).name}, dataset {r.dataset}"
        else:
            where = f"{r.dialect} dataset {r.dataset}"
        figures = read_figures(r, where)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render(figures), encoding="utf-8")
    return path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of `billing-elt report` (pipelines/cli.py, which holds its help)."""
    parser.add_argument(
        "--output",
        "-o",
        metavar="FILE",
        default=DEFAULT_OUTPUT,
        help=f"the HTML file to write (default: {DEFAULT_OUTPUT} in the current folder; a missing folder is created)",
    )
    parser.add_argument(
        "--db",
        metavar="FILE",
        default=None,
        help="read this DuckDB file instead of the configured warehouse (e.g. demo.duckdb after `make demo`)",
    )


def run(output: str | Path = DEFAULT_OUTPUT, db: str | Path | None = None) -> int:
    """`billing-elt report`: exit 0 when written, 1 when the warehouse cannot give one (the
    message says why)."""
    from sources.shared import stop

    try:
        path = write_report(output, db)
    except (ReportError, FileNotFoundError) as exc:
        stop.check()  # a signal the database driver turned into an error: a stop, not a failure
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from sources.shared.redact import redact

        stop.check()
        print(f"error: the warehouse could not be read: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(f"report written to {path}", file=sys.stderr)
    return 0
