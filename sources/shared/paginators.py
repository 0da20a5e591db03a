"""Pagination configured by data, with a guard against pages that repeat.

The shape follows dlt's `rest_client` paginators: a fresh paginator per listing shapes the
first request, reads each response to decide the next one, and says when to stop. What a
provider declares (`sources.shared.declaration.PageNumber` or `Token`: parameter names and
dotted paths into the body) configures one of the two paginators here:

    PageNumberPaginator   page/per_page; ends on the total page count, a short page or an empty one
    TokenPaginator        opaque token plus a has-more flag

`paginate` drives either and raises `PaginationLoopError` when a page number or token comes back
twice, or when the API hands back the very same page again. `paginate_numbered` fetches the
pages of a numbered listing in parallel once the first page says how many there are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sources.shared.concurrency import bounded_map
from sources.shared.declaration import PageNumber, Paging, Token, dig, dig_first
from sources.shared.errors import ApiError, MalformedResponseError, PaginationLoopError
from sources.shared.http import ApiClient, ApiResponse
from sources.shared.records import Record

LOOP_HINT = "report this to the provider; no data was committed for this listing"


@dataclass
class Page:
    """One page of a listing: its items, the decoded response and its 1-based position."""

    items: list[Record]
    response: ApiResponse
    number: int


class Paginator(ABC):
    """Decides the request for each page and when a listing ends."""

    @abstractmethod
    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        """Query parameters of the first request."""

    @abstractmethod
    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        """Query parameters of the next request, or None when the listing is complete."""

    def position(self, params: Mapping[str, Any]) -> Any:
        """What identifies a request in the listing (page number, token), to detect loops."""
        return None


def _int(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class PageNumberPaginator(Paginator):
    """`page`/`per_page` paging as a `PageNumber` declaration describes it."""

    def __init__(self, config: PageNumber, size: int) -> None:
        self.config, self.size = config, size

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.config.page_param: self.config.start, self.config.size_param: self.size}

    def total_pages(self, body: Any) -> int | None:
        return _int(dig(body, self.config.total_path)) if self.config.total_path else None

    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        if not items:
            return None
        config, body = self.config, response.data
        current = (_int(dig(body, config.current_path)) if config.current_path else None) or _int(
            params[config.page_param]
        )
        current = config.start if current is None else current
        total = self.total_pages(body)
        if total is not None:
            return {**params, config.page_param: current + 1} if current < total else None
        served = _int(dig(body, config.size_path)) if config.size_path else None
        size = served if served is not None else (None if config.size_path else self.size)
        if size is not None and len(items) < size:
            return None
        return {**params, config.page_param: current + 1}

    def position(self, params: Mapping[str, Any]) -> Any:
        return params.get(self.config.page_param)


class TokenPaginator(Paginator):
    """An opaque token handed back unchanged, as a `Token` declaration describes it."""

    def __init__(self, config: Token, size: int) -> None:
        self.config, self.size = config, size

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.config.size_param: self.size}

    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        token = dig_first(response.data, self.config.token_paths)
        if not dig(response.data, self.config.has_more_path) or not token:
            return None
        return {**params, self.config.token_param: token}

    def position(self, params: Mapping[str, Any]) -> Any:
        return params.get(self.config.token_param)


def paginator_for(paging: Paging, size: int) -> Paginator:
    """A fresh paginator for one listing."""
    if isinstance(paging, Token):
        return TokenPaginator(paging, size)
    return PageNumberPaginator(paging, size)


def records_of(client: ApiClient, response: ApiResponse, path: str) -> list[Record]:
    """The records of a page. A body without a list where they should be is an error: the
    provider's own words when its body carries an error message, else a malformed response."""
    items = dig(response.data, path)
    if isinstance(items, list):
        return items
    message = client.error_in(response.data)
    if message:
        raise ApiError(
            client.provider,
            client.account,
            f"{response.url} answered HTTP {response.status} with an error instead of records: {message}",
            url=response.url,
            status=response.status,
        )
    raise MalformedResponseError(
        client.provider,
        client.account,
        f"{response.url}: expected a list of records at {path or 'the top level'}, got {type(items).__name__}",
        url=response.url,
        status=response.status,
    )


def _fingerprint(items: list[Record]) -> tuple[str, ...] | None:
    """What tells a page from the next: its records' JSON texts (an API that ignores the page
    asked for serves the very same page again)."""
    return tuple(item.text for item in items) if items else None


@dataclass(frozen=True)
class Request:
    """The fixed part of a listing's requests."""

    path: str
    records: str = ""
    method: str = "GET"
    params: Mapping[str, Any] | None = None
    json: Any = None
    idempotent: bool | None = None


def paginate(
    client: ApiClient, request: Request, paginator: Paginator, *, max_pages: int = 1_000_000
) -> Iterator[Page]:
    """Yield every page of a listing.

    Raises:
        PaginationLoopError: a page number or token repeats, or the same page comes back.
        MalformedResponseError: the body has no list where the records should be.
    """
    yield from _walk(client, request, paginator, paginator.first(dict(request.params or {})), max_pages=max_pages)


def _walk(
    client: ApiClient,
    request: Request,
    paginator: Paginator,
    params: dict[str, Any],
    *,
    max_pages: int = 1_000_000,
    prefetched: ApiResponse | None = None,
) -> Iterator[Page]:
    """`paginate` from given first-request parameters; `prefetched` is that request's response
    when the caller already has it."""
    seen_positions: set[Any] = set()
    previous: tuple[Any, ...] | None = None
    number = 0
    while True:
        number += 1
        position = paginator.position(params)
        if position is not None:
            if position in seen_positions:
                raise PaginationLoopError(
                    client.provider,
                    client.account,
                    f"{request.path}: page {position!r} was requested twice; the API is paging in a loop",
                    LOOP_HINT,
                )
            seen_positions.add(position)
        if prefetched is not None:
            response, prefetched = prefetched, None
        else:
            response = client.request(
                request.method,
                request.path,
                params=params,
                json=request.json,
                idempotent=request.idempotent,
                records=request.records,
            )
        items = records_of(client, response, request.records)
        fingerprint = _fingerprint(items)
        if fingerprint is not None and fingerprint == previous:
            raise PaginationLoopError(
                client.provider,
                client.account,
                f"{request.path}: page {number} repeats the previous page; the API ignores the page request",
                LOOP_HINT,
                url=response.url,
            )
        previous = fingerprint
        yield Page(items, response, number)
        next_params = paginator.next(response, items, params)
        if next_params is None or number >= max_pages:
            return
        params = next_params


def paginate_numbered(
    client: ApiClient, request: Request, paginator: PageNumberPaginator, *, workers: int
) -> Iterator[Page]:
    """Every page of a listing whose first page gives the page count, pages 2..N in parallel
    (at most `workers` in flight), yielded in page order.

    Falls back to `paginate` when the first page gives no page count. Raises
    `PaginationLoopError` when a later page repeats the first (the API ignores `page`).
    """
    first_params = paginator.first(dict(request.params or {}))
    first = client.request(
        request.method, request.path, params=first_params, json=request.json, records=request.records
    )
    total_pages = paginator.total_pages(first.data)
    if total_pages is None:
        yield from _walk(client, request, paginator, first_params, prefetched=first)
        return
    first_items = records_of(client, first, request.records)
    yield Page(first_items, first, 1)
    if not first_items or total_pages <= 1:
        return
    first_print = _fingerprint(first_items)
    page_param = paginator.config.page_param

    def fetch(number: int) -> Page:
        params = {**first_params, page_param: number}
        response = client.request(
            request.method, request.path, params=params, json=request.json, records=request.records
        )
        items = records_of(client, response, request.records)
        if first_print is not None and _fingerprint(items) == first_print:
            raise PaginationLoopError(
                client.provider,
                client.account,
                f"{request.path}: page {number} repeats page 1; the API ignores the page request",
                LOOP_HINT,
                url=response.url,
            )
        return Page(items, response, number)

    done: dict[int, Page] = {}
    expected = 2
    for number, page in bounded_map(fetch, range(2, total_pages + 1), workers):
        done[number] = page
        while expected in done:
            yield done.pop(expected)
            expected += 1
