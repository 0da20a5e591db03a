"""Load again when another load changed the same dataset's schema at the same moment.

Several pipelines may load into one dataset at once: the accounts an orchestrator runs in
parallel into a shared Postgres (orchestration/), each with its own dlt pipeline. The first loads
of each create the same tables, and the `pipeline_runs` table is shared by all. Postgres can then
answer one of two concurrent `CREATE TABLE`s with a deadlock, which dlt reports as a
`SchemaUpdateTransientError` and documents as safe to retry: the package stays pending, and the
next load reads the destination's schema again and applies only what is still missing
(https://dlthub.com/docs/running-in-production/running, "Retrying only the schema update").

`loading` runs a step that ends in a load (`pipeline.run`, or `normalize` + `load`) and, on that
error only, loads the pending package again a few times with a short, jittered pause. Any other
failure, and a terminal schema error (a permission, a tampered schema), is raised at once.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable
from typing import Any, TypeVar

import dlt
from dlt.common.destination.exceptions import SchemaUpdateTransientError

from pipelines.failures import chain
from sources.shared.http import interruptible_sleep

log = logging.getLogger("billing.run")

T = TypeVar("T")

ATTEMPTS = 6  # the first load and five more
FIRST_PAUSE = 0.5  # seconds, doubled on each attempt (0.5, 1, 2, 4, 8), each up to twice as long with jitter


def schema_race(exc: BaseException) -> bool:
    """Whether `exc` is dlt's report of a schema change that conflicted with another load's."""
    return any(isinstance(e, SchemaUpdateTransientError) for e in chain(exc))


def loading(pipeline: dlt.Pipeline, step: Callable[[], T], what: str) -> T | Any:
    """Run `step`; when its load fails on a schema race (`schema_race`), load the pipeline's
    pending packages again, up to `ATTEMPTS` loads in all. `what` names the load in the log."""
    try:
        return step()
    except Exception as exc:
        if not schema_race(exc):
            raise
        failure: Exception = exc
    for attempt in range(1, ATTEMPTS):
        pause = FIRST_PAUSE * 2 ** (attempt - 1) * (1 + random.random())
        log.warning(
            "%s: another load was changing the warehouse's tables at the same moment; loading again in %.1f s "
            "(attempt %d of %d)",
            what,
            pause,
            attempt + 1,
            ATTEMPTS,
        )
        interruptible_sleep(pause)
        try:
            return pipeline.load()
        except Exception as exc:
            if not schema_race(exc):
                raise
            failure = exc
    raise failure
