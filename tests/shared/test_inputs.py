"""What loads keep for remap in the account's state (sources/shared/inputs.py), read back."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sources.flowpayroll.mapping import Formats
from sources.shared.inputs import MissingInput, StoredInputs, remember_context, remember_lookup, remember_options


def test_page_contexts_are_kept_once_each_and_records_point_to_theirs() -> None:
    state: dict[str, Any] = {}
    usual, other = Formats(), Formats(date="dd.MM.yyyy")
    remember_context(state, "invoice", ["1", "2"], usual)
    remember_context(state, "invoice", ["2", "3"], other)
    remember_context(state, "invoice", ["3"], usual)  # written again on a page with the usual formats
    state = json.loads(json.dumps(state))  # as dlt keeps it
    inputs = StoredInputs(state)

    def restore(kept: Any) -> Formats:
        return Formats(**kept)

    assert [inputs.context("invoice", k, restore) for k in ("1", "2", "3")] == [usual, other, usual]
    assert state["mapping_inputs"]["context_of"]["invoice"] == {"2": 1}  # only what is not the first
    with pytest.raises(MissingInput):
        inputs.context("client", "1", restore)  # no client context was ever kept


def test_options_and_lookups_read_back_and_missing_ones_raise() -> None:
    state: dict[str, Any] = {}
    remember_options(state, {"currency": "USD"})
    remember_lookup(state, "projects", {"7": "EUR"})
    inputs = StoredInputs(state)
    assert inputs.options().get("currency") == "USD"
    assert inputs.lookup("projects") == {"7": "EUR"}
    with pytest.raises(MissingInput):
        inputs.lookup("team")
    with pytest.raises(MissingInput):
        StoredInputs({}).options().get("currency")
