"""`python -m pipelines.billing` and the `billing-elt` console script: the command line
(pipelines/cli.py), which a signal stops quietly even while the program is still starting (its
imports take a second or two: a Ctrl-C then is one line, not a traceback)."""

from __future__ import annotations

import signal
import sys
from types import FrameType


class _Starting(BaseException):
    """A SIGINT or SIGTERM before the run took over its signals."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def main() -> int:
    def starting(signum: int, frame: FrameType | None) -> None:
        raise _Starting(signum)

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, starting)
    try:
        from pipelines.cli import main as run
        from sources.shared import stop
    except _Starting as stopped:
        name = signal.Signals(stopped.signum).name
        print(f"stopped by {name} while starting: nothing was done. Exit {128 + stopped.signum}.", file=sys.stderr)
        return 128 + stopped.signum

    def noted(signum: int, frame: FrameType | None) -> None:
        stop.request(signum)  # before the run takes over its signals, or after it ended: it stops at once

    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, noted)
    code = run()
    # The command is over: a signal now changes nothing. Ignored, not left to Python's exit,
    # which puts back the default handlers (a SIGTERM would end the process as killed, -15).
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    return code


if __name__ == "__main__":
    sys.exit(main())
