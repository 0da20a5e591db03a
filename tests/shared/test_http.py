import email.utils
import time

import httpx
import pytest

from sources.shared.auth import HeaderAuth, QueryParamAuth
from sources.shared.errors import (
    AuthenticationError,
    HttpStatusError,
    MalformedResponseError,
    NotFoundError,
    UnreachableError,
)
from sources.shared.http import ApiClient, RetryPolicy, parse_retry_after
from sources.shared.redact import redact

SECRET = "sk-live-9f8e7d6c5b4a"


class Script:
    """A scripted API: each call pops the next response (or exception) and records the request."""

    def __init__(self, *steps):
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps.pop(0)
        if isinstance(step, Exception):
            raise step
        return step


def make_client(script: Script, sleeps: list, **kwargs) -> ApiClient:
    return ApiClient(
        "acmepay",
        "acme",
        "https://api.example.test",
        auth=kwargs.pop("auth", QueryParamAuth("api_key", SECRET)),
        auth_hint="set SOURCES__ACMEPAY__API_KEY",
        transport=httpx.MockTransport(script),
        retry=RetryPolicy(attempts=4, base_delay=1.0, max_delay=8.0, jitter=0.0),
        sleep=sleeps.append,
        **kwargs,
    )


def test_429_and_5xx_are_retried_with_exponential_backoff():
    script = Script(httpx.Response(429), httpx.Response(503), httpx.Response(200, json={"ok": 1.5}))
    sleeps: list[float] = []
    client = make_client(script, sleeps)
    response = client.get("/things")
    assert str(response.data["ok"]) == "1.5"
    assert len(script.requests) == 3
    assert sleeps[0] == pytest.approx(1.0, abs=0.01) and sleeps[1] == pytest.approx(2.0, abs=0.01)
    assert client.stats.requests == 3 and client.stats.retries == 2


def test_retry_after_in_seconds_is_honoured():
    script = Script(httpx.Response(429, headers={"Retry-After": "7"}), httpx.Response(200, json={}))
    sleeps: list[float] = []
    make_client(script, sleeps).get("/things")
    assert 7.0 <= sleeps[0] < 7.5


def test_retry_after_as_http_date_is_honoured():
    when = email.utils.formatdate(time.time() + 20, usegmt=True)
    delay = parse_retry_after(when)
    assert delay is not None and 18 <= delay <= 20.5
    script = Script(httpx.Response(503, headers={"Retry-After": when}), httpx.Response(200, json={}))
    sleeps: list[float] = []
    make_client(script, sleeps).get("/things")
    assert 18 <= sleeps[0] <= 21


def test_connection_errors_are_retried_then_reported_as_unreachable():
    script = Script(*[httpx.ConnectError("connection refused")] * 4)
    with pytest.raises(UnreachableError) as caught:
        make_client(script, []).get("/things")
    message = str(caught.value)
    assert "acmepay [acme]" in message and "could not reach" in message and "4 attempt" in message
    assert SECRET not in message


def test_401_fails_at_once_naming_provider_account_and_what_to_fix():
    script = Script(httpx.Response(401, json={"errors": {"error": "Invalid API key"}}))
    with pytest.raises(AuthenticationError) as caught:
        make_client(script, []).get("/clients.json")
    message = str(caught.value)
    assert len(script.requests) == 1
    assert "acmepay [acme]" in message and "401" in message and "Invalid API key" in message
    assert "SOURCES__ACMEPAY__API_KEY" in message
    assert SECRET not in message and "api_key=***" in message


def test_403_fails_at_once():
    with pytest.raises(AuthenticationError):
        make_client(Script(httpx.Response(403, text="forbidden")), []).get("/x")


def test_a_scheme_that_can_renew_gets_one_more_try_after_401():
    class Renewing:
        def __init__(self):
            self.token, self.renewals = "old-token-1234", 0

        def apply(self, request):
            request.headers["X-Auth-Token"] = self.token
            return request

        def renew(self):
            self.renewals += 1
            self.token = "new-token-5678"
            return True

    auth = Renewing()
    script = Script(httpx.Response(401), httpx.Response(200, json={"ok": True}))
    make_client(script, [], auth=auth).get("/x")
    assert auth.renewals == 1
    assert [r.headers["X-Auth-Token"] for r in script.requests] == ["old-token-1234", "new-token-5678"]

    script = Script(httpx.Response(401), httpx.Response(401))
    with pytest.raises(AuthenticationError):
        make_client(script, [], auth=Renewing()).get("/x")
    assert len(script.requests) == 2


def test_other_4xx_fail_with_status_and_an_excerpt_of_the_body():
    body = {"error": {"code": "422", "message": "Some parameters were incorrect."}}
    with pytest.raises(HttpStatusError) as caught:
        make_client(Script(httpx.Response(422, json=body)), []).get("/x")
    assert "422" in str(caught.value) and "Some parameters were incorrect." in str(caught.value)


def test_404_is_its_own_error_so_callers_can_skip():
    with pytest.raises(NotFoundError):
        make_client(Script(httpx.Response(404, json={"errors": [{"error": "Client not found"}]})), []).get("/x")


def test_a_redirect_to_a_login_page_is_an_authentication_problem():
    script = Script(httpx.Response(302, headers={"Location": "https://acme.example.test/login"}))
    with pytest.raises(AuthenticationError) as caught:
        make_client(
            script,
            [],
            auth=HeaderAuth("Authorization", "tok-abcdef", "Bearer"),
            is_login_redirect=lambda location: location.endswith("/login"),
        ).get("/x")
    assert "login" in str(caught.value)


def test_a_redirect_the_provider_does_not_declare_a_login_is_an_unexpected_redirect():
    script = Script(httpx.Response(302, headers={"Location": "https://acme.example.test/login"}))
    with pytest.raises(HttpStatusError, match="unexpected redirect"):
        make_client(script, []).get("/x")


def test_a_body_that_is_not_json_is_reported_not_parsed():
    script = Script(httpx.Response(200, text="<html>Welcome</html>", headers={"Content-Type": "text/html"}))
    with pytest.raises(MalformedResponseError) as caught:
        make_client(script, []).get("/x")
    assert "not JSON" in str(caught.value) and "text/html" in str(caught.value)


def test_json_cut_short_is_told_as_a_broken_body_not_a_wrong_address():
    body = b'{"invoices": [{"id": 1, "total": "12.50"}, {"id": 2, "to'
    script = Script(httpx.Response(200, content=body, headers={"Content-Type": "application/json"}))
    with pytest.raises(MalformedResponseError) as caught:
        make_client(script, []).get("/x")
    message = str(caught.value)
    assert "cut short or is malformed" in message and f"{len(body):,} bytes" in message
    assert "next run reads this account again" in message and "base_url" not in message


def test_5xx_on_a_post_that_is_not_idempotent_is_not_retried():
    script = Script(httpx.Response(500))
    with pytest.raises(HttpStatusError):
        make_client(script, []).request("POST", "/x", json={})
    assert len(script.requests) == 1


def test_query_key_is_sent_but_redacted_everywhere():
    script = Script(httpx.Response(200, json={}))
    make_client(script, []).get("/x", params={"page": 2})
    assert script.requests[0].url.params["api_key"] == SECRET
    assert SECRET not in redact(f"GET {script.requests[0].url}")
    assert "sk-live" not in redact(f"https://x.test/?api_key={SECRET}&page=1")


def test_a_provider_can_read_its_own_error_envelope():
    body = {"message": {"text": "Operation failed", "token": "operationFailed"}}
    script = Script(httpx.Response(400, json=body))
    read = lambda b: f"[{b['message']['token']}] {b['message']['text']}"  # noqa: E731
    with pytest.raises(HttpStatusError) as caught:
        make_client(script, [], error_message=read).get("/x")
    assert "HTTP 400: [operationFailed] Operation failed" in str(caught.value)
    # An envelope the reader does not understand falls back to the body excerpt.
    script = Script(httpx.Response(400, text="plain failure"))
    with pytest.raises(HttpStatusError) as caught:
        make_client(script, [], error_message=read).get("/x")
    assert "HTTP 400: plain failure" in str(caught.value)
