"""OAuth client credentials: lazy fetch, cache, renewal before expiry, one renewal after a 401.

Exercised with Flow Payroll's declaration (its token travels raw in `X-Auth-Token`, its error
envelopes are its own), the one provider that declares this scheme today."""

from __future__ import annotations

import threading
from urllib.parse import parse_qs

import httpx
import pytest

from sources.flowpayroll.api import error_message
from sources.shared.auth import ClientCredentialsAuth
from sources.shared.errors import AuthenticationError
from sources.shared.http import ApiClient, RetryPolicy
from sources.shared.provider import config_hint
from sources.shared.redact import redact

TOKEN_URL = "https://auth.test/oauth2/token"
SECRET = "s3cret-value-for-tests"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TokenServer:
    """Answers the token endpoint with numbered tokens and records the forms it received."""

    def __init__(self, expires_in: int = 3600, status: int = 200) -> None:
        self.expires_in, self.status = expires_in, status
        self.forms: list[dict[str, list[str]]] = []
        self.content_types: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.forms.append(parse_qs(request.content.decode()))
        self.content_types.append(request.headers.get("content-type", ""))
        if self.status != 200:
            return httpx.Response(self.status, json={"error": "invalid_client"})
        return httpx.Response(
            200,
            json={
                "access_token": f"token-{len(self.forms)}-abcdef",
                "expires_in": self.expires_in,
                "token_type": "Bearer",
            },
        )


def make_auth(server: TokenServer, clock: Clock | None = None) -> ClientCredentialsAuth:
    token_client = ApiClient(
        "flowpayroll",
        "",
        TOKEN_URL,
        transport=httpx.MockTransport(server),
        auth_hint=config_hint("flowpayroll", ["client_id", "client_secret"]),
        error_message=error_message,
    )
    return ClientCredentialsAuth(
        token_client, TOKEN_URL, "my-client", SECRET, header="X-Auth-Token", scheme=None, clock=clock or Clock()
    )


def header_of(auth: ClientCredentialsAuth) -> str:
    return auth.apply(httpx.Request("GET", "https://api.test/v1/billing/clients")).headers["X-Auth-Token"]


def test_token_is_fetched_lazily_with_a_form_post_and_sent_raw() -> None:
    server = TokenServer()
    auth = make_auth(server)
    assert server.forms == []
    request = auth.apply(httpx.Request("GET", "https://api.test/v1/billing/clients"))
    assert request.headers["X-Auth-Token"] == "token-1-abcdef"
    assert "Authorization" not in request.headers
    assert server.forms == [
        {"grant_type": ["client_credentials"], "client_id": ["my-client"], "client_secret": [SECRET]}
    ]
    assert server.content_types[0].startswith("application/x-www-form-urlencoded")


def test_token_is_cached() -> None:
    server = TokenServer()
    auth = make_auth(server)
    assert {header_of(auth) for _ in range(50)} == {"token-1-abcdef"}
    assert len(server.forms) == 1


def test_token_is_renewed_when_ten_percent_of_its_lifetime_remains() -> None:
    server, clock = TokenServer(expires_in=1000), Clock()
    auth = make_auth(server, clock)
    assert header_of(auth) == "token-1-abcdef"
    clock.now += 899
    assert header_of(auth) == "token-1-abcdef"
    clock.now += 2
    assert header_of(auth) == "token-2-abcdef"
    assert len(server.forms) == 2


def test_renew_forces_a_new_token_once_per_refused_token() -> None:
    server = TokenServer()
    auth = make_auth(server)
    assert header_of(auth) == "token-1-abcdef"
    assert auth.renew() is True
    assert header_of(auth) == "token-2-abcdef"

    # A second thread that sent token-2 meets its 401 after the first thread already replaced
    # token-2 with token-3: it reuses token-3 instead of fetching a fourth token.
    sent, replaced = threading.Event(), threading.Event()
    seen: list[str] = []

    def second_thread() -> None:
        seen.append(header_of(auth))
        sent.set()
        replaced.wait(5)
        auth.renew()
        seen.append(header_of(auth))

    worker = threading.Thread(target=second_thread)
    worker.start()
    sent.wait(5)
    auth.renew()
    replaced.set()
    worker.join()
    assert seen == ["token-2-abcdef", "token-3-abcdef"]
    assert len(server.forms) == 3


def test_tokens_and_secret_are_redacted() -> None:
    server = TokenServer()
    auth = make_auth(server)
    token = header_of(auth)
    assert redact(f"x {token} {SECRET}") == "x *** ***"


def test_refused_credentials_fail_with_the_keys_to_fix() -> None:
    auth = make_auth(TokenServer(status=401))
    with pytest.raises(AuthenticationError) as caught:
        header_of(auth)
    message = str(caught.value)
    assert "flowpayroll" in message and "client_secret" in message
    assert "SOURCES__FLOWPAYROLL__CLIENT_SECRET" in message
    assert SECRET not in message


class Api:
    """A Billing endpoint that refuses the first `refusals` calls with 401."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.tokens: list[str] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.tokens.append(request.headers.get("X-Auth-Token", ""))
        if len(self.tokens) <= self.refusals:
            return httpx.Response(401, json={"message": {"text": "Token expired", "token": "authTokenExpired"}})
        return httpx.Response(200, json={"content": {"data": {"clients": []}}})


def client_with(api: Api, server: TokenServer) -> ApiClient:
    auth = make_auth(server)
    return ApiClient(
        "flowpayroll",
        "org",
        "https://api.test/v1/billing",
        auth=auth,
        transport=httpx.MockTransport(api),
        retry=RetryPolicy(attempts=2, base_delay=0),
    )


def test_a_401_renews_the_token_once_and_retries() -> None:
    api, server = Api(refusals=1), TokenServer()
    response = client_with(api, server).get("/clients")
    assert response.status == 200
    assert api.tokens == ["token-1-abcdef", "token-2-abcdef"]
    assert len(server.forms) == 2


def test_a_second_401_fails_clearly() -> None:
    api, server = Api(refusals=5), TokenServer()
    with pytest.raises(AuthenticationError) as caught:
        client_with(api, server).get("/clients")
    assert api.tokens == ["token-1-abcdef", "token-2-abcdef"]
    assert "authTokenExpired" in str(caught.value)
    assert "token-2-abcdef" not in str(caught.value)
