import httpx
import pytest

from sources.shared.declaration import PageNumber, Token
from sources.shared.errors import ApiError, MalformedResponseError, PaginationLoopError
from sources.shared.http import ApiClient
from sources.shared.paginators import (
    PageNumberPaginator,
    Request,
    TokenPaginator,
    paginate,
    paginate_numbered,
)

# The four shapes the providers declare.
NUMBERED = PageNumber(
    total_path="pagination.total_pages", current_path="pagination.current_page", size_path="pagination.per_page"
)
LARAVEL = PageNumber(total_path="meta.last_page", current_path="meta.current_page", size_path="meta.per_page")
BARE = PageNumber()
FLOW = Token("paginationToken", "pageSize", ("content.data.paginationToken",), "content.data.hasMorePages")

RECORDS = [{"id": i} for i in range(1, 8)]


def client_for(handler, error_message=None) -> tuple[ApiClient, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    client = ApiClient("p", "a", "https://api.test", transport=httpx.MockTransport(record), error_message=error_message)
    return client, seen


def page_of(request: httpx.Request, size: int) -> tuple[int, list[dict]]:
    page = int(request.url.params.get("page", 1))
    return page, RECORDS[(page - 1) * size : page * size]


def ids(pages) -> list[int]:
    return [item.value["id"] for page in pages for item in page.items]


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
    pages = list(paginate(client, Request("/x", "items"), PageNumberPaginator(NUMBERED, 30)))
    assert ids(pages) == list(range(1, 8)) and len(seen) == 3
    assert seen[0].url.params["per_page"] == "30"


def test_page_number_stops_on_an_empty_page():
    client, seen = client_for(lambda r: httpx.Response(200, json={"items": page_of(r, 5)[1]}))
    pages = list(paginate(client, Request("/x", "items"), PageNumberPaginator(NUMBERED, 5)))
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
    pages = list(paginate(client, Request("/api/invoices", "data"), PageNumberPaginator(LARAVEL, 3)))
    assert ids(pages) == list(range(1, 8))
    assert [r.url.params["page"] for r in seen] == ["1", "2", "3"]


def test_bare_arrays_end_on_a_short_page():
    client, seen = client_for(lambda r: httpx.Response(200, json=page_of(r, 3)[1]))
    pages = list(paginate(client, Request("/x"), PageNumberPaginator(BARE, 3)))
    assert ids(pages) == list(range(1, 8)) and len(seen) == 3


def test_bare_arrays_of_exact_multiple_end_on_the_empty_page():
    client, seen = client_for(lambda r: httpx.Response(200, json=page_of(r, 7)[1]))
    assert ids(paginate(client, Request("/x"), PageNumberPaginator(BARE, 7))) == list(range(1, 8))
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
    pages = list(paginate(client, Request("/x", "content.data.invoices"), TokenPaginator(FLOW, 2)))
    assert ids(pages) == [1, 2, 3, 4, 5]
    assert [r.url.params.get("paginationToken") for r in seen] == [None, "t1", "t2"]


def test_a_token_that_repeats_is_an_error_not_a_loop():
    def handler(request):
        token = request.url.params.get("paginationToken")
        token = request.url.params.get("t")
        return httpx.Response(200, json={"items": [{"id": token or "first"}], "token": "same", "more": True})

    client, _ = client_for(handler)
    with pytest.raises(PaginationLoopError):
        list(paginate(client, Request("/x", "items"), TokenPaginator(Token("t", "size", ("token",), "more"), 1)))


def test_a_page_that_comes_back_identical_is_an_error():
    # The API ignores `page` and always answers page 1.
    client, _ = client_for(lambda r: httpx.Response(200, json=RECORDS[:3]))
    with pytest.raises(PaginationLoopError):
        list(paginate(client, Request("/x"), PageNumberPaginator(BARE, 3)))


def test_a_body_without_a_list_is_malformed():
    client, _ = client_for(lambda r: httpx.Response(200, json={"unexpected": True}))
    with pytest.raises(MalformedResponseError, match="expected a list of records at items"):
        list(paginate(client, Request("/x", "items"), PageNumberPaginator(BARE, 3)))


def test_a_200_whose_body_is_an_error_quotes_the_api():
    client, _ = client_for(
        lambda r: httpx.Response(200, json={"error": "Project not found"}),
        error_message=lambda body: body.get("error") if isinstance(body, dict) else None,
    )
    with pytest.raises(ApiError, match="with an error instead of records: Project not found"):
        list(paginate(client, Request("/x"), PageNumberPaginator(BARE, 3)))


def numbered_handler(size: int, total_pages: int | None = None, ignore_page: bool = False):
    def handler(request):
        page = 1 if ignore_page else int(request.url.params.get("page", 1))
        items = RECORDS[(page - 1) * size : page * size]
        meta = {"current_page": page, "total_pages": total_pages, "per_page": size}
        return httpx.Response(200, json={"items": items, "pagination": meta})

    return handler


def test_numbered_pages_after_the_first_are_fetched_in_parallel_and_yielded_in_order():
    client, seen = client_for(numbered_handler(2, total_pages=4))
    pages = list(paginate_numbered(client, Request("/x", "items"), PageNumberPaginator(NUMBERED, 2), workers=3))
    assert [p.number for p in pages] == [1, 2, 3, 4]
    assert ids(pages) == list(range(1, 8)) and len(seen) == 4


def test_numbered_pages_without_a_count_fall_back_to_one_after_another():
    client, seen = client_for(numbered_handler(3, total_pages=None))
    pages = list(paginate_numbered(client, Request("/x", "items"), PageNumberPaginator(NUMBERED, 3), workers=3))
    assert ids(pages) == list(range(1, 8)) and [p.number for p in pages] == [1, 2, 3]
    assert len(seen) == 3  # page 1 is not fetched twice


def test_numbered_pages_that_repeat_the_first_are_an_error():
    client, _ = client_for(numbered_handler(3, total_pages=3, ignore_page=True))
    with pytest.raises(PaginationLoopError):
        list(paginate_numbered(client, Request("/x", "items"), PageNumberPaginator(NUMBERED, 3), workers=2))
