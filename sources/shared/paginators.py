"""Pagination for the four styles our providers use, with a guard against pages that repeat.

The shape follows dlt's `rest_client` paginators: a fresh paginator per listing shapes the
first request, reads each response to decide the next one, and says when to stop.

    PageNumberPaginator   page/per_page with a total page count (InvoiceXpress `pagination`)
    TokenPaginator        opaque token plus a has-more flag (Flow Payroll)
    LaravelPaginator      Laravel resource collections: `links` + `meta` (Kitchen)
    ShortPagePaginator    bare JSON arrays that end on a short or empty page (Fohlio)

`paginate` drives any of them and raises `PaginationLoopError` when a page number or token
comes back twice, or when the API hands back the very same page again. `paginate_numbered`
fetches the pages of a numbered listing in parallel once the first page says how many there are.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from sources.shared.concurrency import bounded_map
from sources.shared.errors import MalformedResponseError, PaginationLoopError
from sources.shared.http import ApiClient, ApiResponse


@dataclass
class Page:
    """One page of a listing: its items, the decoded response and its 1-based position."""

    items: list[Any]
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
    """`page`/`per_page` with a total page count in the body.

    Stops when the current page reaches the total, or on an empty page. `per_page` is read
    back from the response (an account setting may override what we asked for), and a page
    shorter than it also ends the listing when no total is given.

    Args:
        per_page: what to ask for.
        meta: extracts `(current_page, total_pages, per_page)` from the body; any may be None.
    """

    def __init__(
        self,
        per_page: int,
        meta: Callable[[Any], tuple[Any, Any, Any]],
        page_param: str = "page",
        per_page_param: str = "per_page",
    ) -> None:
        self.per_page, self.meta = per_page, meta
        self.page_param, self.per_page_param = page_param, per_page_param

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.page_param: 1, self.per_page_param: self.per_page}

    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        if not items:
            return None
        current, total, per_page = (_int(v) for v in self.meta(response.data))
        current = current or _int(params[self.page_param]) or 1
        if total is not None:
            return {**params, self.page_param: current + 1} if current < total else None
        if per_page is not None and len(items) < per_page:
            return None
        return {**params, self.page_param: current + 1}

    def position(self, params: Mapping[str, Any]) -> Any:
        return params.get(self.page_param)


class LaravelPaginator(PageNumberPaginator):
    """Laravel resource collections: `meta.current_page`/`meta.last_page`/`meta.per_page`.

    The next URL is built from the page number, not taken from `links.next`, which the docs
    show relative on one page and absolute on another.
    """

    def __init__(self, per_page: int, page_param: str = "page", per_page_param: str = "per_page") -> None:
        def meta(data: Any) -> tuple[Any, Any, Any]:
            m = data.get("meta") if isinstance(data, dict) else None
            if not isinstance(m, dict):
                return None, None, None
            return m.get("current_page"), m.get("last_page"), m.get("per_page")

        super().__init__(per_page, meta, page_param, per_page_param)


class ShortPagePaginator(Paginator):
    """Bare JSON arrays: a page shorter than `per_page` (or empty) is the last one."""

    def __init__(self, per_page: int, page_param: str = "page", per_page_param: str = "per_page") -> None:
        self.per_page, self.page_param, self.per_page_param = per_page, page_param, per_page_param

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.page_param: 1, self.per_page_param: self.per_page}

    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        if len(items) < self.per_page:
            return None
        return {**params, self.page_param: int(params[self.page_param]) + 1}

    def position(self, params: Mapping[str, Any]) -> Any:
        return params.get(self.page_param)


class TokenPaginator(Paginator):
    """An opaque token handed back unchanged, plus a has-more flag.

    Args:
        page_size: what to ask for.
        read: extracts `(next_token, has_more)` from the body.
        token_param, size_param: query parameter names.
    """

    def __init__(
        self,
        page_size: int,
        read: Callable[[Any], tuple[Any, Any]],
        token_param: str = "paginationToken",
        size_param: str = "pageSize",
    ) -> None:
        self.page_size, self.read = page_size, read
        self.token_param, self.size_param = token_param, size_param

    def first(self, params: dict[str, Any]) -> dict[str, Any]:
        return {**params, self.size_param: self.page_size}

    def next(self, response: ApiResponse, items: list[Any], params: dict[str, Any]) -> dict[str, Any] | None:
        token, has_more = self.read(response.data)
        if not has_more or not token:
            return None
        return {**params, self.token_param: token}

    def position(self, params: Mapping[str, Any]) -> Any:
        return params.get(self.token_param)


def _records(client: ApiClient, response: ApiResponse, items: Callable[[Any], Any]) -> list[Any]:
    """The records of a page; a body without a list where they should be is malformed."""
    page_items = items(response.data)
    if not isinstance(page_items, list):
        raise MalformedResponseError(
            client.provider,
            client.account,
            f"{response.url}: expected a list of records, got {type(page_items).__name__}",
            url=response.url,
        )
    return page_items


def _fingerprint(items: list[Any]) -> tuple[Any, ...] | None:
    if not items:
        return None
    ids = tuple(item.get("id") if isinstance(item, dict) else None for item in items)
    return ids if any(i is not None for i in ids) else None


def paginate(
    client: ApiClient,
    path: str,
    paginator: Paginator,
    items: Callable[[Any], Any],
    *,
    method: str = "GET",
    params: Mapping[str, Any] | None = None,
    json: Any = None,
    idempotent: bool | None = None,
    max_pages: int = 1_000_000,
) -> Iterator[Page]:
    """Yield every page of a listing.

    Args:
        client: the provider's `ApiClient`.
        path: the listing's path.
        paginator: a fresh paginator for this listing.
        items: extracts the list of records from a decoded body.
        method, params, json, idempotent: as for `ApiClient.request`.
        max_pages: a hard stop, as a last guard.

    Raises:
        PaginationLoopError: a page number or token repeats, or the same page comes back.
        MalformedResponseError: the body has no list where the items should be.
    """
    yield from _walk(
        client,
        path,
        paginator,
        items,
        paginator.first(dict(params or {})),
        method=method,
        json=json,
        idempotent=idempotent,
        max_pages=max_pages,
    )


def _walk(
    client: ApiClient,
    path: str,
    paginator: Paginator,
    items: Callable[[Any], Any],
    request_params: dict[str, Any],
    *,
    method: str = "GET",
    json: Any = None,
    idempotent: bool | None = None,
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
        position = paginator.position(request_params)
        if position is not None:
            if position in seen_positions:
                raise PaginationLoopError(
                    client.provider,
                    client.account,
                    f"{path}: page {position!r} was requested twice; the API is paging in a loop",
                    "report this to the provider; no data was committed for this run",
                )
            seen_positions.add(position)
        if prefetched is not None:
            response, prefetched = prefetched, None
        else:
            response = client.request(method, path, params=request_params, json=json, idempotent=idempotent)
        page_items = _records(client, response, items)
        fingerprint = _fingerprint(page_items)
        if fingerprint is not None and fingerprint == previous:
            raise PaginationLoopError(
                client.provider,
                client.account,
                f"{path}: page {number} repeats the previous page; the API ignores the page request",
                "report this to the provider; no data was committed for this run",
                url=response.url,
            )
        previous = fingerprint
        yield Page(page_items, response, number)
        next_params = paginator.next(response, page_items, request_params)
        if next_params is None or number >= max_pages:
            return
        request_params = next_params


def paginate_numbered(
    client: ApiClient,
    path: str,
    paginator: PageNumberPaginator,
    items: Callable[[Any], Any],
    *,
    workers: int,
    params: Mapping[str, Any] | None = None,
) -> Iterator[Page]:
    """Every page of a listing whose first page gives the page count, pages 2..N in parallel
    (at most `workers` in flight), yielded in page order.

    Falls back to `paginate` when the first page gives no page count. Raises
    `PaginationLoopError` when a later page repeats the first (the API ignores `page`).
    """
    first_params = paginator.first(dict(params or {}))
    first = client.request("GET", path, params=first_params)
    _, total, _ = paginator.meta(first.data)
    total_pages = _int(total)
    if total_pages is None:
        yield from _walk(client, path, paginator, items, first_params, prefetched=first)
        return
    first_items = _records(client, first, items)
    yield Page(first_items, first, 1)
    if not first_items or total_pages <= 1:
        return
    first_print = _fingerprint(first_items)

    def fetch(number: int) -> Page:
        response = client.request("GET", path, params={**first_params, paginator.page_param: number})
        page_items = _records(client, response, items)
        if first_print is not None and _fingerprint(page_items) == first_print:
            raise PaginationLoopError(
                client.provider,
                client.account,
                f"{path}: page {number} repeats page 1; the API ignores the page request",
                "report this to the provider; no data was committed for this run",
                url=response.url,
            )
        return Page(page_items, response, number)

    done: dict[int, Page] = {}
    expected = 2
    for number, page in bounded_map(fetch, range(2, total_pages + 1), workers):
        done[number] = page
        while expected in done:
            yield done.pop(expected)
            expected += 1
