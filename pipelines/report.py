"""`billing-elt report [--output FILE]`: one self-contained HTML page about the receivables.

    billing-elt report                        # report.html from the configured warehouse
    billing-elt report --output /srv/www/billing.html
    billing-elt report --db demo.duckdb       # a DuckDB file other than the configured one

Every figure comes from the analysis views (`pipelines/views.py`), read through the same
reader as `make query` (the DuckDB file read-only, or the configured destination's dlt SQL
client): receivables aging per currency, revenue by month per currency (credit notes
negative), the clients with the most outstanding, days sales outstanding, and the data's
health (last run per provider account, unmapped records, deletions, where the warehouse
records them). Amounts are never added across currencies.

The page needs nothing but itself: no script, no stylesheet or font from elsewhere, charts
drawn here as inline SVG. Each figure carries its exact value in `data-value` and a key in
`data-figure`, so a test can check what a reader sees against the views.
"""

from __future__ import annotations

import argparse
import datetime as dt
import html
import math
import sys
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

from pipelines.views import VIEW_NAMES
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
BUCKET_COLOURS = ("#4c9f70", "#e0b43c", "#e08a3c", "#d4603a", "#a8323e", "#8c8c8c")
REVENUE_MONTHS = 24
TOP_CLIENTS = 8
INVOICED_COLOUR, CREDITED_COLOUR, NET_COLOUR = "#3b6fb6", "#d4603a", "#1f2937"


class ReportError(Exception):
    """The warehouse cannot give a report (no views yet, not reachable)."""


# --- the figures ----------------------------------------------------------------------------


@dataclass
class Figures:
    """What the report shows, read from the views."""

    as_of: dt.date
    where: str
    aging: dict[str, dict[str, Decimal]] = field(default_factory=dict)
    revenue: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    top_clients: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    dso: list[dict[str, Any]] = field(default_factory=list)
    runs: list[dict[str, Any]] = field(default_factory=list)
    runs_source: str = ""
    unmapped: list[dict[str, Any]] | None = None
    deletions: list[dict[str, Any]] | None = None


def _dec(value: Any) -> Decimal:
    return Decimal(0) if value is None else Decimal(str(value))


def _months_back(month: dt.date, count: int) -> list[dt.date]:
    months = []
    year, mon = month.year, month.month
    for _ in range(count):
        months.append(dt.date(year, mon, 1))
        year, mon = (year, mon - 1) if mon > 1 else (year - 1, 12)
    return list(reversed(months))


def _as_date(value: Any) -> dt.date:
    return value.date() if isinstance(value, dt.datetime) else value


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
    for currency, months in sorted(by_currency.items()):
        last = max(months)
        figures.revenue[currency] = [
            {
                "month": m,
                "invoiced": _dec(months.get(m, {}).get("invoiced")),
                "credited": _dec(months.get(m, {}).get("credited")),
                "net": _dec(months.get(m, {}).get("net")),
                "documents": int(months.get(m, {}).get("documents") or 0),
            }
            for m in _months_back(last, REVENUE_MONTHS)
        ]

    ranked = r.dicts(
        "SELECT provider, account, client_id, client_name, currency, outstanding, invoiced, paid, "
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
    _read_health(r, relations, figures)
    return figures


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
    literal = r.dataset.replace("'", "''")
    _, with_deleted = r.query(
        "SELECT table_name FROM information_schema.columns "
        f"WHERE table_schema = '{literal}' AND column_name = 'deleted_at' AND table_name IN ('invoices', 'clients')"
    )
    tables = sorted({str(x[0]) for x in with_deleted})
    if tables:
        figures.deletions = []
        for table in tables:
            figures.deletions += r.dicts(
                f"SELECT '{table}' AS record_type, provider, account, "
                "SUM(CASE WHEN deleted_at IS NOT NULL THEN 1 ELSE 0 END) AS deleted, "
                f"MAX(deleted_at) AS last_deleted_at FROM {t(table)} GROUP BY provider, account "
                "ORDER BY provider, account"
            )


# --- SVG charts -----------------------------------------------------------------------------


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def money(value: Any) -> str:
    """`1,234.56`, with a true minus sign for negatives."""
    amount = _dec(value)
    text = f"{abs(amount):,.2f}"
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


def column_chart(
    name: str,
    label: str,
    categories: Sequence[str],
    series: Sequence[tuple[str, Sequence[Decimal], str | Sequence[str]]],
    line: tuple[str, Sequence[Decimal], str] | None = None,
    width: int = 760,
    height: int = 260,
) -> str:
    """Columns per category, series stacked away from zero (negatives below the axis), and an
    optional line (e.g. net) over them. Each column has a tooltip."""
    left, right, top, bottom = 64, 12, 12, 46
    plot_w, plot_h = width - left - right, height - top - bottom
    highs = [sum(max(float(s[1][i]), 0.0) for s in series) for i in range(len(categories))]
    lows = [sum(min(float(s[1][i]), 0.0) for s in series) for i in range(len(categories))]
    extra = [float(v) for v in line[1]] if line else []
    ticks = nice_ticks(min([0.0, *lows, *extra]), max([0.0, *highs, *extra]))
    lo, hi = ticks[0], ticks[-1]

    def y(value: float) -> float:
        return top + plot_h * (hi - value) / ((hi - lo) or 1.0)

    parts = [
        f'<svg class="chart" data-chart="{_esc(name)}" role="img" aria-label="{_esc(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(label)}</title>",
    ]
    for tick in ticks:
        parts.append(
            f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
            f'class="{"axis" if tick == 0 else "grid"}"/>'
            f'<text x="{left - 6}" y="{y(tick) + 4:.1f}" text-anchor="end" class="tick">{_compact(tick)}</text>'
        )
    slot = plot_w / max(len(categories), 1)
    bar = max(slot * 0.7, 1.0)
    every = max(1, math.ceil(len(categories) / 12))
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
                f"<title>{_esc(category)} · {_esc(series_name)}: {money(values[i])}</title></rect>"
            )
        if i % every == 0:
            parts.append(
                f'<text x="{x + bar / 2:.1f}" y="{height - bottom + 16}" text-anchor="middle" class="tick">'
                f"{_esc(category)}</text>"
            )
    if line:
        points = " ".join(f"{left + i * slot + slot / 2:.1f},{y(float(v)):.1f}" for i, v in enumerate(line[1]))
        parts.append(f'<polyline points="{points}" fill="none" stroke="{line[2]}" stroke-width="2"/>')
        for i, v in enumerate(line[1]):
            parts.append(
                f'<circle cx="{left + i * slot + slot / 2:.1f}" cy="{y(float(v)):.1f}" r="2.5" fill="{line[2]}">'
                f"<title>{_esc(categories[i])} · {_esc(line[0])}: {money(v)}</title></circle>"
            )
    legend: list[tuple[str, str | None]] = [(s[0], s[2] if isinstance(s[2], str) else None) for s in series]
    if line:
        legend.append((line[0], line[2]))
    x = left
    for legend_name, legend_colour in legend:
        if legend_colour is None:
            continue
        parts.append(
            f'<rect x="{x}" y="{height - 14}" width="10" height="10" fill="{legend_colour}"/>'
            f'<text x="{x + 14}" y="{height - 5}" class="tick">{_esc(legend_name)}</text>'
        )
        x += 24 + 7 * len(legend_name)
    parts.append("</svg>")
    return "".join(parts)


def bar_chart(name: str, label: str, rows: Sequence[tuple[str, Decimal]], colour: str, width: int = 760) -> str:
    """Horizontal bars, one per row, longest first as given."""
    row_h, left, right = 26, 240, 110
    height = row_h * len(rows) + 10
    top_value = max([float(v) for _, v in rows] + [0.0]) or 1.0
    parts = [
        f'<svg class="chart" data-chart="{_esc(name)}" role="img" aria-label="{_esc(label)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">',
        f"<title>{_esc(label)}</title>",
    ]
    for i, (text, value) in enumerate(rows):
        y = 5 + i * row_h
        length = max((width - left - right) * max(float(value), 0.0) / top_value, 0.5)
        shown = text if len(text) <= 34 else text[:33] + "…"
        parts.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" class="label">{_esc(shown)}</text>'
            f'<rect x="{left}" y="{y + 4}" width="{length:.1f}" height="{row_h - 8}" fill="{colour}">'
            f"<title>{_esc(text)}: {money(value)}</title></rect>"
            f'<text x="{left + length + 6:.1f}" y="{y + 17}" class="label">{money(value)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


# --- the page -------------------------------------------------------------------------------


def _figure(key: str, value: Any, text: str | None = None) -> str:
    """A table cell showing `text` (the money format of `value` by default) with the exact
    value in `data-value` and its key in `data-figure`."""
    exact = "" if value is None else str(value)
    shown = text if text is not None else ("—" if value is None else money(value))
    negative = " neg" if value is not None and _dec(value) < 0 else ""
    return f'<td class="num{negative}" data-figure="{_esc(key)}" data-value="{_esc(exact)}">{_esc(shown)}</td>'


def _cell(value: Any) -> str:
    if value is None:
        return '<td class="muted">—</td>'
    if isinstance(value, dt.datetime):
        value = value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return f"<td>{_esc(value)}</td>"


def _table(headers: Iterable[str], rows: Iterable[str], numeric_from: int = 1) -> str:
    head = "".join(f'<th class="{"num" if i >= numeric_from else ""}">{_esc(h)}</th>' for i, h in enumerate(headers))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _aging_section(f: Figures) -> str:
    if not f.aging:
        return '<p class="muted">Nothing is outstanding.</p>'
    out = []
    for currency, row in f.aging.items():
        chart = column_chart(
            f"aging-{currency}",
            f"Receivables aging, {currency}",
            ["Not due", "1–30 d", "31–60 d", "61–90 d", "> 90 d", "No date"],
            [("outstanding", [row[b] for b, _ in AGING_BUCKETS], BUCKET_COLOURS)],
            width=400,
            height=210,
        )
        out.append(f'<div class="card"><h3>{_esc(currency)}</h3>{chart}</div>')
    headers = ["Currency", *[label for _, label in AGING_BUCKETS], "Outstanding"]
    rows = []
    for currency, row in f.aging.items():
        cells = "".join(_figure(f"aging/{currency}/{b}", row[b]) for b, _ in AGING_BUCKETS)
        total = _figure(f"aging/{currency}/outstanding", row["outstanding"])
        rows.append(f"<tr><td><b>{_esc(currency)}</b></td>{cells}{total}</tr>")
    return '<div class="grid">' + "".join(out) + "</div>" + _table(headers, rows)


def _revenue_section(f: Figures) -> str:
    if not f.revenue:
        return '<p class="muted">No billing documents yet.</p>'
    out = []
    for currency, months in f.revenue.items():
        labels = [m["month"].strftime("%b %y") for m in months]
        chart = column_chart(
            f"revenue-{currency}",
            f"Revenue by month, {currency}",
            labels,
            [
                ("invoiced", [m["invoiced"] for m in months], INVOICED_COLOUR),
                ("credit notes", [m["credited"] for m in months], CREDITED_COLOUR),
            ],
            line=("net", [m["net"] for m in months], NET_COLOUR),
        )
        rows = []
        for m in reversed(months):
            key = f"revenue/{currency}/{m['month']:%Y-%m}"
            rows.append(
                f"<tr><td>{m['month']:%B %Y}</td>{_figure(key + '/invoiced', m['invoiced'])}"
                f"{_figure(key + '/credited', m['credited'])}{_figure(key + '/net', m['net'])}"
                f'<td class="num">{m["documents"]}</td></tr>'
            )
        first, last = months[0]["month"], months[-1]["month"]
        table = _table(["Month", "Invoiced", "Credit notes", "Net", "Documents"], rows)
        out.append(
            f'<div class="card wide"><h3>{_esc(currency)} <span class="muted">{first:%b %Y} – {last:%b %Y}</span></h3>'
            f"{chart}<details><summary>Month by month</summary>{table}</details></div>"
        )
    return "".join(out)


def _clients_section(f: Figures) -> str:
    if not f.top_clients:
        return '<p class="muted">No client owes anything.</p>'
    out = []
    for currency, clients in f.top_clients.items():
        names = [f"{c['client_name'] or c['client_id'] or '(no client)'}" for c in clients]
        chart = bar_chart(
            f"clients-{currency}",
            f"Clients with the most outstanding, {currency}",
            [(n, _dec(c["outstanding"])) for n, c in zip(names, clients, strict=True)],
            INVOICED_COLOUR,
        )
        rows = []
        for name, c in zip(names, clients, strict=True):
            key = f"client/{currency}/{c['provider']}/{c['account']}/{c['client_id']}"
            rows.append(
                f"<tr><td>{_esc(name)}</td><td>{_esc(c['provider'])}</td><td>{_esc(c['account'])}</td>"
                f"{_figure(key + '/outstanding', c['outstanding'])}{_figure(key + '/invoiced', c['invoiced'])}"
                f"{_figure(key + '/paid', c['paid'])}{_cell(c['oldest_unpaid_due_date'])}</tr>"
            )
        table = _table(
            ["Client", "Provider", "Account", "Outstanding", "Invoiced", "Paid", "Oldest unpaid due"], rows, 3
        )
        out.append(f'<div class="card wide"><h3>{_esc(currency)}</h3>{chart}{table}</div>')
    return "".join(out)


def _dso_section(f: Figures) -> str:
    if not f.dso:
        return '<p class="muted">No receivables or recent revenue.</p>'
    rows = []
    for d in f.dso:
        key = f"dso/{d['provider']}/{d['account']}/{d['currency']}"
        days = d["dso_days"]
        rows.append(
            f"<tr><td>{_esc(d['provider'])}</td><td>{_esc(d['account'])}</td><td>{_esc(d['currency'])}</td>"
            f"{_figure(key + '/outstanding', d['outstanding'])}"
            f"{_figure(key + '/net_revenue_90d', d['net_revenue_90d'])}"
            f"{_figure(key + '/dso_days', days, '—' if days is None else f'{_dec(days):,.1f} days')}</tr>"
        )
    note = (
        '<p class="muted">Days sales outstanding: outstanding ÷ (net revenue of the last 90 days ÷ 90). '
        "“—” where the last 90 days have no positive net revenue.</p>"
    )
    return note + _table(["Provider", "Account", "Currency", "Outstanding", "Net revenue, 90 days", "DSO"], rows, 3)


def _health_section(f: Figures) -> str:
    parts = []
    if f.runs_source == "pipeline_runs":
        rows = [
            f"<tr><td>{_esc(r['provider'])}</td><td>{_esc(r['account'])}</td>"
            f'<td class="status-{_esc(r["status"])}">{_esc(r["status"])}</td>{_cell(r["finished_at"])}'
            f"{_cell(r['invoices'])}{_cell(r['unmapped'])}{_cell(r['deleted'])}{_cell(r['message'])}</tr>"
            for r in f.runs
        ]
        parts.append(
            _table(
                ["Provider", "Account", "Last run", "Finished", "Invoices", "Unmapped", "Deleted", "Message"], rows, 99
            )
        )
    else:
        rows = [
            f"<tr><td>{_esc(r['provider'])}</td><td>{_esc(r['account'])}</td>{_cell(r['finished_at'])}"
            f'<td class="num">{r["invoices"]:,}</td></tr>'
            for r in f.runs
        ]
        parts.append(
            '<p class="muted">Last successful load per provider, from dlt\'s load records (this warehouse has no '
            "pipeline_runs table yet, so failed runs are not listed).</p>"
            + _table(["Provider", "Account", "Last load", "Invoices held"], rows, 3)
        )
    if f.unmapped is None:
        parts.append('<p class="muted">Unmapped records: not recorded in this warehouse yet.</p>')
    elif not f.unmapped:
        parts.append("<p>Unmapped records: none — every record the providers sent was mapped.</p>")
    else:
        rows = [
            f"<tr><td>{_esc(u['provider'])}</td><td>{_esc(u['account'])}</td><td>{_esc(u['record_type'])}</td>"
            f'<td>{_esc(u["reason"])}</td><td class="num">{u["records"]:,}</td>{_cell(u["last_seen_at"])}</tr>'
            for u in f.unmapped
        ]
        parts.append(
            "<h3>Unmapped records</h3>"
            + _table(["Provider", "Account", "Type", "Reason", "Records", "Last seen"], rows, 4)
        )
    if f.deletions is None:
        parts.append('<p class="muted">Deletions: not recorded in this warehouse yet.</p>')
    else:
        rows = [
            f"<tr><td>{_esc(d['record_type'])}</td><td>{_esc(d['provider'])}</td><td>{_esc(d['account'])}</td>"
            f'<td class="num">{int(d["deleted"] or 0):,}</td>{_cell(d["last_deleted_at"])}</tr>'
            for d in f.deletions
        ]
        parts.append(
            "<h3>Deleted at the provider</h3>"
            + _table(["Records", "Provider", "Account", "Deleted", "Last deletion"], rows, 3)
        )
    return "".join(parts)


def _summary(f: Figures) -> str:
    tiles = []
    for currency, row in f.aging.items():
        overdue = sum((row[b] for b in ("days_1_30", "days_31_60", "days_61_90", "days_over_90")), Decimal(0))
        tiles.append(
            f'<div class="tile"><div class="muted">{_esc(currency)} outstanding</div>'
            f'<div class="big">{money(row["outstanding"])}</div>'
            f'<div class="muted">of which overdue {money(overdue)}</div></div>'
        )
    return '<div class="tiles">' + "".join(tiles) + "</div>" if tiles else ""


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
.grid { display: flex; flex-wrap: wrap; gap: 16px; }
.card { background: #fff; border-radius: 8px; padding: 14px 16px; box-shadow: 0 1px 2px rgba(0,0,0,.08);
        margin-bottom: 16px; max-width: 100%; overflow-x: auto; }
.tiles { display: flex; flex-wrap: wrap; gap: 12px; margin-top: 20px; }
.tile { background: #fff; border-radius: 8px; padding: 12px 18px; box-shadow: 0 1px 2px rgba(0,0,0,.08);
        min-width: 190px; }
.big { font-size: 22px; font-weight: 600; }
table { border-collapse: collapse; background: #fff; margin: 8px 0; font-size: 13px; }
th, td { padding: 5px 10px; border-bottom: 1px solid #e5e7eb; text-align: left; white-space: nowrap; }
th { background: #f3f4f6; font-weight: 600; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.neg { color: #b42318; }
.muted { color: #6b7280; }
.status-failed { color: #b42318; font-weight: 600; }
svg.chart { display: block; max-width: 100%; height: auto; }
svg .grid { stroke: #e5e7eb; } svg .axis { stroke: #6b7280; }
svg .tick { font-size: 11px; fill: #4b5563; } svg .label { font-size: 12px; fill: #1f2937; }
details summary { cursor: pointer; color: #3b6fb6; margin-top: 6px; }
"""


def render(f: Figures) -> str:
    """The whole page."""
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    sections = [
        (
            "aging",
            "Receivables aging",
            "Open and partially paid documents by days past their due date, as of "
            f"{f.as_of:%d %B %Y}. Credit notes not yet applied count negative.",
            _aging_section(f),
        ),
        (
            "revenue",
            "Revenue by month",
            "Billing documents by issue month, neither draft nor void; credit notes "
            f"negative. The last {REVENUE_MONTHS} months with data, per currency.",
            _revenue_section(f),
        ),
        ("clients", "Clients with the most outstanding", f"The top {TOP_CLIENTS} per currency.", _clients_section(f)),
        ("dso", "Days sales outstanding", "", _dso_section(f)),
        ("health", "Data health", "", _health_section(f)),
    ]
    body = "".join(
        f'<section id="{key}"><h2>{_esc(title)}</h2>'
        + (f'<p class="muted">{_esc(intro)}</p>' if intro else "")
        + content
        + "</section>"
        for key, title, intro, content in sections
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta http-equiv="Content-Security-Policy" '
        "content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">"
        f"<title>Billing report — {f.as_of:%d %b %Y}</title><style>{STYLE}</style></head><body>"
        f"<header><h1>Billing report</h1><p>As of {f.as_of:%d %B %Y} · {_esc(f.where)} · generated {generated}. "
        "Amounts are per currency, never added across currencies.</p></header>"
        f"<main>{_summary(f)}{body}</main></body></html>\n"
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


def main(argv: Sequence[str] | None = None) -> int:
    """`billing-elt report [--output FILE] [--db FILE]`. Exit 0 when written, 1 when the
    warehouse cannot give one (the message says why), 2 for a wrong command line."""
    parser = argparse.ArgumentParser(
        prog="billing-elt report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", "-o", default=DEFAULT_OUTPUT, help=f"the HTML file (default {DEFAULT_OUTPUT})")
    parser.add_argument("--db", default=None, help="a DuckDB file (default: the configured warehouse)")
    args = parser.parse_args(argv)
    try:
        path = write_report(args.output, args.db)
    except (ReportError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        from sources.shared.redact import redact

        print(f"error: the warehouse could not be read: {redact(str(exc))}", file=sys.stderr)
        return 1
    print(f"report written to {path}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
