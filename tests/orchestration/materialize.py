"""Materialize one partition of `billing_account` in this process, as one Dagster run does:
`python -m tests.orchestration.materialize provider:label`. Prints the materialization's metadata
(or the failure's description) as JSON on stdout; exits 0 when the run succeeded, 1 when not."""

from __future__ import annotations

import json
import sys
from typing import Any


def materialize_one(key: str, instance: Any = None) -> Any:
    """The `ExecuteInProcessResult` of one partition, its partition registered first."""
    from dagster import DagsterInstance, materialize

    from orchestration.definitions import PARTITIONS, billing_account

    instance = instance or DagsterInstance.ephemeral()
    if not instance.has_dynamic_partition(PARTITIONS, key):
        instance.add_dynamic_partitions(PARTITIONS, [key])
    return materialize([billing_account], partition_key=key, instance=instance, raise_on_error=False)


def metadata(result: Any) -> dict[str, Any]:
    """The materialization's metadata as plain values."""
    [event] = result.asset_materializations_for_node("billing_account")
    return {name: value.value for name, value in event.metadata.items()}


def failure(result: Any) -> str:
    """The description of the step's failure."""
    [event] = [e for e in result.all_node_events if e.is_step_failure]
    data = event.step_failure_data
    return str(data.user_failure_data.description if data.user_failure_data else data.error.message)


def main(argv: list[str]) -> int:
    result = materialize_one(argv[0])
    print(json.dumps(metadata(result) if result.success else {"failure": failure(result)}))
    return 0 if result.success else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
