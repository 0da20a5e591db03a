"""The sandbox framework itself: routing, pagers, auth schemes, rate limits, faults, the mutation
API and the in-process transport, on a tiny app and on the provider sandboxes."""

from __future__ import annotations

import datetime as dt
import random
import time
from typing import Any

import httpx
import pytest

from sandbox import flowpayroll, fohlio, invoicexpress, kitchen
from sandbox.framework import (
    NOW,
    App,
    ClientCredentials,
    FixedWindow,
    HeaderKey,
    QueryKey,
    Replay,
    Request,
    Response,
    SlidingWindow,
    TokenPager,
    days_until,
    json_response,
    laravel_page,
    page_number_meta,
    page_of,
    route,
)
from sandbox.server import SandboxServer


class Tiny(App):
    """A minimal app: two routes, a header key and a sliding window."""

    name = "kitchen"  # any provider: only its configuration key names are borrowed

    def __init__(self, limit: int | None = None) -> None:
        super().__init__()
        self.auth = HeaderKey("X-Key", "k", ("", "Token"))
        self.budget = SlidingWindow(limit, 60)

    def guard(self, request: Request, route: Any) -> Response | None:
        if self.auth(request) is None:
            return json_response({"error": "auth"}, 401)
        if self.budget.check("k") is not None:
            return json_response({"error": "slow down"}, 429)
        return None

    @route("GET", "/things/{thing}/parts/{part}")
    def part(self, request: Request, thing: str, part: str) -> Response:
        return json_response({"thing": thing, "part": part, "q": request.arg("q")})

    @route("POST", "/things")
    def create(self, request: Request) -> Response:
        return json_response({"made": request.json()}, 201)

    @route("GET", "/open", public=True)
    def open(self, request: Request) -> Response:
        return json_response({"open": True})

    def config(self, base_url: str) -> dict[str, str | None]:
        return {"base_url": base_url, "api_key": "k", "state": None}


def client(app: App, **options: Any) -> httpx.Client:
    return httpx.Client(transport=app.transport(), base_url="http://sandbox", **options)


def test_routes_match_method_and_pattern_and_pass_params() -> None:
    with client(Tiny(), headers={"X-Key": "k"}) as http:
        assert http.get("/things/a1/parts/b%202", params={"q": "x"}).json() == {
            "thing": "a1",
            "part": "b%202",
            "q": "x",
        }
        assert http.post("/things", json={"n": 1}).status_code == 201
        assert http.get("/things").status_code == 404  # no GET route on that path
        assert http.get("/things/a/parts/b/c").status_code == 404
    assert [r.pattern for r in Tiny.routes] == ["/things/{thing}/parts/{part}", "/things", "/open"]


def test_the_guard_runs_before_routing_except_on_public_routes() -> None:
    with client(Tiny()) as http:
        assert http.get("/nowhere").status_code == 401
        assert http.get("/open").json() == {"open": True}
        assert http.get("/things/a/parts/b", headers={"X-Key": "Token k"}).status_code == 200
        assert http.get("/things/a/parts/b", headers={"X-Key": "Bearer k"}).status_code == 401


def test_pipeline_env_uses_the_providers_own_key_names() -> None:
    assert Tiny().pipeline_env("http://h") == {
        "SOURCES__KITCHEN__BASE_URL": "http://h",
        "SOURCES__KITCHEN__API_KEY": "k",
    }


def test_a_handler_error_is_a_500_and_every_request_is_logged() -> None:
    app = Tiny()
    app.part = None  # type: ignore[assignment,method-assign]
    with client(app, headers={"X-Key": "k"}) as http:
        response = http.get("/things/a/parts/b")
    assert response.status_code == 500 and "sandbox error" in response.json()["error"]
    assert [(e.method, e.path, e.status) for e in app.log.entries()] == [("GET", "/things/a/parts/b", 500)]


# --- pagers ---------------------------------------------------------------------------------------


def test_page_number_pager() -> None:
    assert list(page_of(range(25), 3, 10)) == list(range(20, 25)) and not page_of(list(range(25)), 4, 10)
    assert page_number_meta(25, 3, 10) == {"total_entries": 25, "current_page": 3, "total_pages": 3, "per_page": 10}
    assert page_number_meta(0, 1, 10)["total_pages"] == 0  # an empty listing, as the legacy XML writes it


def test_token_pager_remembers_opaque_tokens_per_scope() -> None:
    pager, rows = TokenPager(), list(range(5))
    first, token = pager.page("a", rows, None, 2)
    assert list(first) == [0, 1] and token and not token.isdigit()
    second, token2 = pager.page("a", rows, token, 2)
    third, end = pager.page("a", rows, token2, 2)
    assert (list(second), list(third), end) == ([2, 3], [4], None)
    with pytest.raises(KeyError):
        pager.page("b", rows, token, 2)  # another listing's token
    repeating = TokenPager(repeat=True)
    _, t = repeating.page("a", rows, None, 1)
    assert repeating.page("a", rows, t, 1)[1] == t


def test_laravel_pager_links_and_meta() -> None:
    chunk, body = laravel_page(list(range(45)), 3, 20, links="/x/", meta="/x")
    assert list(chunk) == list(range(40, 45))
    assert body["links"] == {"first": "/x/?page=1", "last": "/x/?page=3", "prev": "/x/?page=2", "next": None}
    meta = body["meta"]
    assert (meta["from"], meta["to"], meta["total"], meta["last_page"]) == (41, 45, 45, 3)
    assert [link["label"] for link in meta["links"]] == ["« Previous", "1", "2", "3", "Next »"]
    assert [link["active"] for link in meta["links"]] == [False, False, False, True, False]


# --- auth and rate limits ------------------------------------------------------------------------


def test_query_and_header_keys() -> None:
    def req(query: dict[str, list[str]] | None = None, **headers: str) -> Request:
        return Request("GET", "/", query or {}, headers)

    assert QueryKey("api_key", "s")(req({"api_key": ["s"]})) == "s"
    assert QueryKey("api_key", "s")(req({"api_key": ["t"]})) is None
    bearer = HeaderKey("Authorization", "s", ("Bearer",))
    assert bearer(req(authorization="Bearer s")) == "s" and bearer(req(authorization="s")) is None
    assert bearer(req()) is None


def test_client_credentials_issue_tokens_that_expire() -> None:
    oauth = ClientCredentials("id", "secret", 1, "X-Auth-Token")
    form = {"content-type": "application/x-www-form-urlencoded"}
    body = b"grant_type=client_credentials&client_id=id&client_secret=secret"
    issued = oauth.token_endpoint(Request("POST", "/t", {}, form, body))
    token = httpx.Response(200, content=issued.body).json()["access_token"]
    assert oauth.check(Request("GET", "/", {}, {"x-auth-token": token})) == "ok"
    assert oauth.check(Request("GET", "/", {}, {})) == "missing"
    assert oauth.check(Request("GET", "/", {}, {"x-auth-token": "forged"})) == "invalid"
    wrong = oauth.token_endpoint(Request("POST", "/t", {}, form, body.replace(b"secret", b"nope")))
    assert wrong.status == 401 and oauth.token_endpoint(Request("GET", "/t", {}, {})).status == 405
    time.sleep(1.05)
    assert oauth.check(Request("GET", "/", {}, {"x-auth-token": token})) == "expired"


def test_sliding_and_fixed_windows() -> None:
    sliding = SlidingWindow(2, 0.3)
    assert [sliding.check("k") is None for _ in range(3)] == [True, True, False]
    time.sleep(0.35)
    assert sliding.check("k") is None and SlidingWindow(None).check("k") is None
    fixed = FixedWindow(2, 60)
    assert [fixed.hit("k")[1]["X-RateLimit-Remaining"] for _ in range(2)] == ["1", "0"]
    allowed, headers = fixed.hit("k")
    assert not allowed and 1 <= int(headers["Retry-After"]) <= 60 and headers["X-RateLimit-Remaining"] == "0"
    assert fixed.hit("other")[0]


def test_rate_limit_through_the_transport() -> None:
    with client(Tiny(limit=2), headers={"X-Key": "k"}) as http:
        assert [http.get("/things/a/parts/b").status_code for _ in range(3)] == [200, 200, 429]


# --- faults ---------------------------------------------------------------------------------------


@pytest.fixture
def ix() -> tuple[invoicexpress.InvoiceXpressSandbox, httpx.Client]:
    app = invoicexpress.create_app(clients=3)
    return app, client(app, params={"api_key": app.api_key}, timeout=0.5)


def test_status_fault_then_the_real_answer(ix: Any) -> None:
    app, http = ix
    app.inject("status", "/clients.json", status=503, times=2)
    assert [http.get("/clients.json").status_code for _ in range(3)] == [503, 503, 200]
    app.inject("status", None, status=500, body={"boom": 1}, after=1)
    assert http.get("/clients.json").status_code == 200
    broken = http.get("/clients.json")
    assert (broken.status_code, broken.json()) == (500, {"boom": 1})
    assert app.log.count(status=503) == 2


def test_truncated_and_not_json_bodies(ix: Any) -> None:
    app, http = ix
    whole = http.get("/clients.json").content
    app.inject("truncate", "/clients.json")
    cut = http.get("/clients.json").content
    assert cut == whole[: len(whole) // 2]
    app.inject("not_json", method="POST")
    page = http.post("/clients/1310176/invoices.json")
    assert page.headers["content-type"].startswith("text/html") and page.text.startswith("<html>")


def test_slow_and_silent_answers(ix: Any) -> None:
    app, http = ix
    app.inject("slow", "/clients.json", seconds=0.2)
    started = time.monotonic()
    assert http.get("/clients.json").status_code == 200 and time.monotonic() - started >= 0.2
    app.inject("silent", "/clients.json")
    with pytest.raises(httpx.ReadTimeout):
        http.get("/clients.json")
    assert http.get("/clients.json").status_code == 200


def test_silent_answer_on_a_socket_times_the_client_out(ix: Any) -> None:
    app, _ = ix
    app.inject("silent", "/clients.json")
    with SandboxServer(app) as server:
        with pytest.raises(httpx.ReadTimeout):
            httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key}, timeout=0.3)
        assert httpx.get(f"{server.url}/clients.json", params={"api_key": app.api_key}).status_code == 200


def test_a_repeated_page(ix: Any) -> None:
    app, http = ix
    app.inject("repeat", "/clients.json", after=1)
    first = http.get("/clients.json", params={"per_page": 1}).json()
    again = http.get("/clients.json", params={"per_page": 1, "page": 2}).json()
    assert again == first and http.get("/clients.json", params={"page": 2, "per_page": 1}).json() != first


def test_unknown_fault_kind() -> None:
    with pytest.raises(ValueError):
        Tiny().inject("gremlins")


# --- the transport and the socket serve the same ---------------------------------------------------


@pytest.mark.parametrize("provider", [invoicexpress, flowpayroll, kitchen, fohlio])
def test_transport_and_socket_answer_alike(provider: Any) -> None:
    app = provider.create_app()
    path, headers = {
        "invoicexpress": (f"/clients.json?api_key={app.__dict__.get('api_key')}", {}),
        "flowpayroll": ("/v1/billing/clients", {}),
        "kitchen": ("/api/invoices?state=all&per_page=7", {"Authorization": f"Bearer {app.__dict__.get('api_key')}"}),
        "fohlio": ("/client_invoices?per_page=9", {"authorization": app.__dict__.get("api_key", "")}),
    }[app.name]
    with SandboxServer(app) as server:
        over_socket = httpx.get(server.url + path, headers=headers)
    in_process = client(app).get(path, headers=headers)
    assert (over_socket.status_code, over_socket.content) == (in_process.status_code, in_process.content)
    assert [e.path for e in app.log.entries()] == [path.split("?")[0]] * 2


# --- the shared mutation API --------------------------------------------------------------------


def test_every_provider_has_the_same_mutation_api() -> None:
    ix_app = invoicexpress.create_app(clients=3, invoices_per_client=4)
    fp_app = flowpayroll.create_app()
    kt_app = kitchen.create_app()
    fo_app = fohlio.create_app()
    invoice_ids = {
        ix_app: 1_000_001,
        fp_app: next(iter(fp_app.invoices)),
        kt_app: kt_app.invoices[0]["id"],
        fo_app: 30003,
    }
    client_ids = {ix_app: 1310177, fp_app: next(iter(fp_app.clients)), kt_app: kt_app.clients[0]["id"], fo_app: 502}
    for app, invoice_id in invoice_ids.items():
        before = app.summary()
        field = {ix_app: "observations", fp_app: "reference", kt_app: "memo", fo_app: "note"}[app]
        app.update_invoice(invoice_id, **{field: "changed"})
        app.remove_line(invoice_id)
        assert app.summary()["lines"] == before["lines"] - 1, app.name
        app.delete_invoice(invoice_id)
        assert app.summary()["invoices"] == before["invoices"] - 1, app.name
        added = app.add_invoice(client_ids[app])
        assert added and app.summary()["invoices"] == before["invoices"], app.name
        app.update_client(client_ids[app], name="Renamed")
        new_client = app.add_client(name="Brand new")
        assert new_client and app.summary()["clients"] == before["clients"] + 1, app.name
        app.delete_client(new_client)
        assert app.summary()["clients"] == before["clients"], app.name


def test_now_stands_for_the_sandbox_clock() -> None:
    app = kitchen.create_app()
    invoice_id = app.invoices[3]["id"]
    app.update_invoice(invoice_id, archived_at=NOW)
    shown = app.invoice(invoice_id)
    assert shown["archived_at"] == shown["updated_at"] > app.invoices[2]["updated_at"]


def test_a_deleted_client_can_stay_listed() -> None:
    app = invoicexpress.create_app(clients=3, invoices_per_client=2, fixtures=False)
    app.delete_client(1310177, listed=True)
    http = client(app, params={"api_key": app.api_key})
    assert len(http.get("/clients.json").json()["clients"]) == 3
    assert http.post("/clients/1310177/invoices.json").status_code == 404
    assert app.summary()["invoices"] == 4
    app.delete_client(1310178)
    assert len(http.get("/clients.json").json()["clients"]) == 2


# --- records made on demand, values derived until a mutation ------------------------------------


def _make(rng: random.Random, n: int, total: int) -> tuple[dict[str, Any], int]:
    """A record that depends on every draw before it (the running `total`), as the providers' generators do."""
    total += rng.randint(1, 9)
    return {"n": n, "total": total, "tag": f"{rng.getrandbits(32):08x}"}, total


def test_a_replay_makes_each_record_again_exactly_as_first_made() -> None:
    rng, total, straight = random.Random(7), 0, []
    for n in range(300):
        record, total = _make(rng, n, total)
        straight.append(record)
    observed: list[dict[str, Any]] = []
    replay = Replay(_make, random.Random(7), 300, 0, lambda n, r: observed.append(r), every=16, cached=2)
    assert observed == straight
    assert [replay.peek(n) for n in reversed(range(300))] == straight[::-1]  # backwards, past the cache
    assert replay.held == {}


def test_a_held_record_is_kept_as_changed() -> None:
    replay = Replay(_make, random.Random(7), 100, 0, every=8, cached=1)
    held = replay.hold(42)
    held["tag"] = "changed"
    for n in range(100):  # every chunk made again, the held record's among them
        replay.peek(n)
    assert replay.peek(42) is held and replay.hold(42)["tag"] == "changed"
    replay.release(42)
    assert replay.peek(42)["tag"] != "changed"


def test_derived_values_are_kept_until_a_mutation_or_their_basis_changes() -> None:
    app = kitchen.create_app(invoices=6, fixtures=False)
    calls: list[int] = []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert app.derived("k", compute) == app.derived("k", compute) == 1
    assert app.derived("k", compute, basis="other") == 2
    app.update_invoice(app.invoices[0]["id"], memo="changed")
    assert app.derived("k", compute, basis="other") == 3


def test_days_until_moves_the_last_day_onto_today() -> None:
    assert days_until(None, dt.date(2023, 5, 1)) == dt.timedelta(0)
    assert dt.date(2023, 5, 1) + days_until(dt.date(2026, 2, 3), dt.date(2023, 5, 1)) == dt.date(2026, 2, 3)
