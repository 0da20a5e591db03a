"""One HTTP client for every provider: retries, rate budget, auth, exact JSON, clear errors.

Retry policy (after Meltano's singer-sdk and dlt's rest_client):
- 429 and 5xx, and connection errors or timeouts, are retried with capped exponential
  backoff and jitter, honouring `Retry-After` (seconds or an HTTP date) when the API sends it;
- 401/403 fail at once (after one credential renewal, for schemes that can renew) with an
  `AuthenticationError` that names the provider, the account and the config keys to fix;
- 404 raises `NotFoundError` so that callers can skip what disappeared;
- any other 4xx fails with the status and a short excerpt of the body;
- a redirect is never followed: an API that redirects did not accept the request; a redirect
  to the provider's login page (as the provider's declaration recognises it) is reported as
  refused credentials.

Every request first takes a token from the account's `RateBudget`. Every message is redacted.
"""

from __future__ import annotations

import email.utils
import logging
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from sources.shared import stop
from sources.shared.auth import Auth
from sources.shared.errors import (
    AuthenticationError,
    HttpStatusError,
    MalformedResponseError,
    NotFoundError,
    UnreachableError,
)
from sources.shared.ratelimit import RateBudget
from sources.shared.records import split_page
from sources.shared.redact import redact
from sources.shared.stats import RunStats
from sources.shared.values import loads

log = logging.getLogger("billing.http")

USER_AGENT = "billing-elt/0.1 (+https://github.com/billing-elt)"


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry, and how long one request may take in all.

    Attributes:
        attempts: total tries per request, the first included.
        base_delay: first backoff, in seconds; doubles on every retry.
        max_delay: cap on one backoff.
        max_retry_after: the longest server-requested `Retry-After` wait that is honoured; a longer
            one fails the request at once, saying when to try again, instead of sleeping.
        jitter: +/- fraction of randomness added to each backoff.
        timeout: seconds one attempt may wait to read (and write, and for a pooled connection).
        connect_timeout: seconds one attempt may take to connect.
        deadline: seconds for a request with all its retries and waits; no attempt or wait runs past it,
            so a server that accepts and never answers fails within this time.
    """

    attempts: int = 6
    base_delay: float = 0.5
    max_delay: float = 30.0
    max_retry_after: float = 90.0
    jitter: float = 0.25
    timeout: float = 30.0
    connect_timeout: float = 10.0
    deadline: float = 120.0

    def backoff(self, retry: int, retry_after: float | None) -> float:
        """Seconds to wait before retry number `retry` (1-based)."""
        if retry_after is not None:
            return min(self.max_retry_after, max(0.0, retry_after)) + random.uniform(0, self.base_delay / 4)
        delay = min(self.max_delay, self.base_delay * 2 ** (retry - 1))
        return max(0.0, delay * (1 + random.uniform(-self.jitter, self.jitter)))


_default_policy = RetryPolicy()


def configure(policy: RetryPolicy) -> None:
    """The policy of every client made without one (the pipeline sets it from configuration)."""
    global _default_policy
    _default_policy = policy


def default_policy() -> RetryPolicy:
    return _default_policy


def interruptible_sleep(seconds: float) -> None:
    """A retry's pause: cut short, raising `stop.Stopped`, when the run is asked to stop."""
    stop.sleep(seconds)


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Read `Retry-After` as seconds, whether sent as a number or as an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def excerpt(text: str, limit: int = 300) -> str:
    """A short, single-line, redacted excerpt of a response body for error messages."""
    flat = " ".join(text.split())
    return redact(flat[:limit] + ("…" if len(flat) > limit else ""))


@dataclass
class ApiResponse:
    """A decoded response: status, headers, JSON data (numbers as `Decimal`), redacted URL."""

    status: int
    headers: httpx.Headers
    data: Any
    url: str


class ApiClient:
    """An httpx client bound to one provider account.

    Args:
        provider, account: named in every error.
        base_url: the API root; relative paths are joined to it.
        auth: credentials applied to every request.
        auth_hint: what to fix when credentials are refused (the config keys to check).
        headers: extra headers sent on every request.
        transport: an httpx transport, injectable for tests.
        timeout: seconds one attempt may take to read; None takes the policy's.
        retry: the retry policy; None takes the one the pipeline configured (`configure`).
        budget: the account's proactive rate budget.
        stats: counters updated with requests and retries.
        max_connections: connection pool size; at least the number of parallel workers.
        error_message: reads the provider's documented error envelope from a decoded error body
            and returns its message, or None; the error then quotes that message (the raw body
            excerpt otherwise).
        is_login_redirect: whether a redirect's `Location` is the provider's login page.
        sleep, clock: injectable for tests.
    """

    def __init__(
        self,
        provider: str,
        account: str,
        base_url: str,
        *,
        auth: Auth | None = None,
        auth_hint: str | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        budget: RateBudget | None = None,
        stats: RunStats | None = None,
        max_connections: int = 16,
        error_message: Callable[[Any], str | None] | None = None,
        is_login_redirect: Callable[[str], bool] | None = None,
        sleep: Callable[[float], None] = interruptible_sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.provider = provider
        self.account = account
        self.base_url = base_url.rstrip("/")
        self.auth = auth
        self.auth_hint = auth_hint or f"check the credentials in [sources.{provider}] of .dlt/secrets.toml"
        self.retry = retry or default_policy()
        self.budget = budget or RateBudget(None)
        self.stats = stats or RunStats(provider, account)
        self._sleep = sleep
        self._clock = clock
        read = timeout if timeout is not None else self.retry.timeout
        self._timeout = httpx.Timeout(read, connect=min(read, self.retry.connect_timeout))
        self._error_message = error_message
        self._is_login_redirect = is_login_redirect
        self._client = httpx.Client(
            base_url=self.base_url,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json", **(headers or {})},
            transport=transport,
            timeout=self._timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
            follow_redirects=False,
        )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def get(self, path: str, *, params: Mapping[str, Any] | None = None) -> ApiResponse:
        """GET a JSON resource."""
        return self.request("GET", path, params=params)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        idempotent: bool | None = None,
        authenticate: bool = True,
        records: str | None = None,
    ) -> ApiResponse:
        """Send a request with retries and decode its JSON body exactly.

        Args:
            method, path: the HTTP verb and a path relative to `base_url` (or an absolute URL).
            params: query parameters; lists repeat the parameter.
            json: a JSON body.
            data: a form body.
            idempotent: whether a 5xx/timeout may be retried; defaults to True for GET/HEAD.
                A POST that is really a read (InvoiceXpress's invoice listing) passes True.
            authenticate: False for the token endpoint itself.
            records: for a listing, the dotted path of its record list in the body ("" for a
                body that is the list): the records are kept as `Record`s, each with its JSON
                text as sent (`sources.shared.records.split_page`).

        Raises:
            AuthenticationError, NotFoundError, HttpStatusError, MalformedResponseError,
            UnreachableError.
        """
        safe = idempotent if idempotent is not None else method.upper() in {"GET", "HEAD", "OPTIONS"}
        renewed = False
        attempt = 0
        started = self._clock()
        while True:
            attempt += 1
            remaining = self.retry.deadline - (self._clock() - started)
            request = self._client.build_request(
                method, path, params=params, json=json, data=data, timeout=self._attempt_timeout(remaining)
            )
            if authenticate and self.auth is not None:
                request = self.auth.apply(request)
            url = redact(str(request.url))
            self.budget.acquire()
            self.stats.add(requests=1)
            try:
                response = self._client.send(request)
            except httpx.TransportError as exc:
                sent = not isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout))
                what = f"{type(exc).__name__} on {method} {url}"
                if attempt < self.retry.attempts and (safe or not sent) and self._wait(attempt, None, what, started):
                    continue
                elapsed = self._clock() - started
                raise UnreachableError(
                    self.provider,
                    self.account,
                    f"could not reach {url} after {attempt} attempt(s) in {elapsed:.0f} s: "
                    f"{type(exc).__name__}: {redact(str(exc)) or 'no answer'}",
                    f"check the network and base_url in [sources.{self.provider}]; one request may take "
                    f"{self.retry.deadline:.0f} s with its retries (request_deadline), one attempt "
                    f"{self.retry.timeout:.0f} s (http_timeout)",
                ) from None

            status = response.status_code
            if status in (401, 403):
                response.read()
                if status == 401 and not renewed and self.auth is not None and authenticate and self.auth.renew():
                    renewed = True
                    continue
                raise AuthenticationError(
                    self.provider,
                    self.account,
                    f"{method} {url} was refused with HTTP {status}: {self._detail(response)}",
                    self.auth_hint,
                    status=status,
                    url=url,
                )
            if status == 429 or status >= 500:
                response.read()
                retry_after = parse_retry_after(response.headers.get("Retry-After"))
                if retry_after is not None and retry_after > self.retry.max_retry_after:
                    self._refuse_long_wait(status, method, url, retry_after)
                if (
                    attempt < self.retry.attempts
                    and (safe or status == 429)
                    and self._wait(attempt, retry_after, f"HTTP {status} from {method} {url}", started)
                ):
                    continue
                raise HttpStatusError(
                    self.provider,
                    self.account,
                    f"{method} {url} failed with HTTP {status} after {attempt} attempt(s): {self._detail(response)}",
                    "the provider is rate limiting or failing; try again later",
                    status=status,
                    url=url,
                )
            if 300 <= status < 400:
                location = redact(response.headers.get("Location", "?"))
                if self._is_login_redirect is not None and self._is_login_redirect(location):
                    raise AuthenticationError(
                        self.provider,
                        self.account,
                        f"{method} {url} was redirected to a login page ({location}): "
                        "the API did not accept the credentials",
                        self.auth_hint,
                        status=status,
                        url=url,
                    )
                raise HttpStatusError(
                    self.provider,
                    self.account,
                    f"{method} {url} answered with an unexpected redirect (HTTP {status}) to {location}",
                    f"check base_url in [sources.{self.provider}]",
                    status=status,
                    url=url,
                )
            if status == 404:
                raise NotFoundError(
                    self.provider,
                    self.account,
                    f"{method} {url} answered HTTP 404: {self._detail(response)}",
                    status=status,
                    url=url,
                )
            if status >= 400:
                raise HttpStatusError(
                    self.provider,
                    self.account,
                    f"{method} {url} failed with HTTP {status}: {self._detail(response)}",
                    status=status,
                    url=url,
                )
            return ApiResponse(status, response.headers, self._decode(response, method, url, records), url)

    def error_in(self, body: Any) -> str | None:
        """The provider's own error message in a decoded body, redacted and shortened, or None
        when the body holds none (or the provider declares no error envelope)."""
        if self._error_message is None or body is None:
            return None
        try:
            message = self._error_message(body)
        except (ValueError, TypeError, AttributeError, KeyError):
            return None
        return excerpt(message) if message else None

    def _detail(self, response: httpx.Response) -> str:
        """The provider's own error message when its envelope can be read, else a body excerpt."""
        if response.content:
            try:
                message = self.error_in(loads(response.content))
            except ValueError:
                message = None
            if message:
                return message
        return excerpt(response.text)

    def _decode(self, response: httpx.Response, method: str, url: str, records: str | None = None) -> Any:
        if not response.content:
            return None
        try:
            if records is not None:
                return split_page(response.content, records)[0]
            return loads(response.content)
        except ValueError:
            kind = response.headers.get("Content-Type", "unknown content type")
            if "json" in kind.lower():
                # JSON that does not parse came from the API itself: cut short on its way (a
                # dropped connection, a proxy) or broken at the source, not a wrong address.
                problem = (
                    f"{method} {url} returned JSON that does not parse ({len(response.content):,} bytes, "
                    f"ending …{excerpt(response.text[-60:])}): the body was cut short or is malformed"
                )
                advice = (
                    "a network or provider fault: the next run reads this account again; "
                    "if it repeats, the provider is sending broken JSON"
                )
            else:
                problem = f"{method} {url} returned a body that is not JSON ({kind}): {excerpt(response.text)}"
                advice = f"check base_url in [sources.{self.provider}] points at the API"
            raise MalformedResponseError(
                self.provider, self.account, problem, advice, status=response.status_code, url=url
            ) from None

    def _attempt_timeout(self, remaining: float) -> httpx.Timeout:
        """This attempt's timeouts: the configured ones, cut to what is left of the deadline."""
        left = max(0.1, remaining)
        read = self._timeout.read or self.retry.timeout
        connect = self._timeout.connect or self.retry.connect_timeout
        return httpx.Timeout(min(read, left), connect=min(connect, left))

    def _refuse_long_wait(self, status: int, method: str, url: str, retry_after: float) -> None:
        """A server that asks for a longer wait than `max_retry_after`: fail now, saying when to retry."""
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + retry_after))
        raise HttpStatusError(
            self.provider,
            self.account,
            f"{method} {url} answered HTTP {status} asking to wait {retry_after:.0f} s (Retry-After), more than "
            f"max_retry_after = {self.retry.max_retry_after:.0f} s: this account was stopped instead of sleeping",
            f"run again after {when} (or raise max_retry_after, env MAX_RETRY_AFTER)",
            status=status,
            url=url,
        )

    def _wait(self, attempt: int, retry_after: float | None, why: str, started: float) -> bool:
        """Wait before the next attempt, saying so; False when the wait would pass the deadline."""
        delay = self.retry.backoff(attempt, retry_after)
        elapsed = self._clock() - started
        if elapsed + delay >= self.retry.deadline:
            log.warning(
                "%s [%s]: %s: no retry, a wait of %.0f s would pass the request deadline of %.0f s "
                "(request_deadline) after %.0f s",
                self.provider,
                self.account,
                why,
                delay,
                self.retry.deadline,
                elapsed,
            )
            return False
        self.stats.add(retries=1)
        after = f" (Retry-After {retry_after:.0f} s)" if retry_after is not None else ""
        log.warning(
            "%s [%s]: %s: waiting %.1f s%s, retry %d of %d",
            self.provider,
            self.account,
            why,
            delay,
            after,
            attempt,
            self.retry.attempts - 1,
        )
        self._sleep(delay)
        return True
