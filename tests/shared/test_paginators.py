import httpx
import pytest

from sources.shared.errors import MalformedResponseError, PaginationLoopError
from sources.shared.http import ApiClient
from sources.shared.paginators import (
    LaravelPaginator,
    PageNumberPaginator,
    ShortPagePaginator,
    TokenPaginator,
    paginate,
    paginate_numbered,
)

RECORDS = [{"id": i} for i in range(1, 8)]


def client_for(handler) -> tuple[ApiClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    return ApiClient("p", "a", "https://api.test", transport=httpx.MockTransport(record)), seen


def page_of(request: httpx.Request, size: int) -> tuple[int, list[dict]]:
    page = int(request.url.params.get("page", 1))
    return page, RECORDS[(page - 1) * size : page * size]


def ids(pages) -> list[int]:
    return [item["id"] for page in pages for item in page.items]


def test_page_number_stops_at_total_pages_and_reads_per_page_back():
    def handler(request):
        # The account setting overrides the requested per_page: 3 per page, 3 pages.
        page, items = page_of(request, 3)
        return httpx.Response(
            200,
            json={
                "items": items,
                "pagination": {"current_page": page, "total_pages": 3, "per_page": 3, "total_entries": 7},
            },
        )

    client, seen = client_for(handler)
    meta = lambda d: (d["pagination"]["current_page"], d["pagination"]["total_pages"], d["pagination"]["per_page"])  # noqa: E731
    pages = list(paginate(client, "/x", PageNumberPaginator(30, meta), lambda d: d["items"]))
    assert ids(pages) == list(range(1, 8)) and len(seen) == 3
    assert seen[0].url.params["per_page"] == "30"


def test_page_number_stops_on_an_empty_page():
    client, seen = client_for(lambda r: httpx.Response(200, json={"items": page_of(r, 5)[1]}))
    pages = list(paginate(client, "/x", PageNumberPaginator(5, lambda d: (None, None, None)), lambda d: d["items"]))
    assert ids(pages) == list(range(1, 8)) and len(seen) == 3


def test_laravel_follows_meta_and_builds_the_next_page_itself():
    def handler(request):
        page, items = page_of(request, 3)
        return httpx.Response(
            200,
            json={
                "data": items,
                "links": {"next": "/api/invoices/?page=999" if page < 3 else None},  # relative, and wrong: ignored
                "meta": {"current_page": page, "last_page": 3, "per_page": 3, "total": 7},
            },
        )

    client, seen = client_for(handler)
    pages = list(paginate(client, "/api/invoices", LaravelPaginator(3), lambda d: d["data"]))
    assert ids(pages) == list(range(1, 8))
    assert [r.url.params["page"] for r in seen] == ["1", "2", "3"]


def test_bare_arrays_end_on_a_short_page():
    client, seen = client_for(lambda r: httpx.Response(200, json=page_of(r, 3)[1]))
    pages = list(paginate(client, "/x", ShortPagePaginator(3), lambda d: d))
    assert ids(pages) == list(range(1, 8)) and len(seen) == 3


def test_bare_arrays_of_exact_multiple_end_on_the_empty_page():
    client, seen = client_for(lambda r: httpx.Response(200, json=page_of(r, 7)[1]))
    assert ids(paginate(client, "/x", ShortPagePaginator(7), lambda d: d)) == list(range(1, 8))
    assert len(seen) == 2


def test_token_pagination_passes_the_token_back_and_stops_on_has_more_false():
    tokens = {None: ("t1", True, [1, 2]), "t1": ("t2", True, [3, 4]), "t2": ("", False, [5])}

    def handler(request):
        nxt, more, items = tokens[request.url.params.get("paginationToken")]
        return httpx.Response(
            200,
            json={
                "content": {
                    "data": {"invoices": [{"id": i} for i in items], "paginationToken": nxt, "hasMorePages": more}
                }
            },
        )

    client, seen = client_for(handler)
    read = lambda d: (d["content"]["data"]["paginationToken"], d["content"]["data"]["hasMorePages"])  # noqa: E731
    pages = list(paginate(client, "/x", TokenPaginator(2, read), lambda d: d["content"]["data"]["invoices"]))
    assert ids(pages) == [1, 2, 3, 4, 5]
    assert [r.url.params.get("paginationToken") for r in seen] == [None, "t1", "t2"]


def test_a_token_that_repeats_is_an_error_not_a_loop():
    def handler(request):
        token = request.url.params.get("paginationToken")
        return httpx.Response(200, json={"items": [{"id": token or "first"}], "token": "same", "more": True})

    client, _ = client_for(handler)
    with pytest.raises(PaginationLoopError):
        list(paginate(client, "/x", TokenPaginator(1, lambda d: (d["token"], d["more"])), lambda d: d["items"]))


def test_a_page_that_comes_back_identical_is_an_error():
    # The API ignores `page` and always answers page 1.
    client, _ = client_for(lambda r: httpx.Response(200, json=RECORDS[:3]))
    with pytest.raises(PaginationLoopError):
        list(paginate(client, "/x", ShortPagePaginator(3), lambda d: d))


def test_a_body_without_a_list_is_malformed():
    client, _ = client_for(lambda r: httpx.Response(200, json={"unexpected": True}))
    with pytest.raises(MalformedResponseError):
        list(paginate(client, "/x", ShortPagePaginator(3), lambda d: d.get("items")))


def numbered_handler(size: int, total_pages: int | None = None, ignore_page: bool = False):
    def handler(request):
        page = 1 if ignore_page else int(request.url.params.get("page", 1))
        items = RECORDS[(page - 1) * size : page * size]
        meta = {"current_page": page, "total_pages": total_pages, "per_page": size}
        return httpx.Response(200, json={"items": items, "pagination": meta})

    return handler


META = lambda d: (d["pagination"]["current_page"], d["pagination"]["total_pages"], d["pagination"]["per_page"])  # noqa: E731


def test_numbered_pages_after_the_first_are_fetched_in_parallel_and_yielded_in_order():
    client, seen = client_for(numbered_handler(2, total_pages=4))
    pages = list(paginate_numbered(client, "/x", PageNumberPaginator(2, META), lambda d: d["items"], workers=3))
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert ids(pages) == list(range(1, 8)) and len(seen) == 4


def test_numbered_pages_without_a_count_fall_back_to_one_after_another():
    client, seen = client_for(numbered_handler(3, total_pages=None))
    pages = list(paginate_numbered(client, "/x", PageNumberPaginator(3, META), lambda d: d["items"], workers=3))
    assert ids(pages) == list(range(1, 8)) and [p.number for p in pages] == [1, 2, 3]
    assert len(seen) == 3  # page 1 is not fetched twice


def test_numbered_pages_that_repeat_the_first_are_an_error():
    client, _ = client_for(numbered_handler(3, total_pages=3, ignore_page=True))
    with pytest.raises(PaginationLoopError):
        list(paginate_numbered(client, "/x", PageNumberPaginator(3, META), lambda d: d["items"], workers=2))
