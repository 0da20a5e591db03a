"""What a mapping reads besides its record is kept beside the payload (`Recorder`), and remap
maps the payload again with exactly that (`stored_context`), never with a guess."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from sources.shared.declaration import Context
from sources.shared.inputs import MissingInput, Recorder, legacy_inputs, stored_context
from sources.shared.values import loads


@dataclasses.dataclass(frozen=True)
class Formats:
    date: str


def mapper(record: dict[str, Any], ctx: Context) -> str:
    """Reads a lookup (present and absent keys), an option and the page, as a mapping may."""
    projects = ctx.lookup("projects")
    currency = projects[record["project"]] if record["project"] in projects else ctx.options.get("currency")
    return f"{currency} {ctx.page.date if ctx.page else '-'}"


BASE = Context("p", "a", page=Formats("yyyy-MM-dd"), options={"currency": "USD", "unused": 1})


def test_what_the_mapping_read_is_kept_and_nothing_else() -> None:
    recorder = Recorder(keep_page=True)
    ctx = recorder.context(dataclasses.replace(BASE, lookup=lambda name: {"1": "EUR", "2": "GBP"}))
    recorder.start()
    assert mapper({"project": "1"}, ctx) == "EUR yyyy-MM-dd"
    kept = recorder.take(BASE.page)
    assert kept is not None and loads(kept) == {
        "page": {"date": "yyyy-MM-dd"},
        "lookups": {"projects": {"values": {"1": "EUR"}}},
    }
    recorder.start()
    assert mapper({"project": "9"}, ctx) == "USD yyyy-MM-dd"
    kept = recorder.take(BASE.page)
    assert kept is not None and loads(kept) == {
        "page": {"date": "yyyy-MM-dd"},
        "lookups": {"projects": {"missing": ["9"]}},
        "options": {"values": {"currency": "USD"}},
    }


def test_a_mapping_that_reads_nothing_besides_its_record_keeps_nothing() -> None:
    recorder = Recorder(keep_page=False)
    recorder.context(BASE)
    recorder.start()
    assert recorder.take(None) is None


@pytest.mark.parametrize("project", ["1", "9"])
def test_remap_answers_exactly_as_the_load_did(project: str) -> None:
    recorder = Recorder(keep_page=True)
    ctx = recorder.context(dataclasses.replace(BASE, lookup=lambda name: {"1": "EUR"}))
    recorder.start()
    loaded = mapper({"project": project}, ctx)
    stored = stored_context(Context("p", "a"), recorder.take(BASE.page), lambda kept: Formats(**kept), True)
    assert mapper({"project": project}, stored) == loaded


def test_an_input_the_load_did_not_keep_is_missing_never_guessed() -> None:
    kept = '{"lookups": {"projects": {"values": {"1": "EUR"}}}}'
    stored = stored_context(Context("p", "a"), kept, None, False)
    with pytest.raises(MissingInput, match="the lookup 'projects'"):
        mapper({"project": "2"}, stored)
    with pytest.raises(MissingInput, match="the page context"):
        stored_context(Context("p", "a"), kept, None, True)


def test_inputs_an_earlier_version_kept_in_state_are_read_in_todays_form() -> None:
    state = {
        "mapping_inputs": {
            "options": {"currency": "USD"},
            "lookups": {"projects": {"1": "EUR"}},
            "contexts": {"invoice": [{"date": "yyyy-MM-dd"}, {"date": "dd/MM/yyyy"}]},
            "context_of": {"invoice": {"inv-2": 1}},
        }
    }
    kept = legacy_inputs(state, "invoice", "inv-2")
    stored = stored_context(Context("p", "a"), kept, lambda kept: Formats(**kept), True)
    assert mapper({"project": "7"}, stored) == "USD dd/MM/yyyy"  # the whole lookup was kept: 7 had none
    assert legacy_inputs({}, "invoice", "x") is None
