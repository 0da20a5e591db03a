"""Errors raised by sources, each one naming the provider and account it concerns.

    BillingError                  base: provider, account, what went wrong, what to do
    ├── ConfigurationError        a missing or invalid configuration value
    ├── ApiError                  the provider's API answered, but not with what we need
    │   ├── AuthenticationError   401/403: credentials missing, wrong or expired
    │   ├── NotFoundError         404 for a resource we asked about
    │   ├── HttpStatusError       any other unexpected status (4xx, or 5xx after retries)
    │   ├── MalformedResponseError the body is not the JSON shape the docs describe
    │   └── PaginationLoopError   a page or token came back twice
    └── UnreachableError          connection refused, DNS, TLS or timeouts after retries

A record that cannot be mapped is not an error of the run: mappings raise
`sources.shared.values.ValueProblem`, and the driver reports the record and goes on.

Every message is redacted before it is built (see `sources.shared.redact`), so printing an
error, logging it or storing it in a dlt trace never leaks a secret.
"""

from __future__ import annotations

from sources.shared.redact import redact


class BillingError(Exception):
    """Base of every error this project raises on purpose.

    Args:
        provider: provider name, e.g. `invoicexpress`.
        account: the account label (account name, workspace, organisation...).
        message: what went wrong.
        hint: what the user can do about it.
    """

    def __init__(self, provider: str, account: str | None, message: str, hint: str | None = None) -> None:
        self.provider = provider
        self.account = account
        self.message = redact(message)
        self.hint = redact(hint) if hint else None
        super().__init__(self.describe())

    def describe(self) -> str:
        where = f"{self.provider} [{self.account}]" if self.account else self.provider
        text = f"{where}: {self.message}"
        if self.hint:
            text += f" — {self.hint}"
        return text


class ConfigurationError(BillingError):
    """A configuration value is missing or invalid."""


class ApiError(BillingError):
    """The provider's API answered with something we cannot use.

    Args:
        status: the HTTP status, when there was a response.
        url: the request URL, already redacted.
    """

    def __init__(
        self,
        provider: str,
        account: str | None,
        message: str,
        hint: str | None = None,
        *,
        status: int | None = None,
        url: str | None = None,
    ) -> None:
        self.status = status
        self.url = redact(url) if url else None
        super().__init__(provider, account, message, hint)


class AuthenticationError(ApiError):
    """401/403: the credentials are missing, wrong, expired or lack a permission."""


class NotFoundError(ApiError):
    """404 for a specific resource (a client that disappeared, for example)."""


class HttpStatusError(ApiError):
    """An unexpected HTTP status: a 4xx other than 401/403/404, or a 5xx that outlived retries."""


class MalformedResponseError(ApiError):
    """The response is not JSON, or not the shape the provider documents."""


class PaginationLoopError(ApiError):
    """The API handed back a page number or token it had already given: paging would never end."""


class UnreachableError(BillingError):
    """The API could not be reached at all (refused connection, DNS, TLS, timeouts)."""
