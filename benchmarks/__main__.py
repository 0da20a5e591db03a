"""`python -m benchmarks` (`make bench`): run every benchmark, print the table, write
docs/benchmarks.md.

    python -m benchmarks                      # the full suite (about 20 minutes on 2 cores, and about
                                              # 20 more for the memory section's Kitchen and Fohlio
                                              # loads of up to a million invoices)
    BENCH_QUICK=1 python -m benchmarks        # a smoke run at small sizes (about a minute)
    python -m benchmarks --only load,rerun    # some benchmarks only; the others' latest results
                                              # (kept in .bench/results/) stay in the document
    BENCH_N=200000 python -m benchmarks --only load
    BENCH_MEMORY_PROVIDERS=kitchen,fohlio BENCH_MEMORY_NS=100000,1000000 python -m benchmarks --only memory
    python -m benchmarks.memory --providers kitchen --sizes 10000,100000   # the memory section alone, printed
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import sys
import time

from benchmarks import report
from benchmarks.common import SCRATCH, Scale, Section, Target

RESULTS = SCRATCH / "results"

BENCHMARKS = ("load", "network", "rerun", "memory", "remap", "accounts", "postgres", "history")


def run_all(scale: Scale, only: tuple[str, ...] = BENCHMARKS, echo: bool = True) -> list[Section]:
    from benchmarks import accounts, history, load_path, memory, network, postgres_load, remap_path, rerun

    runners = {
        "load": load_path.run,
        "network": network.run,
        "rerun": rerun.run,
        "memory": memory.run,
        "remap": remap_path.run,
        "accounts": accounts.run,
        "postgres": postgres_load.run,
        "history": history.run,
    }
    sections = []
    for name in only:
        started = time.monotonic()
        if echo:
            print(f"… {name}", file=sys.stderr, flush=True)
        section = runners[name](scale)
        if echo:
            print(report.render_section(section), flush=True)
            print(f"  ({name}: {time.monotonic() - started:.0f} s)", file=sys.stderr, flush=True)
        sections.append(section)
    return sections


def save(name: str, section: Section) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    data = dataclasses.asdict(section) | {"measured": f"{dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC"}
    (RESULTS / f"{name}.json").write_text(json.dumps(data))


def load_saved(name: str) -> Section | None:
    """A benchmark's latest results from an earlier run, marked with when they were measured."""
    path = RESULTS / f"{name}.json"
    if not path.exists():
        return None
    data = json.loads(path.read_text())
    measured = data.pop("measured")
    section = Section(**data)
    section.targets = [Target(**t) for t in data["targets"]]
    section.notes = [*section.notes, f"Measured in an earlier run ({measured}) on the same machine."]
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", default=None, help="small sizes (env BENCH_QUICK=1)")
    parser.add_argument("--n", type=int, help="invoices through the load path (env BENCH_N)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of {','.join(BENCHMARKS)}")
    parser.add_argument("--output", default=str(report.DOC), help="markdown file to write ('-' not to write)")
    args = parser.parse_args(argv)
    scale = Scale.from_env(args.quick)
    if args.n:
        scale.load_n = args.n
        scale.naive_n = min(scale.naive_n, args.n)
    only = tuple(n.strip() for n in args.only.split(",") if n.strip()) or BENCHMARKS
    unknown = [n for n in only if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    started = time.monotonic()
    ran = dict(zip(only, run_all(scale, only), strict=True))
    if scale.quick:  # smoke figures are never kept nor mixed with real ones
        sections = list(ran.values())
    else:
        for name, section in ran.items():
            save(name, section)
        sections = [s for s in (ran.get(name) or load_saved(name) for name in BENCHMARKS) if s is not None]
    mixed = len(sections) > len(ran)
    document = report.render(sections, scale, time.monotonic() - started, mixed)
    print(report.render_targets(sections))
    if args.output != "-":
        report.write(document, args.output)
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
