"""The report's parts that read the views on the invoice history (`pipelines/history_views.py`):
when clients pay, the true days sales outstanding beside the estimate, and the receivables as
they stood at each month end.

- Days to pay come from `invoice_payments.days_to_pay`: only invoices whose payment day is known
  (the provider's `paid_at`, or the run that first saw them paid when an earlier run saw them
  unpaid) count; each figure says how many invoices it rests on. The average and the spread (the
  population standard deviation) are computed here from the views' whole days, exactly (Decimal),
  shown to a tenth of a day; `data-value` carries them to the millionth.
- A late payment is one whose `days_late` (from `due_date` to the payment day) is above 0.
- The month-end chart stacks, per currency, the aging buckets of `receivables_month_end`
  summed over the provider accounts: they add up to what was outstanding on that day.

A warehouse whose views on history do not exist yet (loaded by an older version, and not loaded
since) gets a sentence saying so instead of these figures. The functions here draw with
`pipelines/report.py`'s own helpers, so every figure reads as the others do.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from typing import Any

from pipelines import report as page
from pipelines.views import HISTORY_VIEW_NAMES

EXACT = Decimal("0.000001")
MONTH_END_MONTHS = 24  # the month ends the chart shows, up to the current month
LATE_COLOUR = "#d4603a"
NOT_YET = "The invoice history starts with the first load of this version: run `billing-elt load` to create its views."


@dataclass
class DaysToPay:
    """Days to pay of a set of paid invoices: how many were paid, how many of them have a known
    payment day (the rest is out of the averages), and the figures of those."""

    paid: int = 0
    days: list[int] = field(default_factory=list)
    late: list[int] = field(default_factory=list)  # days late of the late payments

    def add(self, days_to_pay: Any, days_late: Any) -> None:
        self.paid += 1
        if days_to_pay is not None:
            self.days.append(int(days_to_pay))
        if days_late is not None and int(days_late) > 0:
            self.late.append(int(days_late))

    @property
    def known(self) -> int:
        return len(self.days)

    @property
    def average(self) -> Decimal | None:
        return mean(self.days)

    @property
    def spread(self) -> Decimal | None:
        return deviation(self.days)

    @property
    def average_late(self) -> Decimal | None:
        return mean(self.late)


def mean(values: list[int]) -> Decimal | None:
    """The exact average, to the millionth (half-even); None of nothing."""
    if not values:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        return (Decimal(sum(values)) / len(values)).quantize(EXACT, ROUND_HALF_EVEN)


def deviation(values: list[int]) -> Decimal | None:
    """The population standard deviation, to the millionth; None of nothing."""
    if not values:
        return None
    with localcontext() as ctx:
        ctx.prec = 50
        average = Decimal(sum(values)) / len(values)
        variance = sum(((Decimal(v) - average) ** 2 for v in values), Decimal(0)) / len(values)
        return variance.sqrt().quantize(EXACT, ROUND_HALF_EVEN)


@dataclass
class HistoryFigures:
    """What the report shows from the views on history."""

    # (currency, provider, account, client_id) → the client's name and its days to pay.
    clients: dict[tuple[str, str, str, str], tuple[str, DaysToPay]] = field(default_factory=dict)
    # (provider, account, currency) → days to pay of the account's paid invoices.
    accounts: dict[tuple[str, str, str], DaysToPay] = field(default_factory=dict)
    # currency → one row per month: month, month_end, the aging buckets and outstanding.
    month_end: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def read(r: Any, relations: set[str]) -> HistoryFigures | None:
    """The history figures from the views in `r`'s dataset; None when they do not exist."""
    if any(v not in relations for v in HISTORY_VIEW_NAMES):
        return None
    t = r.table
    found = HistoryFigures()
    names: dict[tuple[str, str, str, str], str] = {}
    clients: dict[tuple[str, str, str, str], DaysToPay] = defaultdict(DaysToPay)
    accounts: dict[tuple[str, str, str], DaysToPay] = defaultdict(DaysToPay)
    for row in r.dicts(
        "SELECT provider, account, client_id, client_name, currency, days_to_pay, days_late "
        f"FROM {t('invoice_payments')} ORDER BY provider, account, client_id, invoice_id"
    ):
        client = (row["currency"], row["provider"], row["account"], row["client_id"] or "")
        names[client] = row["client_name"] or row["client_id"] or "(no client)"
        clients[client].add(row["days_to_pay"], row["days_late"])
        accounts[(row["provider"], row["account"], row["currency"])].add(row["days_to_pay"], row["days_late"])
    found.clients = {key: (names[key], stats) for key, stats in sorted(clients.items())}
    found.accounts = dict(accounts)
    buckets = ", ".join(f"SUM({b}) AS {b}" for b, _ in page.AGING_BUCKETS)
    months: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in r.dicts(
        f"SELECT currency, month, MAX(month_end) AS month_end, {buckets}, SUM(outstanding) AS outstanding "
        f"FROM {t('receivables_month_end')} GROUP BY currency, month ORDER BY currency, month"
    ):
        months[row["currency"]].append(
            {**row, "month": page._as_date(row["month"]), "month_end": page._as_date(row["month_end"])}
        )
    found.month_end = {c: rows[-MONTH_END_MONTHS:] for c, rows in months.items()}
    return found


# --- drawing --------------------------------------------------------------------------------


def _days(value: Decimal | None) -> str:
    return "—" if value is None else f"{value:,.1f}"


def _count(key: str, value: int) -> str:
    return page._figure(key, value, f"{value:,}")


def _day_figure(key: str, value: Decimal | None, title: str | None = None) -> str:
    return page._figure(key, value, _days(value), title)


DSO_HEADERS = ("Days to pay (average)", "Spread (± days)", "Paid invoices, day known")


def dso_cells(f: Any, provider: str, account: str, currency: str) -> str:
    """The true DSO beside the estimate: average days to pay of the account's paid invoices whose
    payment day is known, their spread, and how many they are (of how many paid)."""
    history: HistoryFigures | None = f.history
    key = f"dso/{provider}/{account}/{currency}"
    if history is None:
        return '<td class="muted">—</td>' * len(DSO_HEADERS)
    stats = history.accounts.get((provider, account, currency), DaysToPay())
    return (
        _day_figure(f"{key}/days_to_pay", stats.average)
        + _day_figure(f"{key}/days_to_pay_spread", stats.spread)
        + page._figure(f"{key}/days_known", stats.known, f"{stats.known:,} of {stats.paid:,}")
    )


def dso_note(f: Any) -> str:
    if f.history is None:
        return page._note(f"Days to pay: {NOT_YET}")
    return page._note(
        "Days to pay: the average and spread (standard deviation) of the days from issue to payment of the paid "
        "invoices whose payment day is known (the provider's, or the run that first saw them paid after one saw "
        "them unpaid), with how many invoices that is of those paid. The estimate above divides what is owed by "
        "recent revenue; this is what clients did."
    )


def payments_section(f: Any) -> str:
    history: HistoryFigures | None = f.history
    if history is None:
        return page._note(NOT_YET)
    if not history.clients:
        return page._note("No invoice has been paid yet, as far as the history knows.")
    by_currency: dict[str, list[tuple[tuple[str, str, str, str], str, DaysToPay]]] = defaultdict(list)
    for who, (name, stats) in history.clients.items():
        by_currency[who[0]].append((who, name, stats))
    out = []
    for currency, clients in sorted(by_currency.items()):
        known = [(k, n, s) for k, n, s in clients if s.average is not None]
        ranked = sorted(known, key=lambda c: (-(c[2].average or 0), c[1]))[: page.TOP_CLIENTS]
        chart = (
            page.bar_chart(
                f"days-to-pay-{currency}",
                f"Average days to pay per client, {currency}",
                [(n, s.average or Decimal(0)) for _, n, s in ranked],
                page.INVOICED_COLOUR,
                number=_days,
            )
            if ranked
            else page._note("No payment day is known yet: every paid invoice was already paid when first seen.")
        )
        rows = []
        for (cur, provider, account, client), name, stats in clients:
            at = f"pay/{cur}/{provider}/{account}/{client}"
            low = Decimal(min(stats.days)) if stats.days else None
            high = Decimal(max(stats.days)) if stats.days else None
            rows.append(
                f"<tr>{page._who(name, provider + ' · ' + account)}"
                f"{_count(at + '/paid', stats.paid)}{_count(at + '/days_known', stats.known)}"
                f"{_day_figure(at + '/days_to_pay', stats.average)}"
                f"{_day_figure(at + '/days_to_pay_spread', stats.spread)}"
                f"{_day_figure(at + '/fastest', low)}{_day_figure(at + '/slowest', high)}"
                f"{_count(at + '/paid_late', len(stats.late))}</tr>"
            )
        headers = ["Client", "Paid", "Day known", "Days to pay", "Spread (±)", "Fastest", "Slowest", "Paid late"]
        table = page._table(headers, rows)
        out.append(
            f'<div class="card"><h3>{page._esc(currency)}</h3><div class="pair"><div>{chart}</div>'
            f"<div>{table}</div></div>{_late_payers(currency, clients)}</div>"
        )
    return "".join(out)


def _late_payers(currency: str, clients: Iterable[tuple[tuple[str, str, str, str], str, DaysToPay]]) -> str:
    """The clients who paid after the due date, the latest on average first."""
    late = sorted(
        ((k, n, s) for k, n, s in clients if s.late), key=lambda c: (-(c[2].average_late or 0), -len(c[2].late), c[1])
    )
    if not late:
        return page._note("Late payers: none; every payment whose day is known came by its due date.", "none")
    rows = []
    for (cur, provider, account, client), name, stats in late:
        key = f"late/{cur}/{provider}/{account}/{client}"
        rows.append(
            f"<tr>{page._who(name, provider + ' · ' + account)}"
            f"{page._figure(key + '/paid_late', len(stats.late), f'{len(stats.late):,} of {stats.known:,}')}"
            f"{_day_figure(key + '/days_late', stats.average_late)}"
            f"{_day_figure(key + '/most_days_late', Decimal(max(stats.late)))}</tr>"
        )
    table = page._table(["Client", "Paid late (of day known)", "Days late (average)", "Most days late"], rows)
    return f"<h3>Late payers, {page._esc(currency)}</h3>{table}"


def month_end_section(f: Any) -> str:
    history: HistoryFigures | None = f.history
    if history is None:
        return page._note(NOT_YET)
    if not history.month_end:
        return page._note("No invoice history yet.")
    buckets = [b for b, _ in page.AGING_BUCKETS]
    legend = page._legend(
        [(label, colour, "box") for (_, label), colour in zip(page.AGING_BUCKETS, page.BUCKET_COLOURS, strict=True)]
    )
    cards = []
    for currency, months in history.month_end.items():
        if not any(page._dec(m[b]) for m in months for b in buckets):
            cards.append(
                f'<div class="card"><h3>{page._esc(currency)}</h3>'
                f"{page._note('Nothing outstanding at any month end.', 'none')}</div>"
            )
            continue
        chart = page.column_chart(
            f"month-end-{currency}",
            f"Receivables at month end, {currency}",
            [m["month_end"].strftime("%b %y") for m in months],
            [
                (label, [page._dec(m[b]) for m in months], colour)
                for (b, label), colour in zip(page.AGING_BUCKETS, page.BUCKET_COLOURS, strict=True)
            ],
            width=620,
        )
        rows = []
        for m in reversed(months):
            key = f"monthend/{currency}/{m['month']:%Y-%m}"
            cells = "".join(page._figure(f"{key}/{b}", page._dec(m[b])) for b in (*buckets, "outstanding"))
            rows.append(f"<tr>{page._cell(m['month_end'])}{cells}</tr>")
        table = page._table(["Month end", *[label for _, label in page.AGING_BUCKETS], "Outstanding"], rows)
        cards.append(
            f'<div class="card"><h3>{page._esc(currency)}</h3>{chart}{legend}'
            f"<details><summary>Month by month ({len(rows)})</summary>{table}</details></div>"
        )
    return '<div class="grid">' + "".join(cards) + "</div>"


def month_end_intro(f: Any) -> str:
    first = min((m[0]["month"] for m in f.history.month_end.values()), default=None) if f.history else None
    since = f" since {first:%B %Y}, when the history starts" if isinstance(first, dt.date) else ""
    return (
        f"What was outstanding at the end of each month{since}, by days past due on that day, as the invoice history "
        f"saw it (the current month: today, as in the aging above). A payment between two loads counts from the "
        "load that saw it."
    )
