"""Each provider's declaration of the fields its mapping reads (`READS` in its mapping.py, wired as
`Mappers.reads`) is exactly what the mapping reads: every mapper run over the records a sandbox
serves (its published samples among them) through the real driver, over the published examples
kept in tests/fixtures/published, and over each of these records without each of its fields and
with it null (so that every branch that reads another field when one is missing is taken), notes
every key it looks up (`tests/shared/reading.py`); that set is the declaration, no more, no less."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import importlib
import json
from decimal import DecimalException
from pathlib import Path
from typing import Any

import pytest

from pipelines.registry import discover
from sandbox.server import available
from sources.shared.driver import DictStates, run_account
from sources.shared.structure import CLIENT, INVOICE, LINE
from sources.shared.values import ValueProblem, loads
from tests.shared.reading import Reading, ablations, reading

PROVIDERS = sorted(discover())
PUBLISHED = Path(__file__).parents[1] / "fixtures" / "published"
# Records the mapping is given beside the sandbox's, as (record type, record):
EXTRA: dict[str, list[tuple[str, Any]]] = {
    # Published examples no sandbox serves (tests/fixtures/published/README.md).
    "kitchen": [(INVOICE, loads((PUBLISHED / "kitchen" / "archive_invoice.json").read_text()))],
    "fohlio": [(INVOICE, r) for r in loads((PUBLISHED / "fohlio" / "list_client_invoices.json").read_text())],
}
ABLATED = 4  # records of each type, from the sandbox, whose every field is also taken away and nulled


def read_by_mapping(name: str) -> Reading:
    sandbox = importlib.import_module(f"sandbox.{name}")
    provider = importlib.import_module(f"sources.{name}").PROVIDER
    app = sandbox.create_app()
    api, account = provider.account(provider.values(given=app.config("http://sandbox.test")))
    api, found = reading(api)
    for _ in run_account(api, dataclasses.replace(account, transport=app.transport()), DictStates()):
        pass
    served = list(found.calls)
    assert {kind for kind, *_ in served} == {INVOICE, CLIENT}
    mappers = {INVOICE: provider.api.mapping.invoice, CLIENT: provider.api.mapping.client}
    context = {kind: args for kind, function, _, args in served if function is mappers[kind]}
    replay = [(kind, function, record, args) for kind, function, record, args in served]
    for kind, record in [*EXTRA.get(name, []), *variants(name, served, mappers)]:
        replay.append((kind, mappers[kind], record, context[kind]))
    for kind in (INVOICE, CLIENT):
        chosen = [call for call in served if call[0] == kind and call[1] is mappers[kind]][:ABLATED]
        for _, function, record, args in chosen + [c for c in replay if c not in served and c[0] == kind]:
            for variant in ablations(record):
                mapped(found, kind, function, variant, args)
    return found


def variants(name: str, served: list[Any], mappers: dict[str, Any]) -> list[tuple[str, Any]]:
    """Records in a shape the sandbox does not serve but the provider's docs do."""

    def first(kind: str) -> Any:
        return next(copy.deepcopy(r) for k, f, r, _ in served if k == kind and f is mappers[kind])

    if name == "fohlio":
        # docs/providers.md §4.4: a currency may come as an object `{"iso_code": ...}` (the team dump's).
        invoice = first(INVOICE)
        invoice["client"] = {**(invoice.get("client") or {}), "data": {"currency": {"iso_code": "EUR"}}}
        return [(INVOICE, invoice)]
    if name == "flowpayroll":
        # docs/providers.md §2: clients carry a `physicalAddress{…}` beside `billingAddress`.
        client = first(CLIENT)
        client["billingAddress"], client["physicalAddress"] = None, {"countryCode": "IE"}
        return [(CLIENT, client)]
    return []


def mapped(found: Reading, kind: str, function: Any, record: Any, args: tuple[Any, ...]) -> None:
    # Not mappable without that field: reported as unmapped, which is the point of reading it.
    with contextlib.suppress(ValueProblem, DecimalException):
        found.read(kind, function, record, *args)


def test_every_provider_has_a_sandbox_to_read_records_from() -> None:
    assert set(PROVIDERS) == set(available())


@pytest.mark.parametrize("name", PROVIDERS)
def test_the_declared_reads_are_what_the_mapping_reads(name: str) -> None:
    declared = discover()[name].api.mapping.reads
    assert declared is not None, f"sources/{name}/api.py: Mappers(reads=mapping.READS)"
    read = read_by_mapping(name).by_type()
    for record_type in (INVOICE, LINE, CLIENT):
        wanted = declared.of(record_type)
        assert read[record_type] - wanted == set(), f"{name} {record_type}: read but not declared"
        assert wanted - read[record_type] == set(), f"{name} {record_type}: declared but never read"


def test_the_recording_notes_nested_reads_present_or_not() -> None:
    found = Reading("items")
    record = {"a": {"b": 1}, "items": [{"x": {"y": 2}}, {"x": None}], "n": None}

    def mapper(r: Any) -> Any:
        lines = [item.get("x") and item["x"].get("y") for item in r.get("items") or []]
        return r["a"].get("b"), r.get("missing"), "n" in r, lines

    assert found.read(INVOICE, mapper, record) == (1, None, True, [2, None])
    assert found.by_type() == {
        INVOICE: {"$.a", "$.a.b", "$.missing", "$.n", "$.items"},
        LINE: {"$.items[].x", "$.items[].x.y"},
        CLIENT: set(),
    }
    assert json.dumps(record)  # the record itself is untouched
