"""Nothing is lost: a record that cannot be mapped is kept raw in `unmapped_records` with its
reason, never moves a cursor past itself, is tried again on every run, and once the provider
fixes it lands in the canonical tables and leaves `unmapped_records` (docs/canonical-model.md)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from sandbox import fohlio, kitchen
from tests.support import Workspace, serve

pytestmark = pytest.mark.integration


def unmapped(workspace: Workspace) -> list[tuple[Any, ...]]:
    return workspace.query(
        "SELECT provider, record_type, record_key, reason, raw FROM billing.unmapped_records ORDER BY record_key"
    )


def count(workspace: Workspace, table: str, provider: str) -> int:
    return int(workspace.scalar(f"SELECT count(*) FROM billing.{table} WHERE provider = ?", provider))


class KitchenAmount:
    """Kitchen (a client-side update cursor): an amount written `"1,50"`."""

    provider, field, broken = "kitchen", "total_amount", "1,50"

    def __init__(self) -> None:
        self.app = kitchen.create_app()
        self.record = self.app.invoices[3]
        self.id, self.good = str(self.record["id"]), self.record[self.field]

    def set(self, value: Any) -> None:
        self.record[self.field] = value


class FohlioStatus:
    """Fohlio (a server-side `updated_since` cursor): a status word outside the documented enum."""

    provider, field, broken = "fohlio", "status", "under_review"

    def __init__(self) -> None:
        self.app = fohlio.create_app()
        self.record = sorted(self.app.team.invoices.items())[3][1]
        self.id, self.good = str(self.record.id), self.record.status

    def set(self, value: Any) -> None:
        self.record.status = value


@pytest.mark.parametrize("case", [KitchenAmount, FohlioStatus])
def test_a_record_that_cannot_be_mapped_is_kept_retried_and_lands_once_fixed(workspace: Workspace, case: Any) -> None:
    broken = case()
    app, provider, field = broken.app, broken.provider, broken.field
    expected = app.summary()["invoices"]
    # The provider's data is wrong; its update timestamp stays as it was.
    broken.set(broken.broken)
    with serve(app) as server:
        env = {**app.pipeline_env(server.url), "PROVIDERS": provider}
        first = workspace.run(env)
        assert first.code == 0, first.output
        assert count(workspace, "invoices", provider) == expected - 1
        rows = unmapped(workspace)
        assert [(r[0], r[1], r[2]) for r in rows] == [(provider, "invoice", broken.id)]
        assert field in rows[0][3] and broken.broken in rows[0][3]
        assert json.loads(rows[0][4])[field] == broken.broken  # kept raw, untouched
        assert "skipped 1 — invoice not mapped" in first.stderr

        again = workspace.run(env)  # still broken: still kept, still reported, nothing else rewritten
        assert again.code == 0 and "skipped 1 — invoice not mapped" in again.stderr
        assert len(unmapped(workspace)) == 1

        broken.set(broken.good)  # fixed upstream without a new update timestamp
        fixed = workspace.run(env)
        assert fixed.code == 0, fixed.output
    assert count(workspace, "invoices", provider) == expected
    assert unmapped(workspace) == []
    assert (
        workspace.scalar(
            "SELECT count(*) FROM billing.invoices WHERE provider = ? AND invoice_id = ?", provider, broken.id
        )
        == 1
    )
