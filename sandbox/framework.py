"""What every provider sandbox is built from: an `App` subclass declares its routes (`@route`), data
and quirks; `SandboxServer` serves it on a socket, `app.transport()` in-process, both through `serve`."""

from __future__ import annotations

import datetime as dt
import functools
import importlib
import math
import random
import re
import secrets
import threading
import time
from array import array
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar, overload
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import simplejson

NOW: Any = type("Now", (), {"__repr__": lambda self: "NOW"})()
"""A mutation value meaning "the sandbox's current time", e.g. `update_invoice(id, archived_at=NOW)`."""
T = TypeVar("T")
C = TypeVar("C")
CENT = Decimal("0.01")


def utc_now() -> dt.datetime:
    """The sandboxes' clock: every "now" they write comes from here."""
    return dt.datetime.now(dt.UTC)


def money(value: Decimal, rounding: str = ROUND_HALF_UP) -> Decimal:
    """`value` in cents, rounded half up as invoicing tools do unless another `rounding` is named."""
    return value.quantize(CENT, rounding=rounding)


def apply_now(fields: dict[str, Any], now: Any) -> dict[str, Any]:
    """`fields` with every `NOW` replaced by `now`."""
    return {k: now if v is NOW else v for k, v in fields.items()}


def published_sample(provider: str, name: str) -> Any:
    """A body the provider published (`sandbox/<provider>/samples/`, see its README), numbers as `Decimal`s."""
    text = (Path(__file__).parent / provider / "samples" / name).read_text(encoding="utf-8")
    return simplejson.loads(text, use_decimal=True)


def public(value: Any, render: Callable[[Any], Any] = lambda v: v) -> Any:
    """A record as the API shows it: no private `_` fields, every value (children first) through `render`."""
    if isinstance(value, dict):
        value = {k: public(v, render) for k, v in value.items() if not k.startswith("_")}
    elif isinstance(value, list):
        value = [public(v, render) for v in value]
    return render(value)


@dataclass(kw_only=True)
class Options:
    """The `create_app` options every sandbox takes; each provider's `Options` adds its own."""

    seed: int = 42  # seeds the data generator: the same seed gives the same account
    latency: float = 0.0  # seconds added to every response
    requests_per_minute: int | None = None  # the rate limit's budget per window; None for no limit
    fixtures: bool = True  # also serve the provider's published samples (`sandbox/<provider>/samples/`)
    # Shift every generated date by whole days so that the generated business ends on this day (a live account:
    # invoices not yet due, others overdue, recent revenue); None keeps the generator's own dates. The published
    # samples keep theirs.
    today: dt.date | None = None


def days_until(today: dt.date | None, end: dt.date) -> dt.timedelta:
    """The whole days that move `end`, the last day of a generated business, onto `today` (none without `today`)."""
    return dt.timedelta(days=(today - end).days) if today else dt.timedelta(0)


def half_the_clients(clients: int) -> dict[str, Any]:
    """`create_app` options of an account of about `clients` clients for the benchmarks (benchmarks/rerun.py):
    half as many clients, 20 invoices per requested client, in one account-wide listing."""
    return {"clients": max(1, clients // 2), "invoices": clients * 20}


# --- requests and responses ---------------------------------------------------------------------
@dataclass
class Request:
    """An incoming request: method, path, decoded query (lists), lower-cased headers, body."""

    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes = b""
    reply_headers: dict[str, str] = field(default_factory=dict)  # added to whatever is answered

    @classmethod
    def parse(cls, method: str, target: str, headers: Iterable[tuple[str, str]], body: bytes) -> Request:
        parts = urlsplit(target)
        lowered = {k.lower(): v for k, v in headers}
        return cls(method, parts.path, parse_qs(parts.query, keep_blank_values=True), lowered, body)

    def arg(self, name: str, default: str | None = None) -> str | None:
        return self.query[name][-1] if self.query.get(name) else default

    def args(self, name: str) -> list[str]:
        return self.query.get(name, [])

    def int_arg(self, name: str, default: T) -> int | T:
        """The parameter as an integer, `default` when absent or empty; ValueError when not an integer."""
        text = self.arg(name)
        return default if text in (None, "") else int(str(text))

    def json(self) -> Any:
        return simplejson.loads(self.body, use_decimal=True) if self.body else None

    def form(self) -> dict[str, str]:
        return {k: v[-1] for k, v in parse_qs(self.body.decode("utf-8"), keep_blank_values=True).items()}


@dataclass
class Response:
    """An outgoing response; `delay` holds it back that many seconds (slow and silent faults)."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """A JSON response, compact as the providers' servers write it (Rails, Laravel and Jackson add
    no spaces); `Decimal` values are written as the exact numbers they hold."""
    body = simplejson.dumps(data, use_decimal=True, separators=(",", ":")).encode("utf-8")
    return Response(status, body, {"Content-Type": "application/json; charset=utf-8", **(headers or {})})


class Refused(Exception):
    """Raised by a handler (or what it calls) to answer `response` instead, an error most often."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


@dataclass(frozen=True)
class LoggedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    status: int
    at: float


class RequestLog:
    """Every request a sandbox answered, for tests that prove what the pipeline asked for."""

    def __init__(self) -> None:
        self._entries: list[LoggedRequest] = []
        self.add, self.clear = self._entries.append, self._entries.clear  # atomic, as `entries`' copy is

    def entries(self) -> list[LoggedRequest]:
        return self._entries.copy()

    def count(self, status: int | None = None, path_prefix: str = "") -> int:
        return sum(1 for e in self.entries() if status in (None, e.status) and e.path.startswith(path_prefix))


# --- routes -------------------------------------------------------------------------------------
F = TypeVar("F", bound=Callable[..., Response])


def _compile(pattern: str) -> re.Pattern[str]:
    """`/clients/{client}/invoices.json` → a regex with one named group per `{param}`."""
    pieces = re.split(r"\{(\w+)\}", pattern)
    return re.compile("".join(f"(?P<{p}>[^/]+)" if i % 2 else re.escape(p) for i, p in enumerate(pieces)) + r"\Z")


def route(method: str, pattern: str, *, public: bool = False) -> Callable[[F], F]:
    """Mark the handler of `method pattern` (`{name}`: a raw keyword argument); `public` skips `guard`."""

    def mark(handler: F) -> F:
        handler.__route__ = (method, pattern, public)  # type: ignore[attr-defined]
        return handler

    return mark


@dataclass(frozen=True)
class Route:
    method: str
    pattern: str
    regex: re.Pattern[str]
    handler: str
    public: bool


# --- pagers -------------------------------------------------------------------------------------
def page_of(records: Sequence[T], page: int, per_page: int) -> Sequence[T]:
    """Page `page` (1-based) of `records`: a bare slice, empty past the end (Fohlio's arrays)."""
    return records[(page - 1) * per_page : page * per_page]


def page_number_meta(total: int, page: int, per_page: int) -> dict[str, int]:
    """InvoiceXpress's `pagination`; empty: `total_pages: 0`, as the legacy XML writes it (docs/providers.md §1.6)."""
    total_pages = math.ceil(total / per_page)
    return {"total_entries": total, "current_page": page, "total_pages": total_pages, "per_page": per_page}


class TokenPager:
    """Opaque page tokens the server remembers (Flow Payroll); `repeat`: a server that hands back the same."""

    def __init__(self, repeat: bool = False) -> None:
        self.repeat = repeat
        self._pages: dict[str, tuple[str, int]] = {}

    def page(self, scope: str, records: Sequence[T], token: str | None, size: int) -> tuple[Sequence[T], str | None]:
        """The page `token` points at within `scope` and the next page's token; KeyError if unknown."""
        offset = 0
        if token:
            remembered = self._pages.get(token)
            if remembered is None or remembered[0] != scope:
                raise KeyError(token)
            offset = remembered[1]
        next_token = None
        if offset + size < len(records):
            next_token = token if (self.repeat and token) else secrets.token_urlsafe(24)
            self._pages[next_token] = (scope, offset + size)
        return records[offset : offset + size], next_token


def laravel_page(rows: Sequence[T], page: int, per_page: int, *, links: str, meta: str) -> tuple[Sequence[T], dict]:
    """A Laravel resource collection's page, `links` + `meta` (URL bases; the URLs carry only `page`)."""
    total, start = len(rows), (page - 1) * per_page
    last_page, chunk = max(1, math.ceil(total / per_page)), rows[start : start + per_page]
    before, after = page - 1 if page > 1 else None, page + 1 if page < last_page else None

    def link(n: int | None, base: str = links) -> str | None:
        return None if n is None else f"{base}?page={quote(str(n))}"

    pages = [(before, "« Previous"), *((n, str(n or "...")) for n in _url_window(page, last_page)), (after, "Next »")]
    window = [{"url": link(n, meta), "label": label, "active": n == page} for n, label in pages]
    meta_body: dict[str, Any] = {"current_page": page, "from": start + 1 if chunk else None, "last_page": last_page}
    meta_body.update(links=window, path=meta, per_page=per_page, to=start + len(chunk) if chunk else None, total=total)
    return chunk, {
        "links": {"first": link(1), "last": link(last_page), "prev": link(before), "next": link(after)},
        "meta": meta_body,
    }


def _url_window(page: int, last_page: int, each_side: int = 3) -> list[int | None]:
    """Laravel's `UrlWindow`: every page when few, else both ends and a slider, `None` = "..."."""
    if last_page < each_side * 2 + 8:
        return list(range(1, last_page + 1))
    window = each_side * 2
    if page <= window:
        return [*range(1, window + each_side + 1), None, last_page - 1, last_page]
    if page > last_page - window:
        return [1, 2, None, *range(last_page - (window + each_side - 1), last_page + 1)]
    return [1, 2, None, *range(page - each_side, page + each_side + 1), None, last_page - 1, last_page]


# --- records made on demand ---------------------------------------------------------------------
class Replay(Generic[T, C]):
    """What a seeded generator makes one record after another, kept as the points it can resume from.

    `make(rng, n, carry)` makes record `n` from the generator's random state and what it carries from one record
    to the next (a running date, an id counter), and returns the record and the next carry. The random state and
    the carry are kept every `every` records (2.5 KB each); a record is made again when asked for, from the nearest
    point before it: the same draws in the same order make the same record. `count` records hold a few bytes each
    plus what the app notes of each one (`observe(n, record)`, called once, as the records are first made).

    `peek(n)` is for reading (recently made records are shared); `hold(n)` keeps the record from then on, to be
    changed in place and served as changed; `release(n)` forgets it.
    """

    def __init__(
        self,
        make: Callable[[random.Random, int, C], tuple[T, C]],
        rng: random.Random,
        count: int,
        carry: C,
        observe: Callable[[int, T], None] | None = None,
        *,
        every: int = 64,
        cached: int = 16,
    ) -> None:
        self.make, self.count, self.every, self.cached = make, count, every, cached
        self.held: dict[int, T] = {}
        self._points: list[tuple[array[int], Any, C]] = []
        self._chunks: OrderedDict[int, list[T]] = OrderedDict()
        for n in range(count):
            if n % every == 0:
                _, state, gauss = rng.getstate()
                self._points.append((array("I", state), gauss, carry))
            record, carry = make(rng, n, carry)
            if observe is not None:
                observe(n, record)

    def peek(self, n: int) -> T:
        """Record `n` as held, else as made: not to be changed."""
        if n in self.held:
            return self.held[n]
        return self._chunk(n // self.every)[n % self.every]

    def hold(self, n: int) -> T:
        """Record `n`, kept (and served) from now on as it is changed."""
        if n not in self.held:
            self.held[n] = self.peek(n)
        return self.held[n]

    def release(self, n: int) -> None:
        self.held.pop(n, None)

    def _chunk(self, index: int) -> list[T]:
        if index in self._chunks:
            self._chunks.move_to_end(index)
            return self._chunks[index]
        state, gauss, carry = self._points[index]
        rng = random.Random()
        rng.setstate((random.Random.VERSION, tuple(state), gauss))
        records = []
        for n in range(index * self.every, min(self.count, (index + 1) * self.every)):
            record, carry = self.make(rng, n, carry)
            records.append(record)
        self._chunks[index] = records
        if len(self._chunks) > self.cached:
            self._chunks.popitem(last=False)
        return records


K = TypeVar("K")


class Listing(Sequence[T], Generic[K, T]):
    """A listing's records in its order, each made only when its page is sliced: `keys` in order, `lookup(key)`."""

    def __init__(self, keys: Sequence[K], lookup: Callable[[K], T]) -> None:
        self.keys, self.lookup = keys, lookup

    def __len__(self) -> int:
        return len(self.keys)

    @overload
    def __getitem__(self, index: int) -> T: ...
    @overload
    def __getitem__(self, index: slice) -> list[T]: ...
    def __getitem__(self, index: int | slice) -> T | list[T]:
        if isinstance(index, slice):
            return [self.lookup(key) for key in self.keys[index]]
        return self.lookup(self.keys[index])

    def __iter__(self) -> Iterator[T]:
        return (self.lookup(key) for key in self.keys)


# --- auth schemes -------------------------------------------------------------------------------
@dataclass
class QueryKey:
    """An API key in the query string (`?api_key=`)."""

    param: str
    key: str

    def __call__(self, request: Request) -> str | None:
        """The key when the request carries it, else None."""
        return self.key if request.arg(self.param) == self.key else None


@dataclass
class HeaderKey:
    """An API key in a header, raw (scheme "") and/or after a scheme (`Bearer <key>`)."""

    header: str
    key: str
    schemes: tuple[str, ...] = ("",)

    def __call__(self, request: Request) -> str | None:
        sent = request.headers.get(self.header.lower(), "")
        accepted = {f"{s} {self.key}" if s else self.key for s in self.schemes}
        return self.key if sent and sent in accepted else None


class ClientCredentials:
    """OAuth 2.0 client credentials (RFC 6749 §4.4): a token endpoint, expiring tokens sent raw in `header`."""

    def __init__(self, client_id: str, client_secret: str, expires_in: int, header: str) -> None:
        self.client_id, self.client_secret, self.expires_in, self.header = client_id, client_secret, expires_in, header
        self.tokens: dict[str, float] = {}
        self.issued, self._lock = 0, threading.Lock()

    def token_endpoint(self, request: Request) -> Response:
        if request.method != "POST":
            return json_response({"error": "invalid_request"}, 405)
        if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
            return json_response({"error": "invalid_request", "error_description": "form body expected"}, 400)
        form = request.form()
        if form.get("grant_type") != "client_credentials":
            return json_response({"error": "unsupported_grant_type"}, 400)
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return json_response({"error": "invalid_client", "error_description": "Client authentication failed"}, 401)
        token = secrets.token_urlsafe(32)
        with self._lock:
            self.tokens[token] = time.monotonic() + self.expires_in
            self.issued += 1
        return json_response({"access_token": token, "expires_in": self.expires_in, "token_type": "Bearer"})

    def check(self, request: Request) -> str:
        """`ok`, or why the request is refused: `missing`, `invalid` or `expired`."""
        token = request.headers.get(self.header.lower())
        with self._lock:
            expiry = self.tokens.get(token or "")
        if not token:
            return "missing"
        if expiry is None:
            return "invalid"
        return "expired" if time.monotonic() >= expiry else "ok"

    def expire_all(self) -> None:
        """Expire every token issued so far, as if their lifetime had run out."""
        with self._lock:
            self.tokens = dict.fromkeys(self.tokens, 0.0)


# --- rate limits --------------------------------------------------------------------------------
class SlidingWindow:
    """At most `limit` requests per `window` seconds per key; `check`: None, else seconds to wait."""

    def __init__(self, limit: int | None, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def check(self, key: str) -> float | None:
        if not self.limit:
            return None
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(0.0, hits[0] + self.window - now)
            hits.append(now)
            return None


class FixedWindow:
    """Laravel's `throttle:N,1`; `hit`: whether to pass, and the `X-RateLimit-*` (+ `Retry-After`) headers."""

    def __init__(self, limit: int | None, window: float = 60.0) -> None:
        self.limit, self.window = limit, window
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> tuple[bool, dict[str, str]]:
        if not self.limit:
            return True, {}
        now = time.monotonic()
        with self._lock:
            started, count = self._windows.get(key, (now, 0))
            if now - started >= self.window:
                started, count = now, 0
            if count >= self.limit:
                wait = max(1, math.ceil(started + self.window - now))
                reset = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": str(int(time.time()) + wait)}
                return False, {"Retry-After": str(wait), "X-RateLimit-Limit": str(self.limit), **reset}
            self._windows[key] = (started, count + 1)
        return True, {"X-RateLimit-Limit": str(self.limit), "X-RateLimit-Remaining": str(self.limit - count - 1)}


# --- faults -------------------------------------------------------------------------------------
FAULT_KINDS = ("status", "truncate", "not_json", "slow", "silent", "repeat")


@dataclass
class Fault:
    """`kind` on requests matching `method` and `path` (a pattern), after `after` matches, `times` times."""

    kind: str
    path: str | None = None
    method: str | None = None
    times: int | None = 1
    after: int = 0
    status: int = 503
    body: Any = None  # bytes as they are, or JSON data
    headers: dict[str, str] = field(default_factory=dict)  # sent with a `status` fault (Retry-After, say)
    seconds: float = 3600.0
    seen: int = 0

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"fault kind must be one of {', '.join(FAULT_KINDS)}, not {self.kind!r}")
        self._regex = _compile(self.path) if self.path else None

    def takes(self, request: Request) -> bool:
        if (self.method and self.method != request.method) or (self._regex and not self._regex.match(request.path)):
            return False
        self.seen += 1
        return self.seen > self.after and (self.times is None or self.seen <= self.after + self.times)


# --- the app ------------------------------------------------------------------------------------
MUTATIONS: tuple[str, ...] = ("update_invoice", "update_line", "remove_line", "delete_invoice")
MUTATIONS += ("add_invoice", "update_client", "delete_client", "add_client")
_HTML = {"Content-Type": "text/html; charset=utf-8"}


def _locked(method: Callable[..., Any]) -> Callable[..., Any]:
    """`method` run under the app's lock, so a mutation never interleaves with a request, and counted (`changes`)."""

    @functools.wraps(method)
    def run(self: App, *args: Any, **kwargs: Any) -> Any:
        with self.lock:
            try:
                return method(self, *args, **kwargs)
            finally:
                self.changes += 1

    return run


class App:
    """A provider simulator (`create_app`): `name`, `@route` handlers, `guard`, `config`, `summary_figures`,
    the mutation API; `serve` is the one path every request takes."""

    name: ClassVar[str] = ""
    routes: ClassVar[list[Route]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found = {n: getattr(f, "__route__", None) for k in reversed(cls.__mro__) for n, f in vars(k).items()}
        cls.routes = [Route(m, p, _compile(p), n, pub) for n, spec in found.items() if spec for m, p, pub in [spec]]
        for name in MUTATIONS:  # every mutation a subclass defines holds the lock (`_locked`)
            if name in vars(cls):
                setattr(cls, name, _locked(vars(cls)[name]))

    def __init__(self, *, latency: float = 0.0) -> None:
        self.log, self.latency, self.lock = RequestLog(), latency, threading.RLock()
        self.faults: list[Fault] = []
        self._last_bodies: dict[tuple[str, str], bytes] = {}
        self.changes = 0  # mutations applied so far: what `derived` values are kept for
        self._derived: dict[Hashable, tuple[Hashable, Any]] = {}
        self._derived_at = 0

    # --- what providers declare -------------------------------------------------------------
    def guard(self, request: Request, route: Route | None) -> Response | None:
        """Refuse a request before routing (auth, rate limit), or None to let it through."""
        return None

    def not_found(self, request: Request) -> Response:
        return json_response({"error": "Not Found"}, 404)

    def route_path(self, request: Request) -> str:
        """The path the route table is matched against (the request's own by default)."""
        return request.path

    def config(self, base_url: str) -> dict[str, str | None]:
        """The pipeline's configuration keys (`api_key`, `base_url`...) that point it at this sandbox."""
        raise NotImplementedError

    def summary_figures(self) -> tuple[int, Iterable[tuple[str | None, Decimal, int]]]:
        """The client count and, per invoice, its currency (None if unknown), total and line count."""
        raise NotImplementedError

    # --- the shared mutation API, in the provider's own field names, applied as the real API would:
    # `update_invoice(id, **fields)` (`NOW` stands for the sandbox's clock), `update_line(id, index, **fields)`,
    # `remove_line(id, index=-1)` (totals follow; returns the line), `delete_invoice(id)`, `update_client(id,
    # **fields)`, `delete_client(id, *, listed=False)` (`listed` keeps it listed: deleted between the listing and
    # the next call), `add_invoice(client_id=None, **fields)` and `add_client(**fields)` (both return the new id).
    update_invoice: Callable[..., None]
    update_line: Callable[..., None]
    remove_line: Callable[..., Any]
    delete_invoice: Callable[..., None]
    update_client: Callable[..., None]
    delete_client: Callable[..., None]
    add_invoice: Callable[..., Any]
    add_client: Callable[..., Any]

    # --- what the framework derives -----------------------------------------------------------
    def derived(self, key: Hashable, compute: Callable[[], T], basis: Hashable = None) -> T:
        """`compute()`, kept until a mutation is applied or `basis` changes: what a listing derives from the whole
        account (its order, a filter's choice) is derived once for every page that follows, not once per page."""
        if self._derived_at != self.changes:
            self._derived.clear()
            self._derived_at = self.changes
        kept = self._derived.get(key)
        if kept is None or kept[0] != basis:
            if len(self._derived) >= 16:
                del self._derived[next(iter(self._derived))]
            kept = self._derived[key] = (basis, compute())
        return kept[1]

    def summary(self) -> dict[str, Any]:
        """Counts and exact totals per currency of what the sandbox holds, from its own data."""
        with self.lock:
            clients, figures = self.summary_figures()
            figures = list(figures)
        totals: dict[str, Decimal] = {}
        for currency, total, _ in figures:
            if currency is not None:
                totals[currency] = totals.get(currency, Decimal(0)) + total
        lines, unknown = sum(n for *_, n in figures), sum(1 for currency, *_ in figures if currency is None)
        result = {"clients": clients, "invoices": len(figures), "lines": lines, "totals": dict(sorted(totals.items()))}
        return {**result, "currency_unknown": unknown} if unknown else result

    def pipeline_env(self, base_url: str) -> dict[str, str]:
        """Variables (`sources.<name>.PROVIDER.env`) that point the pipeline at this sandbox."""
        provider = importlib.import_module(f"sources.{self.name}").PROVIDER
        return {provider.env(key): value for key, value in self.config(base_url).items() if value is not None}

    def inject(self, kind: str, path: str | None = None, **options: Any) -> Fault:
        """Inject a `Fault`: `status`, `truncate` (half the body), `not_json` (HTML), `slow` (held `seconds`),
        `silent` (held past any timeout), `repeat` (the path's previous body)."""
        fault = Fault(kind, path, **options)
        with self.lock:
            self.faults.append(fault)
        return fault

    def handle(self, request: Request) -> Response:
        """Route one request through the guard to its handler; a `Refused` answers its response."""
        path, method = self.route_path(request), request.method
        matched = next(((r, m) for r in self.routes if r.method == method and (m := r.regex.match(path))), None)
        if not (matched and matched[0].public):
            refused = self.guard(request, matched[0] if matched else None)
            if refused is not None:
                return refused
        if matched is None:
            return self.not_found(request)
        with self.lock:
            try:
                return getattr(self, matched[0].handler)(request, **matched[1].groupdict())
            except Refused as refusal:
                return refusal.response

    def serve(self, request: Request) -> Response:
        """Answer one request as the network sees it: latency, faults, the handler, the log."""
        if self.latency:
            time.sleep(self.latency)
        with self.lock:
            fault = next((f for f in self.faults if f.takes(request)), None)
        if fault and fault.kind == "status":
            body = fault.body if fault.body is not None else {"error": "injected fault"}
            response = Response(fault.status, body, dict(_HTML)) if isinstance(body, bytes) else json_response(body)
            response.status = fault.status
            response.headers.update(fault.headers)
        elif fault and fault.kind == "not_json":
            response = Response(200, fault.body or b"<html><body>Welcome</body></html>", _HTML)
        else:
            try:
                response = self.handle(request)
            except Exception as exc:  # a sandbox bug must show as a 500, like a real server's
                response = json_response({"error": f"sandbox error: {type(exc).__name__}: {exc}"}, 500)
            response.headers.update(request.reply_headers)
            key = (request.method, request.path)
            if fault and fault.kind == "repeat" and key in self._last_bodies:
                response.body = self._last_bodies[key]
            elif response.status == 200 and any(f.kind == "repeat" for f in self.faults):
                self._last_bodies[key] = response.body  # kept only while a repeat is injected
            if fault and fault.kind == "truncate":
                response.body = response.body[: len(response.body) // 2]
            if fault and fault.kind in ("slow", "silent"):
                response.delay = fault.seconds if fault.kind == "slow" else max(fault.seconds, 3600.0)
        self.log.add(LoggedRequest(request.method, request.path, request.query, response.status, time.time()))
        return response

    def transport(self) -> httpx.BaseTransport:
        """This app as an httpx transport; held past the read timeout, `httpx.ReadTimeout` as on a socket."""

        def answer(sent: httpx.Request) -> httpx.Response:
            body = sent.read()
            request = Request.parse(sent.method, sent.url.raw_path.decode("ascii"), sent.headers.items(), body)
            response = self.serve(request)
            if response.delay:
                timeout = (sent.extensions.get("timeout") or {}).get("read")
                if timeout is not None and response.delay >= timeout:
                    time.sleep(timeout)
                    raise httpx.ReadTimeout("the sandbox did not answer within the read timeout", request=sent)
                time.sleep(response.delay)
            content = b"" if sent.method == "HEAD" else response.body
            return httpx.Response(response.status, headers=response.headers, content=content)

        return httpx.MockTransport(answer)
