"""The driver's handling of records, labels, lookups and mapping inputs, at its own seam.

- A record the driver cannot take (not a JSON object, an amount DECIMAL(18, 6) cannot hold, a line
  that is not an object) is kept in `unmapped_records` with its reason; the rest of its page is written.
- `raw` is the record's JSON text exactly as the API sent it, each line's `raw` its element's text.
- An account whose label only the API knows (Flow Payroll) is labelled from its records.
- A declared lookup (Fohlio `/team`) is fetched once a run, and only when a mapping asks for it.
- What a mapping read besides its record is kept in `_mapping_inputs`; nothing where it read nothing.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from typing import Any

import httpx
import pytest
import simplejson

from sandbox.flowpayroll import create_app as flowpayroll_app
from sandbox.fohlio import create_app as fohlio_app
from sandbox.invoicexpress import create_app as invoicexpress_app
from sandbox.kitchen import create_app as kitchen_app
from sources.flowpayroll import PROVIDER as FLOWPAYROLL
from sources.fohlio import PROVIDER as FOHLIO
from sources.invoicexpress import PROVIDER as INVOICEXPRESS
from sources.kitchen import PROVIDER as KITCHEN
from sources.shared.driver import NOT_AN_OBJECT
from sources.shared.errors import ConfigurationError
from tests.shared.driving import Recording, account_of, inputs, run

# --- records and exactness --------------------------------------------------------------------


def kitchen_page(texts: list[str]) -> bytes:
    """One Laravel page holding the records `texts` exactly as written."""
    meta = {"current_page": 1, "last_page": 1, "per_page": 100, "total": len(texts), "from": 1, "to": len(texts)}
    return (
        '{"data": [\n  ' + ",\n  ".join(texts) + '\n],\n "links": {}, "meta": ' + simplejson.dumps(meta) + "}"
    ).encode()


def serving(app: Any, invoices: bytes) -> httpx.MockTransport:
    """The sandbox, except its invoice listing: `invoices`, byte for byte."""
    inner = app.transport()

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/api/invoices":
            return httpx.Response(200, content=invoices, headers={"Content-Type": "application/json"})
        return inner.handle_request(request)

    return httpx.MockTransport(answer)


def test_records_that_cannot_be_taken_are_kept_with_their_reasons_and_the_rest_is_written() -> None:
    app = kitchen_app(invoices=12, fixtures=False)
    with_lines = [app.invoice(i["id"]) for i in app.invoices if len(i["items"]) >= 2]
    good, spaced, huge, fine_digit, bad_line = (dict(i) for i in with_lines[:5])
    spaced["memo"] = "Chloé's studio, 1.50 × 2"
    huge["total_amount"] = Decimal("123456789012345678.00")  # 18 digits before the point
    fine_digit["items"] = [{**fine_digit["items"][0], "amount": Decimal("10.1234567")}, *fine_digit["items"][1:]]
    bad_line["items"] = [bad_line["items"][0], "a line that is not an object"]
    texts = {
        "good": simplejson.dumps(good, use_decimal=True),
        # Escapes, spacing and a line per key, as some APIs write them: kept exactly as sent.
        "spaced": simplejson.dumps(spaced, use_decimal=True, indent=3, ensure_ascii=True),
        "number": "42",
        "huge": simplejson.dumps(huge, use_decimal=True),
        "fine_digit": simplejson.dumps(fine_digit, use_decimal=True),
        "bad_line": simplejson.dumps(bad_line, use_decimal=True),
    }
    api, account = account_of(KITCHEN, app, serving(app, kitchen_page(list(texts.values()))))
    states: dict[str, Any] = {}
    ran = run(api, account, states)

    assert sorted(ran.ids()) == sorted([good["id"], spaced["id"]])
    raw = {row["invoice_id"]: row["raw"] for row in ran.rows("invoices")}
    assert raw == {good["id"]: texts["good"], spaced["id"]: texts["spaced"]}
    assert "Chlo\\u00e9" in raw[spaced["id"]] and "\n   " in raw[spaced["id"]]
    # Each line's raw is its element's text inside the record's, as sent: compact, or indented three
    # levels deep (six spaces before each of its inner lines) with its escapes.
    expected_lines = {
        (good["id"], n): simplejson.dumps(item, use_decimal=True) for n, item in enumerate(good["items"], start=1)
    }
    expected_lines |= {
        (spaced["id"], n): simplejson.dumps(item, use_decimal=True, indent=3, ensure_ascii=True).replace(
            "\n", "\n" + " " * 6
        )
        for n, item in enumerate(spaced["items"], start=1)
    }
    lines = {(r["invoice_id"], r["line_number"]): r["raw"] for r in ran.rows("invoice_items")}
    assert lines == expected_lines
    assert all(text in texts["spaced"] for (invoice, _), text in lines.items() if invoice == spaced["id"])

    unmapped = ran.unmapped()
    number_key = next(k for k in unmapped if k.startswith("sha256:"))
    assert set(unmapped) == {number_key, huge["id"], fine_digit["id"], bad_line["id"]}
    assert unmapped[number_key]["reason"] == NOT_AN_OBJECT and unmapped[number_key]["raw"] == "42"
    assert re.fullmatch(r"invoices\.\w+: .* does not fit DECIMAL\(18, 6\) exactly", unmapped[huge["id"]]["reason"])
    assert unmapped[fine_digit["id"]]["reason"] == (
        "invoice_items.unit_price: 10.1234567 does not fit DECIMAL(18, 6) exactly"
    )
    assert unmapped[bad_line["id"]]["reason"] == "items[2]: expected an object, got str"
    for key, name in ((huge["id"], "huge"), (fine_digit["id"], "fine_digit"), (bad_line["id"], "bad_line")):
        assert unmapped[key]["raw"] == texts[name]
    # A refused invoice takes none of its lines with it into the tables.
    assert {r["invoice_id"] for r in ran.rows("invoice_items")} == {good["id"], spaced["id"]}
    assert set(states["acme"]["unmapped"]["invoice"]) == set(unmapped)
    assert ran.stats.unmapped == 4 and ran.stats.invoices == 2


def test_raw_is_the_text_of_the_record_in_the_page_the_sandbox_sent() -> None:
    app = fohlio_app()
    transport = Recording(app.transport())
    pages: list[bytes] = []
    transport.after = lambda request, response: (
        pages.append(response.read()) if request.url.path == "/client_invoices" else None
    )
    api, account = account_of(FOHLIO, app, transport, per_page=7)
    ran = run(api, account, {})
    sent = b"".join(pages)
    for row in ran.rows("invoices"):
        raw = row["raw"].encode()
        assert sent.count(raw) == 1, row["invoice_id"]  # cut from the page, not encoded again
        record = simplejson.loads(raw, use_decimal=True)
        assert str(record["id"]) == row["invoice_id"]
        lines = [r["raw"] for r in ran.rows("invoice_items") if r["invoice_id"] == row["invoice_id"]]
        assert [simplejson.loads(text, use_decimal=True) for text in lines] == record["items"]
        assert all(text.encode() in raw for text in lines)


def test_a_record_kept_unmapped_is_taken_out_once_the_listing_no_longer_holds_it() -> None:
    app = kitchen_app(invoices=6, fixtures=False)
    texts = [simplejson.dumps(app.invoice(i["id"]), use_decimal=True) for i in app.invoices]
    body = kitchen_page([*texts, '"not an invoice"'])
    api, account = account_of(KITCHEN, app, serving(app, body))
    states: dict[str, Any] = {}
    first = run(api, account, states)
    [key] = first.unmapped()

    api, account = account_of(KITCHEN, app, serving(app, kitchen_page(texts)))
    second = run(api, account, states)  # complete and stable: what it does not hold is gone
    assert second.unmapped() == {key: second.unmapped()[key]} and second.unmapped()[key]["_tombstone"]
    assert states["acme"]["unmapped"]["invoice"] == {}


# --- labels from the API --------------------------------------------------------------------------


def test_an_account_the_api_labels_takes_its_label_from_the_records() -> None:
    app = flowpayroll_app()
    api, account = account_of(FLOWPAYROLL, app)
    assert account.label is None
    states: dict[str, Any] = {}
    ran = run(api, account, states)
    label = app.organisation_id
    assert ran.stats.account == label and ran.listed.account == label
    assert list(states) == [label]
    for table in ("clients", "invoices", "invoice_items"):
        assert {row["account"] for row in ran.rows(table)} == {label}, table
    assert len(ran.ids()) == len(app.invoices)


def test_a_configured_label_wins_over_the_api() -> None:
    app = flowpayroll_app()
    api, account = account_of(FLOWPAYROLL, app, account="payroll_eu")
    states: dict[str, Any] = {}
    ran = run(api, account, states)
    assert list(states) == ["payroll_eu"] and {row["account"] for row in ran.rows("invoices")} == {"payroll_eu"}


def test_an_empty_organisation_loads_nothing_and_keeps_no_state() -> None:
    app = flowpayroll_app(clients=0, fixtures=False)
    transport = Recording(app.transport())
    api, account = account_of(FLOWPAYROLL, app, transport)
    states: dict[str, Any] = {}
    ran = run(api, account, states)
    assert ran.batches[0].tables == {} and states == {}
    assert [s.path for s in transport.sent() if s.path.startswith("/v1")] == ["/v1/billing/clients"]


def test_clients_that_carry_no_label_are_a_configuration_error() -> None:
    app = flowpayroll_app()
    inner = app.transport()

    def unlabelled(request: httpx.Request) -> httpx.Response:
        response = inner.handle_request(request)
        if request.url.path != "/v1/billing/clients":
            return response
        body = simplejson.loads(response.read())
        for client in body["content"]["data"]["clients"]:
            client.pop("organisationId", None)
        return httpx.Response(200, json=body)

    api, account = account_of(FLOWPAYROLL, app, httpx.MockTransport(unlabelled))
    with pytest.raises(ConfigurationError, match="the API returned nothing to label this account's rows with"):
        run(api, account, {})


# --- lookups ----------------------------------------------------------------------------------


def test_a_lookup_is_fetched_once_a_run_and_only_when_a_mapping_asks() -> None:
    app = fohlio_app()
    transport = Recording(app.transport())
    api, account = account_of(FOHLIO, app, transport, per_page=5, concurrency=4)
    states: dict[str, Any] = {}
    first = run(api, account, states)
    assert len(transport.sent("/client_invoices")) >= 12
    assert len(transport.sent("/team")) == 1
    assert len(first.ids()) == len(app.team.invoices) + 1

    transport.events.clear()
    run(api, account, states)  # nothing changed: nothing mapped, nothing looked up
    assert transport.sent("/team") == []


def test_a_lookup_the_api_does_not_have_is_read_as_empty_once() -> None:
    app = fohlio_app(fixtures=False)
    app.inject("status", "/team", status=404, times=None)
    transport = Recording(app.transport())
    api, account = account_of(FOHLIO, app, transport)
    ran = run(api, account, {})
    assert len(transport.sent("/team")) == 1
    assert len(ran.ids()) == len(app.team.invoices)  # every currency from the client or the fallback
    eur_project = next(p.id for p in app.team.projects.values() if p.currency == "EUR")
    project_rows = [
        r for r in ran.rows("invoices") if app.team.invoices[int(r["invoice_id"])].project_id == eur_project
    ]
    assert project_rows and {inputs(r)["lookups"]["projects"]["missing"][0] for r in project_rows} == {str(eur_project)}


# --- what the mapping read --------------------------------------------------------------------


def test_mapping_inputs_keep_the_page_formats_a_flow_payroll_record_was_read_with() -> None:
    app = flowpayroll_app(date_format="dd/MM/yyyy", datetime_format="dd/MM/yyyy HH:mm:ss", metadata_at="top")
    api, account = account_of(FLOWPAYROLL, app)
    ran = run(api, account, {})
    page = {"date": "dd/MM/yyyy", "date_time": "dd/MM/yyyy HH:mm:ss"}
    assert {str(inputs(r)) for r in ran.rows("invoices")} == {str({"page": page})}
    assert {str(inputs(r)) for r in ran.rows("clients")} == {str({"page": page})}
    invoice = next(iter(app.invoices.values()))
    row = next(r for r in ran.rows("invoices") if r["invoice_id"] == invoice["id"])
    assert row["issue_date"] == invoice["date"]
    assert row["updated_at"] == invoice["updatedDate"].replace(microsecond=0)
    assert dt.date.strftime(invoice["date"], "%d/%m/%Y") in row["raw"]


def test_mapping_inputs_keep_the_project_currency_a_fohlio_invoice_was_priced_with() -> None:
    app = fohlio_app(fixtures=False)
    api, account = account_of(FOHLIO, app)
    ran = run(api, account, {})
    for project in app.team.projects.values():
        rows = [r for r in ran.rows("invoices") if app.team.invoices[int(r["invoice_id"])].project_id == project.id]
        read = {str(inputs(r)["lookups"]["projects"]) for r in rows}
        if project.currency:
            assert read == {str({"values": {str(project.id): project.currency}})}
            assert {r["currency"] for r in rows} == {project.currency}
        else:
            assert read == {str({"missing": [str(project.id)]})}
    assert {inputs(r)["options"]["values"]["currency"] for r in ran.rows("invoices")} == {"USD"}
    assert {r["_mapping_inputs"] for r in ran.rows("clients")} == {None}


def test_mapping_inputs_are_empty_where_the_mapping_reads_only_its_record() -> None:
    app = invoicexpress_app(clients=3, requests_per_minute=None)
    api, account = account_of(INVOICEXPRESS, app)
    ran = run(api, account, {})
    assert ran.rows("invoices") and ran.rows("clients")
    assert {r["_mapping_inputs"] for r in ran.rows("invoices") + ran.rows("clients")} == {None}
