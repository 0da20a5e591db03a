"""Test-only launcher: the real command line, with one function made to SIGKILL the process.

    BILLING_TEST_KILL="dlt.load.load:Load.complete_package:1:before" python -m tests.unattended.killpoint load

`module:attribute.path:N:before|after` kills at the Nth call of that function, before it runs or
right after it returned; `...:after:name=value` counts only the calls of a method whose object's
`name` is `value` (`DuckDbCopyJob.run:1:after:load_table_name=invoice_history`: once the first
copy of that table committed). Production code has no such hook: this module patches it from outside.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
import threading
from typing import Any


def install(spec: str) -> None:
    module_name, attribute, nth, when, *only = spec.split(":")
    only_attribute, _, only_value = only[0].partition("=") if only else ("", "", "")
    owner: Any = importlib.import_module(module_name)
    *path, name = attribute.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)
    calls = {"n": 0}
    lock = threading.Lock()

    def die() -> None:
        sys.stderr.flush()
        os.kill(os.getpid(), signal.SIGKILL)

    def patched(*args: Any, **kwargs: Any) -> Any:
        if only_attribute and str(getattr(args[0], only_attribute, None)) != only_value:
            return original(*args, **kwargs)
        with lock:
            calls["n"] += 1
            hit = calls["n"] == int(nth)
        if hit and when == "before":
            die()
        result = original(*args, **kwargs)
        if hit and when == "after":
            die()
        return result

    setattr(owner, name, patched)


if __name__ == "__main__":
    spec = os.environ.get("BILLING_TEST_KILL")
    if spec:
        install(spec)
    from pipelines.cli import main

    sys.exit(main(sys.argv[1:]))
