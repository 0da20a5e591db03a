"""Records keep the JSON text the provider sent: the page is decoded once, each record's text
is the very bytes of the body, and an invoice's lines are cut from it the same way."""

from __future__ import annotations

from decimal import Decimal

from sources.shared.records import Record, line_texts, split_page

BODY = (
    b'{"invoices": [ {"id": 7, "total": 12.30, "name": "Ca\\u00e7a", "items": [{"q": "1.0"}, {"q": 2}]},'
    b' {"total": 1}, [1, 2] ], "pagination": {"current_page": 1, "total_pages": 1.0}}'
)


def test_records_keep_their_text_as_sent_and_decode_exactly() -> None:
    body, records = split_page(BODY, "invoices")
    assert records is not None and body["invoices"] is records
    first, second, third = records
    assert first.text == '{"id": 7, "total": 12.30, "name": "Ca\\u00e7a", "items": [{"q": "1.0"}, {"q": 2}]}'
    assert first.value["total"] == Decimal("12.30") and str(first.value["total"]) == "12.30"
    assert first.value["name"] == "Caça"
    assert (first.id, first.key) == ("7", "7")
    # No id: the key is a stable hash of the text; not an object: no id either.
    assert second.id is None and second.key.startswith("sha256:") and second.key == Record(second.text).key
    assert third.value == [1, 2] and third.id is None
    # The rest of the body is decoded as usual, numbers exactly.
    assert body["pagination"] == {"current_page": 1, "total_pages": Decimal("1.0")}


def test_a_nested_path_and_a_bare_array() -> None:
    body, records = split_page(
        b'{"content": {"data": {"invoices": [{"id": "a"}], "more": true}}}', "content.data.invoices"
    )
    assert records is not None and [r.text for r in records] == ['{"id": "a"}']
    assert body["content"]["data"]["more"] is True
    body, records = split_page(b'[{"id": 1},{"id": 2}]', "")
    assert records is not None and [r.id for r in records] == ["1", "2"] and body is records


def test_a_body_without_records_where_they_should_be_is_returned_decoded() -> None:
    assert split_page(b'{"error": "Unauthorized"}', "invoices") == ({"error": "Unauthorized"}, None)
    assert split_page(b'{"invoices": {"error": "x"}}', "invoices") == ({"invoices": {"error": "x"}}, None)
    assert split_page(b'{"message": "no"}', "") == ({"message": "no"}, None)


def test_lines_are_cut_from_the_record_text_in_order() -> None:
    _, records = split_page(BODY, "invoices")
    assert records is not None
    assert line_texts(records[0], "items") == ['{"q": "1.0"}', '{"q": 2}']
    assert line_texts(records[1], "items") is None  # no lines field
    assert line_texts(Record('{"items": {"q": 1}}'), "items") is None  # not a list
    assert line_texts(Record('{"lineItems": []}'), "lineItems") == []
