"""`python -m pipelines.billing`: the same command line as the `billing-elt` script."""

from __future__ import annotations

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main())
