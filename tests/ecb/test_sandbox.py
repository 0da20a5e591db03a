"""The ECB sandbox serves the ECB's files in their layouts, for business days up to its clock."""

from __future__ import annotations

import datetime as dt
import io
import zipfile

import httpx
import pytest

from sandbox import framework
from sandbox.ecb import create_feed, data
from sandbox.server import available, feeds
from sources.ecb.rates import csv_rates, xml_rates
from tests.support import serve

D = dt.date


def at(monkeypatch: pytest.MonkeyPatch, when: dt.datetime) -> None:
    monkeypatch.setattr(framework, "utc_now", lambda: when)


def test_target_closing_days_and_weekends_have_no_rates() -> None:
    assert data.easter(2026) == D(2026, 4, 5) and data.easter(2027) == D(2027, 3, 28)
    closed = {D(2026, 1, 1), D(2026, 4, 3), D(2026, 4, 6), D(2026, 5, 1), D(2026, 12, 25), D(2026, 12, 26)}
    assert data.target_holidays(2026) == closed
    days = data.business_days(D(2026, 3, 30), D(2026, 4, 12))
    assert days == [D(2026, 4, d) for d in (10, 9, 8, 7, 2, 1)] + [D(2026, 3, 31), D(2026, 3, 30)]


def test_the_day_appears_once_published(monkeypatch: pytest.MonkeyPatch) -> None:
    app = create_feed(history_start=D(2026, 11, 1))
    at(monkeypatch, dt.datetime(2026, 12, 7, 14, 59, tzinfo=dt.UTC))  # a Monday, before publication
    assert app.latest_day() == D(2026, 12, 4)
    at(monkeypatch, dt.datetime(2026, 12, 7, 15, 0, tzinfo=dt.UTC))
    assert app.latest_day() == D(2026, 12, 7)
    assert app.rates(D(2026, 12, 6)) == {} and app.rates(D(2026, 12, 8)) == {}
    assert app.rates(D(2026, 12, 7)) == data.rates_of(42, D(2026, 12, 7))


def test_every_file_holds_the_same_rates(monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC))
    app = create_feed(history_start=D(2026, 6, 1), seed=9)
    with serve(app) as server, httpx.Client(base_url=f"{server.url}/stats/eurofxref") as client:
        daily = client.get("/eurofxref-daily.xml")
        assert daily.headers["content-type"] == "text/xml"
        assert {(r.rate_date, r.currency, r.per_eur) for r in xml_rates(io.BytesIO(daily.content))} == {
            (D(2026, 12, 7), c, v) for c, v in app.rates(D(2026, 12, 7)).items()
        }
        ninety = list(xml_rates(io.BytesIO(client.get("/eurofxref-hist-90d.xml").content)))
        assert min(r.rate_date for r in ninety) == D(2026, 9, 9)  # the oldest business day of the 90
        archive = zipfile.ZipFile(io.BytesIO(client.get("/eurofxref-hist.zip").content))
        assert archive.namelist() == ["eurofxref-hist.csv"]
        history = list(csv_rates(io.TextIOWrapper(archive.open("eurofxref-hist.csv"), encoding="utf-8")))
        full_xml = list(xml_rates(io.BytesIO(client.get("/eurofxref-hist.xml").content)))
        assert {tuple(r) for r in history} == {tuple(r) for r in full_xml}
        assert {tuple(r) for r in ninety} < {tuple(r) for r in history}
        assert min(r.rate_date for r in history) == D(2026, 6, 1)
        assert client.get("/eurofxref.zip").headers["content-type"] == "application/zip"
        assert client.get("/nothing.xml").status_code == 404


def test_same_day_same_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    at(monkeypatch, dt.datetime(2026, 12, 7, 18, 0, tzinfo=dt.UTC))
    first, second = create_feed(history_start=D(2026, 11, 1)), create_feed(history_start=D(2026, 11, 1))
    for path in ("/stats/eurofxref/eurofxref-hist.zip", "/stats/eurofxref/eurofxref.zip"):
        a = httpx.Client(transport=first.transport()).get(f"http://ecb{path}").content
        b = httpx.Client(transport=second.transport()).get(f"http://ecb{path}").content
        assert a == b


def test_failing_on_demand() -> None:
    app = create_feed(history_start=D(2026, 11, 1), fail_status=500)
    response = httpx.Client(transport=app.transport()).get("http://ecb/stats/eurofxref/eurofxref-daily.xml")
    assert response.status_code == 500 and b"<html>" in response.content


def test_listed_as_a_feed_not_as_a_provider() -> None:
    assert "ecb" in feeds() and "ecb" not in available()
    app = create_feed()
    assert app.pipeline_env("http://127.0.0.1:9") == {
        "SOURCES__ECB__BASE_URL": "http://127.0.0.1:9/stats/eurofxref",
        "SOURCES__ECB__ENABLED": "true",
    }
