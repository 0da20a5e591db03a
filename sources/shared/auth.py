"""How a request proves who it is. One small object per scheme, applied to every request.

A scheme that can renew itself (OAuth client credentials) implements `renew`: the HTTP client
calls it once when the API answers 401, then retries the request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import httpx

from sources.shared.errors import MalformedResponseError
from sources.shared.redact import register_secret

if TYPE_CHECKING:
    from sources.shared.http import ApiClient


class Auth(Protocol):
    """Applies credentials to a request; may renew them once after a 401."""

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Return the request with credentials attached."""
        ...

    def renew(self) -> bool:
        """Get fresh credentials after a 401; return False when that cannot help."""
        ...


class QueryParamAuth:
    """A key sent in the query string (InvoiceXpress `?api_key=`). The key is registered for
    redaction, since it then appears in every URL."""

    def __init__(self, name: str, value: str) -> None:
        register_secret(value)
        self.name, self.value = name, value

    def apply(self, request: httpx.Request) -> httpx.Request:
        request.url = request.url.copy_merge_params({self.name: self.value})
        return request

    def renew(self) -> bool:
        return False


class HeaderAuth:
    """A key sent in a header, raw or with a scheme prefix (`Bearer <key>`)."""

    def __init__(self, header: str, value: str, scheme: str | None = None) -> None:
        register_secret(value)
        self.header = header
        self.value = f"{scheme} {value}" if scheme else value

    def apply(self, request: httpx.Request) -> httpx.Request:
        request.headers[self.header] = self.value
        return request

    def renew(self) -> bool:
        return False


class ClientCredentialsAuth:
    """OAuth 2.0 client credentials: a cached access token, fetched lazily from a form POST to
    the token URL and renewed when `renew_fraction` of its lifetime remains.

    Calling the token endpoint per request gets an integration rate limited, so the token is
    shared. Thread-safe: parallel listings share one token, and when several requests meet a 401
    at once only the first renews; the others reuse the token it fetched.

    Args:
        token_client: an `ApiClient` for the token endpoint (its own retries and error reading).
        token_url: the token endpoint.
        client_id, client_secret: the integration's credentials.
        header, scheme: where the token travels (`X-Auth-Token: <t>` or `Authorization: Bearer <t>`).
        default_lifetime: seconds assumed when the response has no `expires_in`.
        renew_fraction: the share of the lifetime left when the token is renewed.
        clock: monotonic seconds, injectable for tests.
    """

    def __init__(
        self,
        token_client: ApiClient,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        header: str = "Authorization",
        scheme: str | None = "Bearer",
        default_lifetime: float = 3600.0,
        renew_fraction: float = 0.1,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        register_secret(client_secret)
        self.token_url = token_url
        self._form = {"grant_type": "client_credentials", "client_id": client_id, "client_secret": client_secret}
        self._http = token_client
        self.header, self.scheme = header, scheme
        self.default_lifetime, self.renew_fraction = default_lifetime, renew_fraction
        self._clock = clock
        self._lock = threading.Lock()
        self._local = threading.local()
        self._token: str | None = None
        self._renew_at = 0.0

    def apply(self, request: httpx.Request) -> httpx.Request:
        """Attach the current token, fetching or renewing it first when needed."""
        with self._lock:
            token = self._token
            if token is None or self._clock() >= self._renew_at:
                token = self._fetch()
        self._local.token = token
        request.headers[self.header] = f"{self.scheme} {token}" if self.scheme else token
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

    def _fetch(self) -> str:
        # A token request is a read as far as retries go: minting a second token is harmless.
        response = self._http.request("POST", self.token_url, data=self._form, idempotent=True, authenticate=False)
        token, lifetime = _read_token(response.data, self.default_lifetime)
        if token is None:
            raise MalformedResponseError(
                self._http.provider,
                self._http.account,
                f"POST {response.url} returned no access_token",
                "check token_url points at the OAuth token endpoint",
                url=response.url,
            )
        register_secret(token)
        self._token = token
        self._renew_at = self._clock() + lifetime * (1 - self.renew_fraction)
        return token


def _read_token(body: Any, default_lifetime: float) -> tuple[str | None, float]:
    """The access token and its lifetime in seconds from an RFC 6749 §5.1 token response."""
    if not isinstance(body, dict):
        return None, 0.0
    token = body.get("access_token")
    try:
        lifetime = float(body.get("expires_in") or default_lifetime)
    except (TypeError, ValueError):
        lifetime = float(default_lifetime)
    return (str(token) if token else None), max(0.0, lifetime)
