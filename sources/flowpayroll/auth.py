"""OAuth 2.0 client credentials for Flow Payroll, as an `Auth` the shared HTTP client applies.

docs/providers.md §2.1 [DOC]: the token comes from a form POST to the token URL
(`grant_type=client_credentials&client_id=…&client_secret=…`) and is sent raw in
`X-Auth-Token`. It must be cached and renewed when about 10% of its lifetime remains: calling
the token endpoint per request gets an integration rate limited.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import httpx

from sources.flowpayroll.api import error_message
from sources.flowpayroll.settings import (
    DEFAULT_TOKEN_LIFETIME,
    PROVIDER_NAME,
    TOKEN_RENEW_FRACTION,
    auth_hint,
)
from sources.shared.errors import MalformedResponseError
from sources.shared.http import ApiClient
from sources.shared.redact import register_secret
from sources.shared.stats import RunStats

HEADER = "X-Auth-Token"


class ClientCredentialsAuth:
    """A cached access token, fetched lazily and renewed before it expires.

    Thread-safe: parallel listings share one token. When several requests meet a 401 at once,
    only the first renews; the others reuse the token it fetched.

    Args:
        token_url: the OAuth token endpoint.
        client_id, client_secret: the integration's credentials.
        account: the account label named in errors.
        transport: an httpx transport, injectable for tests.
        stats: counters the token requests are added to.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        account: str = "",
        transport: httpx.BaseTransport | None = None,
        stats: RunStats | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        register_secret(client_secret)
        self.token_url = token_url
        self._form = {
            "grant_type": "client_credentials",
            "client_id": client_id,
            "client_secret": client_secret,
        }
        self._http = ApiClient(
            PROVIDER_NAME,
            account,
            token_url,
            auth_hint=auth_hint(),
            transport=transport,
            stats=stats,
            error_message=error_message,
        )
        self._clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self._token: str | None = None
        self._renew_at = 0.0
        self.fetches = 0

    @property
    def account(self) -> str:
        return self._http.account

    @account.setter
    def account(self, value: str) -> None:
        self._http.account = value

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Attach the current token, fetching or renewing it first when needed."""
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._fetch()
            token = self._token
        assert token is not None
        self._local.token = token
        request.headers[HEADER] = token
        return request

    def renew(self) -> bool:
        """Fetch a new token after a 401, unless another request already replaced the one refused."""
        refused = getattr(self._local, "token", None)
        with self._lock:
            if self._token is None or self._token == refused:
                self._fetch()
        return True

    def close(self) -> None:
        self._http.close()

    def _fetch(self) -> None:
        # A token request is a read as far as retries go: minting a second token is harmless.
        response = self._http.request("POST", self.token_url, data=self._form, idempotent=True, authenticate=False)
        token, lifetime = _read_token(response.data)
        if token is None:
            raise MalformedResponseError(
                PROVIDER_NAME,
                self._http.account,
                f"POST {response.url} returned no access_token",
                "check token_url points at the OAuth token endpoint",
                url=response.url,
            )
        register_secret(token)
        self._token = token
        self._renew_at = self._clock() + lifetime * (1 - TOKEN_RENEW_FRACTION)
        self.fetches += 1


def _read_token(body: Any) -> tuple[str | None, float]:
    if not isinstance(body, dict):
        return None, 0.0
    token = body.get("access_token")
    try:
        lifetime = float(body.get("expires_in") or DEFAULT_TOKEN_LIFETIME)
    except (TypeError, ValueError):
        lifetime = float(DEFAULT_TOKEN_LIFETIME)
    return (str(token) if token else None), max(0.0, lifetime)
