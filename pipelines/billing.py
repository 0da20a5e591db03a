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

    previous = {sig: signal.signal(sig, starting) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        from pipelines.cli import main as run

        return run()
    except _Starting as stopped:
        name = signal.Signals(stopped.signum).name
        print(f"stopped by {name} while starting: nothing was done. Exit {128 + stopped.signum}.", file=sys.stderr)
        return 128 + stopped.signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
