#!/usr/bin/env python3
"""Benchmark for the type database: time to introspect each binary, and what loading it costs validate.

Usage: python bench/introspect.py [--systems riscv64 aarch64] [--runs N] [--no-probe]

1. Introspection, per binary (the patched QEMU, or MACHINEDESC_QEMU_<SYSTEM>):
   the types-and-properties half (one ``-M none`` QEMU) and the probe (each
   concrete type instantiated in its own QEMU, two at a time), uncached, once.
2. Loading: the shipped snapshot's ``json.loads`` (median of --runs fresh
   loads) and looking up every type of a board through ``type_info(name, db)``.
3. validate: wall time of ``machinedesc validate boards/soc.yaml`` in a fresh
   process, median of --runs, against the same process also loading the
   snapshot and merging every component type (the budget is +50 ms).

Prints figures (with the load average, the machine is shared); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machinedesc.qemu import introspect, typedb, types  # noqa: E402
from machinedesc.qemu.binary import find_binary  # noqa: E402

VALIDATE = "from machinedesc.cli import main; main(['validate', 'boards/soc.yaml'])"
ADDED = (
    "import time\n"
    "from machinedesc.cli import main\n"
    "from machinedesc.plan.pipeline import load_plan\n"
    "from pathlib import Path\n"
    "load_plan(Path('boards/soc.yaml'), {}, (), None)\n"
    "start = time.perf_counter()\n"
    "from machinedesc.qemu import typedb, types\n"
    "db = typedb.snapshot('riscv64')\n"
    "for step in load_plan(Path('boards/soc.yaml'), {}, (), None).steps:\n"
    "    if step.command == 'device_add':\n"
    "        types.type_info(str(step.arguments['driver']), db).properties\n"
    "print(time.perf_counter() - start)\n"
)


def wall(argv: list[str], runs: int) -> float:
    """Median wall seconds of running ``argv`` (from the repository root) ``runs`` times."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, cwd=REPO, check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def introspection(system: str, probe: bool) -> None:
    binary = find_binary(system)
    start = time.perf_counter()
    static = introspect.run(binary, probe=False)
    middle = time.perf_counter()
    print(f"{system}: types and properties of {len(static.types)} types: {middle - start:.2f} s")
    if probe:
        db = introspect.run(binary, probe=True)
        print(f"{system}: with the probe (one QEMU per type, 2 at a time): {time.perf_counter() - middle:.1f} s")
        print(f"  {db.summary()}")


def loading(system: str, runs: int) -> None:
    times = []
    for _ in range(runs):
        typedb.snapshot.cache_clear()
        start = time.perf_counter()
        db = typedb.snapshot(system)
        times.append(time.perf_counter() - start)
    assert db is not None
    start = time.perf_counter()
    for name in db.types:
        types.type_info(name, db)
    every = time.perf_counter() - start
    size = len(typedb.snapshot_path(system).read_bytes())
    print(f"{system}: snapshot ({size / 1e6:.2f} MB) loads in {1e3 * statistics.median(times):.1f} ms (median of "
          f"{runs}); type_info(name, db) of all {len(db.types)} types {1e3 * every:.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--systems", nargs="+", default=["riscv64", "aarch64"])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--no-probe", action="store_true", help="skip the (minute-long) probe")
    args = parser.parse_args()
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}, "
          f"{os.cpu_count()} CPUs")
    for system in args.systems:
        introspection(system, not args.no_probe)
    for system in args.systems:
        loading(system, args.runs)
    plain = wall([sys.executable, "-c", VALIDATE], args.runs)
    added = statistics.median(float(subprocess.run([sys.executable, "-c", ADDED], cwd=REPO, check=True,
                                                   capture_output=True, text=True).stdout)
                              for _ in range(args.runs))
    print(f"validate boards/soc.yaml: {1e3 * plain:.0f} ms; loading the riscv64 database in that process (after "
          f"validate's own imports) and merging every component type adds {1e3 * added:.1f} ms (budget 50 ms; "
          f"medians of {args.runs})")


if __name__ == "__main__":
    main()
