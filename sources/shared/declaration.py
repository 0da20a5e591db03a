"""What a provider declares so that the shared driver can load one of its accounts.

A provider folder describes its API as data: where its listings are, how they page, how a
request authenticates, how far each listing can be read incrementally, and which of its own
functions map a record. `sources.shared.driver` runs any such declaration; no provider name
appears in the shared layer.

    Api
    ├── auth          QueryKey | HeaderKey | ClientCredentials
    ├── clients       Listing   the account's clients
    ├── invoices      Listing   each client's documents ("{client_id}" in its path) or the account's
    ├── lookups       Lookup    small side resources fetched once, when a mapping first asks
    └── mapping       Mappers   the provider's record mappers, one per record type

Paginators are configured by dotted paths into the response body, after dlt's `rest_client`
paginators (`PageNumberPaginator(total_path=...)`, `JSONResponseCursorPaginator(cursor_path=...)`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sources.shared.cursor import OverlapCursor, Tracker, UpdateCursor

if TYPE_CHECKING:
    from sources.shared.model import MappedInvoice
    from sources.shared.structure import Reads


def dig(body: Any, path: str) -> Any:
    """The value at a dotted `path` in a decoded JSON body (`"meta.last_page"`); the body itself
    for an empty path; None where any step is missing or not an object."""
    if not path:
        return body
    value = body
    for key in path.split("."):
        if not isinstance(value, Mapping):
            return None
        value = value.get(key)
    return value


def dig_first(body: Any, paths: Sequence[str]) -> Any:
    """The first of `paths` that holds a value other than None or ``""``."""
    for path in paths:
        value = dig(body, path)
        if value not in (None, ""):
            return value
    return None


# --- paging --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PageNumber:
    """`page`/`per_page` paging.

    The listing ends on an empty page; when `total_path` is given, on the page that reaches the
    total page count; otherwise on a page shorter than the page size (read back from
    `size_path` when the API says which size it served, else the size asked for).

    Example body for `PageNumber(total_path="pagination.total_pages",
    current_path="pagination.current_page", size_path="pagination.per_page")`:

        {"invoices": [...], "pagination": {"current_page": 1, "total_pages": 4, "per_page": 30}}

    Attributes:
        page_param, size_param: the query parameters.
        total_path, current_path, size_path: dotted paths into the body, or None where absent.
        start: the number of the first page.
    """

    page_param: str = "page"
    size_param: str = "per_page"
    total_path: str | None = None
    current_path: str | None = None
    size_path: str | None = None
    start: int = 1


@dataclass(frozen=True)
class Token:
    """An opaque token handed back unchanged, plus a has-more flag.

    Example body for `Token(token_paths=("data.next",), has_more_path="data.more")`:

        {"data": {"items": [...], "next": "b3BhcXVl", "more": true}}

    Attributes:
        token_param, size_param: the query parameters.
        token_paths: where the next token may be, tried in order.
        has_more_path: the flag that says another page follows.
    """

    token_param: str
    size_param: str
    token_paths: tuple[str, ...]
    has_more_path: str


Paging = PageNumber | Token


# --- settings ------------------------------------------------------------------------------

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""The default of a setting that has none: the account cannot run until it is set."""


@dataclass(frozen=True)
class Setting:
    """One key of a provider's stanza (`[sources.<provider>]`, env `SOURCES__<PROVIDER>__<KEY>`),
    declared once and read by the pipeline, remap, Dagster and the docs.

    Attributes:
        name: the key.
        default: its value when unset; `REQUIRED` when it has none.
        type: what the value is coerced to (`str`, `int`, `float`, `bool`, `list`).
        secret: read from `.dlt/secrets.toml` (or the environment), redacted everywhere.
        account: the value is the `account` column of the account's rows (at most one per provider).
        help: one line for the docs and for errors.
    """

    name: str
    default: Any = None
    type: Any = str
    secret: bool = False
    account: bool = False
    help: str = ""

    @property
    def required(self) -> bool:
        return self.default is REQUIRED


API_KEY = Setting("api_key", REQUIRED, secret=True, help="the API key")


# --- authentication ----------------------------------------------------------------------


@dataclass(frozen=True)
class QueryKey:
    """A secret sent as a query parameter (`?api_key=...`).

    Attributes:
        param: the query parameter.
        secret: the setting that holds it.
    """

    param: str
    secret: Setting = API_KEY

    @property
    def secrets(self) -> tuple[Setting, ...]:
        return (self.secret,)


@dataclass(frozen=True)
class HeaderKey:
    """A secret sent in a header, raw or after a scheme word (`Bearer <key>`).

    Attributes:
        header: the header name.
        secret: the setting that holds it.
        scheme: the scheme word; the account's `auth_scheme` setting overrides it when given.
    """

    header: str
    secret: Setting = API_KEY
    scheme: str | None = None

    @property
    def secrets(self) -> tuple[Setting, ...]:
        return (self.secret,)


@dataclass(frozen=True)
class ClientCredentials:
    """OAuth 2.0 client credentials (RFC 6749 §4.4): a token from a form POST, cached, renewed
    when `renew_fraction` of its lifetime remains and once after a 401.

    Attributes:
        client_id, client_secret: the settings that hold the credentials.
        header, scheme: where the token travels (`X-Auth-Token: <token>`, or `Authorization: Bearer`).
        default_lifetime: seconds assumed when the token response has no `expires_in`.
        renew_fraction: the share of the lifetime left when the token is renewed.
    """

    client_id: Setting
    client_secret: Setting
    header: str = "Authorization"
    scheme: str | None = "Bearer"
    default_lifetime: float = 3600.0
    renew_fraction: float = 0.1

    @property
    def secrets(self) -> tuple[Setting, ...]:
        return (self.client_id, self.client_secret)


AuthScheme = QueryKey | HeaderKey | ClientCredentials


# --- incremental reading -----------------------------------------------------------------


class CursorPolicy:
    """How far a listing can be read incrementally: the filter its requests carry, the tracker
    that decides which listed records changed, and what a complete listing leaves in state.

    Attributes:
        incremental: the API is asked only for what changed, so a listing never shows a deletion
            and is swept in full now and then (docs/canonical-model.md, "Deletions").
        batchable: per-client listings may be committed in batches of clients
            (sources/shared/sweep.py): only where no server-side mark has to move at once.
        state_key: where its mark lives in the account's state ("" where it keeps none).
    """

    incremental = False
    batchable = True
    state_key = ""

    def params(self, state: Mapping[str, Any]) -> dict[str, Any]:
        """The filter of the next request, from the mark in `state`."""
        return {}

    def tracker(self, state: MutableMapping[str, Any]) -> Tracker | None:
        """What decides, record by record, whether a listed record changed (None: every one did)."""
        return None

    def listed(self, state: MutableMapping[str, Any], listed_at: int) -> None:
        """A listing that started at `listed_at` (Unix seconds) was read completely."""


@dataclass(frozen=True)
class FullListing(CursorPolicy):
    """No cursor: every record listed is written on every run (the API has no change marker)."""


@dataclass(frozen=True)
class UpdatedAt(CursorPolicy):
    """A client-side update cursor: every page is read, only records whose update timestamp
    moved since the last successful run are mapped and written.

    Attributes:
        state_key: the cursor's name in the account's dlt state.
    """

    state_key: str = "updated_at"

    def tracker(self, state: MutableMapping[str, Any]) -> Tracker | None:
        return UpdateCursor(state, self.state_key)


@dataclass(frozen=True)
class UpdatedSince(CursorPolicy):
    """A server-side filter: the API is asked only for records updated since the previous mark
    minus `overlap` (Unix seconds in `param`); records seen again inside the overlap are written
    only if their timestamp changed. Such a listing never shows a deletion, so now and then
    (the account's `reconcile_every`) it is read without the filter: a sweep.

    Attributes:
        param: the query parameter.
        overlap: how far before the mark the next run asks again.
        state_key: the cursor's name in the account's dlt state.
    """

    param: str
    overlap: dt.timedelta
    state_key: str = "updated_at"
    incremental = True
    batchable = False

    def params(self, state: Mapping[str, Any]) -> dict[str, Any]:
        since = OverlapCursor(dict(state), self.state_key, self.overlap).since
        return {self.param: since} if since is not None else {}

    def tracker(self, state: MutableMapping[str, Any]) -> Tracker | None:
        return OverlapCursor(state, self.state_key, self.overlap)


@dataclass(frozen=True)
class ListedSince(CursorPolicy):
    """A server-side filter for records that carry no timestamp of their own: the next run asks
    for what changed since this listing started, minus `overlap`. Swept like `UpdatedSince`.

    Attributes:
        param: the query parameter (Unix seconds).
        overlap: safety margin before the previous listing's start.
        state_key: where the start of the last complete listing is kept.
    """

    param: str
    overlap: dt.timedelta
    state_key: str = "listed_at"
    incremental = True
    batchable = False

    def params(self, state: Mapping[str, Any]) -> dict[str, Any]:
        previous = state.get(self.state_key)
        if previous is None:
            return {}
        return {self.param: int(previous) - int(self.overlap.total_seconds())}

    def listed(self, state: MutableMapping[str, Any], listed_at: int) -> None:
        state[self.state_key] = listed_at


# --- listings ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Listing:
    """One listing of the API.

    Attributes:
        path: relative to the base URL; `{client_id}` makes it a per-client listing.
        records: dotted path of the record list in the body (empty: the body is the list).
        paging: how it pages.
        method: `GET`, or `POST` for an API that lists through a POST.
        params, json: fixed query parameters and JSON body (the source adds the account's own).
        read_only_post: a POST that only reads, so it may be retried like a GET.
        parallel_pages: fetch pages 2..N at once when the first page gives the page count.
        total_path: a record count the API reports on every page; if it changes between pages
            the listing shifted while it was read and is not trusted as complete.
        keep: records for which it returns False are not this listing's (an API that ignored a
            filter, say) and are passed over silently.
        page_context: reads something from each page's body that its records' mapping needs
            (date formats announced per page, for example).
        restore_context: turns a page context kept in dlt state (a dataclass as its fields, see
            `sources.shared.inputs`) back into what `page_context` returned, for remap.
        cursor: how far the listing can be read incrementally.
        status_hints: what to tell the user when the listing fails with a given HTTP status.
        page_size: the default page size asked for.
        complete: whether reading every page gives every record of its scope (the account's,
            or one client's). False for a listing narrowed by a filter of the account's
            configuration: a record it leaves out may still exist, so it never marks anything
            deleted (docs/canonical-model.md, "Deletions").
    """

    path: str
    records: str = ""
    paging: Paging = field(default_factory=PageNumber)
    method: str = "GET"
    params: Mapping[str, Any] = field(default_factory=dict)
    json: Any = None
    read_only_post: bool = False
    parallel_pages: bool = False
    total_path: str | None = None
    keep: Callable[[Any], bool] | None = None
    page_context: Callable[[Any], Any] | None = None
    restore_context: Callable[[Any], Any] | None = None
    cursor: CursorPolicy = field(default_factory=FullListing)
    status_hints: Mapping[int, str] = field(default_factory=dict)
    page_size: int = 100
    complete: bool = True

    @property
    def per_client(self) -> bool:
        return "{client_id}" in self.path


@dataclass(frozen=True)
class Lookup:
    """A small resource read once per run, the first time a mapping asks for it.

    Attributes:
        path: relative to the base URL.
        read: turns the body into what the mapping uses.
        missing_ok: a 404 gives `read(None)` instead of failing the account.
    """

    path: str
    read: Callable[[Any], Any]
    missing_ok: bool = False


@dataclass(frozen=True)
class Context:
    """What a mapper may know beyond the record itself.

    What a mapper reads of `page`, `options` and `lookup` is kept with the record's payload
    (`sources.shared.inputs`), so that `remap` maps the stored payload exactly as the load did.

    Attributes:
        provider, account: the row keys.
        page: the value of the listing's `page_context` for the record's page.
        client_names: client id → name, from this run's clients listing.
        options: the account's mapping options (a fallback currency, for example).
        lookup: `lookup(name)` gives a declared `Lookup`'s value, fetched on first use.
    """

    provider: str
    account: str
    page: Any = None
    client_names: Mapping[str, str | None] = field(default_factory=dict)
    options: Mapping[str, Any] = field(default_factory=dict)
    lookup: Callable[[str], Any] = field(default=lambda name: None)


InvoiceMapper = Callable[[Any, Context], "MappedInvoice"]
ClientMapper = Callable[[Any, Context], dict[str, Any]]


@dataclass(frozen=True)
class Mappers:
    """The provider's mapping: one function per record type, written once (docs/adding-a-provider.md).

    A mapper returns the canonical row(s) of one record, without `raw` (the driver keeps the
    record's JSON text as the provider sent it, and each line's), and raises `ValueProblem` for
    what cannot be mapped without guessing.

    Attributes:
        client, invoice: map one record.
        lines: the top-level field of an invoice record that lists its lines, in line order
            (line `n` is its `n`-th element): each line's `raw` is cut from there.
        invoice_updated_at: the update timestamp the invoice cursor compares, read before
            mapping so an unchanged invoice costs no mapping; raise `ValueProblem` if unreadable.
        account_from: reads the account label from a client record, for APIs whose account
            is known only from their data (used when the account setting is empty).
        invoice_client: reads an invoice's client id, for mappings that copy the client's name
            onto the invoice: an invoice whose client was renamed is then written again even
            if it did not change itself.
        reads: the JSON paths these functions read in a record, per record type: a field the
            mapping reads that vanishes from the provider's payloads is an error of the
            `schema_drift` check (sources/shared/structure.py, docs/checks.md).
    """

    client: ClientMapper
    invoice: InvoiceMapper
    lines: str = "items"
    invoice_updated_at: Callable[[Any, Context], dt.datetime | None] | None = None
    account_from: Callable[[Any], str | None] | None = None
    invoice_client: Callable[[Any], str | None] | None = None
    reads: Reads | None = None


@dataclass(frozen=True)
class Api:
    """A provider's API as the driver sees it.

    Attributes:
        provider: the provider's name (folder, source, config section, `provider` column).
        auth: how requests authenticate.
        clients, invoices: the two listings.
        mapping: the record mappers.
        headers: sent on every request.
        error_message: reads the provider's error envelope from a decoded body (an error
            response, or a 200 whose body carries an error instead of records).
        lookups: side resources by name.
        auth_help: where the user finds or fixes credentials, added to authentication errors.
        is_login_redirect: whether a redirect's `Location` is the provider's login page (the
            API then did not accept the credentials).
        requests_per_minute: the default proactive budget (None: rely on 429 + Retry-After).
        concurrency: per-client listings (or pages) in flight at once.
    """

    provider: str
    auth: AuthScheme
    clients: Listing
    invoices: Listing
    mapping: Mappers
    headers: Mapping[str, str] = field(default_factory=dict)
    error_message: Callable[[Any], str | None] | None = None
    lookups: Mapping[str, Lookup] = field(default_factory=dict)
    auth_help: str = ""
    is_login_redirect: Callable[[str], bool] | None = None
    requests_per_minute: float | None = None
    concurrency: int = 4
