"""One dlt trace for a whole `billing-elt load`, so that `dlt pipeline <name> trace` shows the run.

dlt keeps the trace of the last `pipeline.run` only (`trace.pickle` in the pipeline's folder),
and a run calls it once per provider (once per account with `account_concurrency = 1`) and once
more for `pipeline_runs`, so dlt's own trace showed the last of these alone. `RunTrace` is a
dlt progress collector that keeps the steps of every dlt trace the run ends (an interrupted
run's pending load included), in order, and `save` writes them as one trace in dlt's place:
started when the first step started, finished when the last ended, with each provider's
`extract`, `normalize`, `load` and `run` steps (docs/operations.md, "dlt's own tools").
"""

from __future__ import annotations

from typing import Any

import dlt
from dlt.common.runtime.collector import NullCollector
from dlt.common.utils import uniq_id
from dlt.pipeline.trace import PipelineStepTrace, PipelineTrace, save_trace


class RunTrace(NullCollector):
    """Collects the steps of every dlt trace ended while it is the pipeline's collector."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[PipelineStepTrace] = []
        self.first: PipelineTrace | None = None
        self.last: PipelineTrace | None = None

    def on_end_trace(self, trace: PipelineTrace, pipeline: Any, send_state: bool) -> None:
        # dlt appends later one-step traces to the list of an earlier one: copy it now.
        self.steps.extend(list(trace.steps))
        self.first = self.first or trace
        self.last = trace

    def combined(self) -> PipelineTrace | None:
        """Every collected step as one trace, or None when no dlt step ran."""
        if self.first is None or self.last is None or not self.steps:
            return None
        return PipelineTrace(
            uniq_id(),
            self.first.pipeline_name,
            self.first.execution_context,
            self.first.started_at,
            steps=list(self.steps),
            finished_at=self.last.finished_at,
            resolved_config_values=list(self.last.resolved_config_values or []),
        )

    def save(self, pipeline: dlt.Pipeline) -> None:
        """Write the combined trace where dlt keeps the last one (`dlt pipeline <name> trace`)."""
        trace = self.combined()
        if trace is not None:
            save_trace(pipeline.working_dir, trace)
            pipeline._last_trace = trace


def collect(pipeline: dlt.Pipeline) -> RunTrace:
    """Make a `RunTrace` the pipeline's collector (it shows no progress, as dlt's default)."""
    run_trace = RunTrace()
    pipeline.collector = run_trace
    return run_trace
