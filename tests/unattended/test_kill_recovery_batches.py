"""Kills of a run that commits in batches of clients (InvoiceXpress, one client listed at a time):
between batches, mid-extract, during a batch's merge, before its package is completed; one
ordinary run afterwards leaves what one clean run writes (tests/unattended/test_kill_recovery.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from sandbox import invoicexpress
from tests.unattended.test_kill_recovery import assert_kills_recover

pytestmark = pytest.mark.integration

# InvoiceXpress, 12 clients in batches of 4, one client listed at a time: one request lists the
# clients, then one per client; each batch is one extract, normalize and load.
BATCH_KILL_POINTS = {
    "between batches, the first loaded": "dlt.common.storages.load_storage:LoadStorage.complete_load_package:1:after",
    "the second batch extracted, not loaded": "dlt.extract.storage:ExtractStorage.commit_new_load_package:2:after",
    "mid-extract of the second batch": "sources.shared.http:ApiClient.request:7:before",
    # The first batch is appended (the account held no rows) but for its history, which is merged
    # (the first merge job); the second batch merges every table.
    "the history of the first batch merged, the batch not completed": (
        "dlt.destinations.job_client_impl:SqlLoadJob.run:1:after"
    ),
    "during the merge of the second batch": "dlt.destinations.job_client_impl:SqlLoadJob.run:2:after",
    "the last batch loaded, package not completed": (
        "dlt.common.storages.load_storage:LoadStorage.complete_load_package:3:before"
    ),
}
BATCH_ENV = {"BATCH_CLIENTS": "4", "SOURCES__INVOICEXPRESS__CONCURRENCY": "1"}


@pytest.mark.timeout(900)  # a sweep of kills, each followed by a run: minutes on a busy machine
def test_a_run_killed_between_batches_of_clients_is_repaired_by_the_next_ordinary_run(tmp_path: Path):
    assert_kills_recover(tmp_path, invoicexpress.create_app(), BATCH_KILL_POINTS, BATCH_ENV)
