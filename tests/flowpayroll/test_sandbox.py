"""The Flow Payroll sandbox behaves as documented, seen with plain httpx over real HTTP."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from sandbox.flowpayroll import FlowPayrollSandbox, create_app
from sandbox.flowpayroll.data import last_day
from sandbox.server import SandboxServer
from sources.shared.values import loads
from tests.support import serve


class Session:
    """A sandbox on loopback with a helper for authenticated calls."""

    def __init__(self, app: FlowPayrollSandbox, server: SandboxServer) -> None:
        self.app, self.server = app, server
        env = app.pipeline_env(server.url)
        self.base, self.token_url = env["SOURCES__FLOWPAYROLL__BASE_URL"], env["SOURCES__FLOWPAYROLL__TOKEN_URL"]
        self.http = httpx.Client(timeout=10)

    def token(self, **form: str) -> httpx.Response:
        body = {
            "grant_type": "client_credentials",
            "client_id": self.app.client_id,
            "client_secret": self.app.client_secret,
            **form,
        }
        return self.http.post(self.token_url, data=body)

    def get(self, path: str, token: str | None = None, **params: Any) -> httpx.Response:
        headers = {"X-Auth-Token": token} if token else {}
        return self.http.get(self.base + path, params=params, headers=headers)

    def body(self, response: httpx.Response) -> Any:
        return loads(response.content)

    def fresh_token(self) -> str:
        return str(self.token().json()["access_token"])


@pytest.fixture
def session(request: pytest.FixtureRequest) -> Iterator[Session]:
    options = getattr(request, "param", {})
    app = create_app(**options)
    with serve(app) as server:
        yield Session(app, server)


def test_token_endpoint(session: Session) -> None:
    response = session.token()
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "Bearer" and body["expires_in"] == 3600 and body["access_token"]


def test_token_endpoint_refuses_wrong_secret_json_body_and_other_grants(session: Session) -> None:
    wrong = session.token(client_secret="nope")
    assert (wrong.status_code, wrong.json()["error"]) == (401, "invalid_client")
    assert session.token(grant_type="password").status_code == 400
    as_json = session.http.post(
        session.token_url,
        json={
            "grant_type": "client_credentials",
            "client_id": session.app.client_id,
            "client_secret": session.app.client_secret,
        },
    )
    assert as_json.status_code == 400


def test_token_is_required_raw_in_x_auth_token(session: Session) -> None:
    token = session.fresh_token()
    missing = session.get("/clients")
    assert missing.status_code == 401
    assert missing.json()["message"]["token"] == "authTokenMissing"
    bearer = session.http.get(session.base + "/clients", headers={"Authorization": f"Bearer {token}"})
    assert bearer.status_code == 401
    assert session.get("/clients", token="made-up").json()["message"]["token"] == "authTokenInvalid"
    assert session.get("/clients", token=token).status_code == 200


def test_expired_tokens_are_refused(session: Session) -> None:
    token = session.fresh_token()
    session.app.expire_tokens()
    expired = session.get("/clients", token=token)
    assert (expired.status_code, expired.json()["message"]["token"]) == (401, "authTokenExpired")
    assert session.get("/clients", token=session.fresh_token()).status_code == 200


@pytest.mark.parametrize("session", [{"expires_in": 1}], indirect=True)
def test_tokens_expire_after_expires_in(session: Session) -> None:
    response = session.token()
    assert response.json()["expires_in"] == 1
    token = response.json()["access_token"]
    assert session.get("/clients", token=token).status_code == 200
    time.sleep(1.1)
    assert session.get("/clients", token=token).status_code == 401


def test_envelope_and_metadata(session: Session) -> None:
    body = session.body(session.get("/clients", token=session.fresh_token()))
    assert body["content"]["metadata"] == {"dateFormat": "yyyy-MM-dd", "dateTimeFormat": "yyyy-MM-dd'T'HH:mm:ss.fffZ"}
    clients = body["content"]["data"]["clients"]
    assert len(clients) == 6 + 1  # and the published example's client
    assert body["content"]["data"]["hasMorePages"] is False
    assert clients[0]["createdDate"].endswith("Z") and len(clients[0]["createdDate"]) == 24
    assert not any(key.startswith("_") for key in clients[0])


@pytest.mark.parametrize(
    "session",
    [{"date_format": "dd/MM/yyyy", "datetime_format": "dd/MM/yyyy HH:mm:ss", "metadata_at": "top"}],
    indirect=True,
)
def test_announced_formats_are_used(session: Session) -> None:
    token = session.fresh_token()
    client_id = next(iter(session.app.clients))
    body = session.body(session.get(f"/clients/{client_id}/invoices", token=token))
    assert "metadata" not in body["content"]
    assert body["metadata"]["dateFormat"] == "dd/MM/yyyy"
    invoice = body["content"]["data"]["invoices"][0]
    seeded = session.app.invoices[invoice["id"]]
    assert invoice["date"] == seeded["date"].strftime("%d/%m/%Y")
    assert invoice["updatedDate"] == seeded["updatedDate"].strftime("%d/%m/%Y %H:%M:%S")


def test_invoices_page_with_opaque_tokens(session: Session) -> None:
    token = session.fresh_token()
    client_id = next(iter(session.app.clients))
    seen, tokens, pagination = [], [], None
    while True:
        params: dict[str, Any] = {"pageSize": 2}
        if pagination:
            params["paginationToken"] = pagination
        data = session.body(session.get(f"/clients/{client_id}/invoices", token=token, **params))["content"]["data"]
        assert data["pageSize"] == 2
        seen += [i["id"] for i in data["invoices"]]
        if not data["hasMorePages"]:
            assert data["paginationToken"] is None
            break
        pagination = data["paginationToken"]
        assert not pagination.isdigit() and len(pagination) >= 16  # not a readable offset
        tokens.append(pagination)
    assert seen == [i["id"] for i in session.app.invoices_of(client_id)]
    assert len(set(tokens)) == len(tokens) == 2


def test_unknown_pagination_token_is_a_400_with_the_billing_error_envelope(session: Session) -> None:
    client_id = next(iter(session.app.clients))
    response = session.get(f"/clients/{client_id}/invoices", token=session.fresh_token(), paginationToken="forged")
    assert response.status_code == 400
    error = response.json()["errors"][0]
    assert (error["field"], error["reasonId"]) == ("paginationToken", "invalidPaginationToken")
    assert response.json()["message"]["textId"] == "invalidPaginationToken"


def test_not_found_within_the_organisation(session: Session) -> None:
    token = session.fresh_token()
    other_org_client = next(iter(session.app.organisations_other))
    response = session.get(f"/clients/{other_org_client}/invoices", token=token)
    assert response.status_code == 404
    assert response.json()["errors"][0]["reasonId"] == "clientNotFound"
    assert session.get("/clients/nope", token=token).status_code == 404


@pytest.mark.parametrize("session", [{"requests_per_minute": 3}], indirect=True)
def test_budget_answers_429_without_retry_after(session: Session) -> None:
    token = session.fresh_token()
    statuses = [session.get("/clients", token=token) for _ in range(5)]
    assert [r.status_code for r in statuses] == [200, 200, 200, 429, 429]
    assert "retry-after" not in statuses[-1].headers
    assert statuses[-1].json()["message"]["token"] == "tooManyRequests"


def test_void_and_update_endpoints(session: Session) -> None:
    token = session.fresh_token()
    open_invoice = next(
        i for i in session.app.invoices.values() if i["balanceDue"] > 0 and i["externalProviderStatus"] != "DRAFT"
    )
    path = f"{session.base}/invoices/{open_invoice['clientId']}/{open_invoice['id']}"
    before = open_invoice["updatedDate"]
    updated = session.http.put(path, json={"reference": "PO 778"}, headers={"X-Auth-Token": token})
    assert updated.status_code == 200
    assert updated.json()["content"]["data"]["invoice"]["reference"] == "PO 778"
    voided = session.http.post(path + "/void", headers={"X-Auth-Token": token})
    invoice = voided.json()["content"]["data"]["invoice"]
    assert (invoice["externalProviderStatus"], invoice["balanceDue"]) == ("VOIDED", 0)
    assert open_invoice["updatedDate"] > before
    closed = session.http.put(path, json={"reference": "again"}, headers={"X-Auth-Token": token})
    assert (closed.status_code, closed.json()["errors"][0]["reasonId"]) == (400, "invoiceClosed")


def test_line_items_endpoint(session: Session) -> None:
    invoice = next(iter(session.app.invoices.values()))
    response = session.get(f"/invoices/{invoice['clientId']}/{invoice['id']}/line-items", token=session.fresh_token())
    data = session.body(response)["content"]["data"]
    assert [li["id"] for li in data["lineItems"]] == [li["id"] for li in invoice["lineItems"]]


def test_seeded_data_is_varied(session: Session) -> None:
    published = session.app.published
    invoices = [i for i in session.app.invoices.values() if i["id"] not in published]
    assert {i["currencyCode"] for i in invoices} == {"GBP", "EUR"}
    assert any(i["externalProviderStatus"] == "VOIDED" for i in invoices)
    assert any(i["externalProviderStatus"] == "DRAFT" for i in invoices)
    assert any(i["appliedCredits"] for i in invoices)
    assert any(i["balanceDue"] == 0 and i["externalProviderStatus"] == "PAID" for i in invoices)
    assert any(0 < i["balanceDue"] < i["amount"] and not i["appliedCredits"] for i in invoices)
    assert any(i["balanceDue"] == i["amount"] and i["externalProviderStatus"] != "DRAFT" for i in invoices)
    assert all(len(i["lineItems"]) >= 2 for i in invoices)
    assert any(li["taxAmount"] > 0 for i in invoices for li in i["lineItems"])
    for i in invoices:
        assert i["amount"] == i["subTotal"] + i["totalTax"]
        assert i["subTotal"] == sum(li["lineAmount"] for li in i["lineItems"])
        assert all(isinstance(li["lineAmount"], Decimal) for li in i["lineItems"])
    assert any(not session.app.invoices_of(c) for c in session.app.clients)
    summary = session.app.summary()
    assert summary["invoices"] == len(invoices) + 1 and set(summary["totals"]) == {"EUR", "GBP"}


def test_the_published_skeleton_is_served_as_one_more_clients_invoice(session: Session) -> None:
    [invoice_id] = session.app.published
    seeded = session.app.invoices[invoice_id]
    token = session.fresh_token()
    body = session.body(session.get(f"/clients/{seeded['clientId']}/invoices", token=token))
    [invoice] = body["content"]["data"]["invoices"]
    assert invoice["id"] == invoice_id and invoice["currencyCode"] == "GBP"
    assert (invoice["amount"], invoice["subTotal"], invoice["balanceDue"]) == (123, 123, 123)  # as published
    assert invoice["date"] == "2023-11-07" and invoice["createdDate"] == "2023-11-07T05:31:56.250Z"
    assert invoice["invoiceNumber"] == "<string>" and invoice["lineItems"][0]["invoiceId"] == invoice_id
    bare = create_app(fixtures=False)
    assert not bare.published and len(bare.clients) == len(session.app.clients) - 1


def _generated(app: FlowPayrollSandbox) -> list[dict[str, Any]]:
    return [*app.clients.values(), *(i for i in app.invoices.values() if i["id"] not in app.published)]


def test_today_moves_every_generated_date_so_that_the_last_is_the_day_before() -> None:
    today = dt.date(2031, 5, 20)
    before, after = create_app(), create_app(today=today)
    last_before, last_after = last_day(_generated(before)), last_day(_generated(after))
    assert last_before and last_after == today - dt.timedelta(days=1)
    for old, new in zip(before.invoices.values(), after.invoices.values(), strict=True):
        moved = dt.timedelta(0) if old["id"] in before.published else last_after - last_before  # published: as is
        assert (new["id"], new["amount"], new["lineItems"][0]["id"]) == (
            old["id"],
            old["amount"],
            old["lineItems"][0]["id"],
        )
        assert {new[k] - old[k] for k in ("date", "dueDate", "createdDate", "updatedDate")} == {moved}
