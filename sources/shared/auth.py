"""How a request proves who it is. One small object per scheme, applied to every request.

A scheme that can renew itself (OAuth client credentials) implements `renew`: the HTTP client
calls it once when the API answers 401, then retries the request.
"""

from __future__ import annotations

from typing import Protocol

import httpx

from sources.shared.redact import register_secret


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
