#!/usr/bin/env python3
"""Benchmark: validate + plan time and peak memory for generated boards of N components.

Three shapes of board, each at every size, each size in a fresh process so
that peak RSS is its own (it includes the interpreter and the imports):

- ``clusters``: clusters of 4 harts, UARTs with wired IRQs, RAM (issue 2);
- ``cluster``: one cluster of N harts, each wired to an ACLINT timer that
  finds them all when it realizes, like ``boards/soc.yaml --set harts=N``
  (issue 8: this was quadratic);
- ``overlap``: N memories at one address, one group of overlapping regions
  (issue 8: this was quadratic in time, memory and output); the figure is the
  time to the BoardError and its rendered report.

Wall time and CPU time (``cpu s``: this process only, less skewed by other
jobs on the machine; the load average is printed with each figure) of the
fastest of ``--repeat`` runs. ``x`` is the ratio of CPU time to the previous
size of the same shape: near-linear work gives about the ratio of the sizes
(10 for 10x); ``us/comp`` is CPU time per component. Targets (issues 2 and
7): 10,000 components under 1 s, 100,000 under 10 s (validate+plan, warm).

    python bench/plan_scale.py [--repeat R] [--shape S]... [SIZES...]   # default 1000 10000 100000
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

DEFAULT_SIZES = [1_000, 10_000, 100_000]


def generate(n: int) -> str:
    """A board of about n components: clusters of 4 harts, UARTs with wired IRQs, RAM."""
    out = ["machinedesc: 1", "name: scale", "system: riscv64", "chardevs:", "  serial0: stdio",
           "components:", "  ram:", "    type: sysbus-memory", "    props: {size: 1 GiB}", "    mmio: 0x80000000"]
    wires = ["wiring:"]
    made, c = 1, 0
    while made < n:
        if n - made == 1:
            # No room for a cluster and a hart: an empty cluster is an error.
            out += ["  rom:", "    type: sysbus-memory", "    props: {size: 64 KiB}", "    mmio: 0x70000000"]
            break
        out += [f"  cluster{c}:", "    type: cpu-cluster", f"    props: {{cluster-id: {c}}}"]
        made += 1
        harts = 0
        for h in range(4):
            if made >= n:
                break
            out += [f"  hart{c}_{h}:", "    type: rv64-riscv-cpu", f"    parent: cluster{c}",
                    f"    props: {{mhartid: {c * 4 + h}}}"]
            made += 1
            harts += 1
        for u in range(4):
            if made >= n:
                break
            k = c * 4 + u
            out += [f"  uart{k}:", "    type: serial-mm", "    props: {chardev: serial0, regshift: 2}",
                    f"    mmio: {0x10000000 + k * 0x100:#x}"]
            made += 1
            if u < harts:
                wires += [f"  irq{k}:", f"    from: uart{k}.sysbus-irq[0]", f"    to: hart{c}_{u}.unnamed-gpio-in[11]"]
        c += 1
    return "\n".join(out + wires) + "\n"


def generate_cluster(n: int) -> str:
    """A board of n components: one cluster of n - 3 harts, RAM, and a timer wired to every hart."""
    harts = max(n - 3, 1)
    return f"""machinedesc: 1
name: one-cluster
system: riscv64
components:
  cluster0:
    type: cpu-cluster
    props: {{cluster-id: 0}}
  hart${{i}}:
    count: {harts}
    type: rv64-riscv-cpu
    parent: cluster0
    props: {{mhartid: '${{i}}', resetvec: 0x80000000}}
  ram:
    type: sysbus-memory
    props: {{size: 128 MiB}}
    mmio: 0x80000000
  mtimer:
    type: riscv.aclint.mtimer
    props: {{hartid-base: 0, num-harts: {harts}, timecmp-base: 0x0, time-base: 0x7ff8,
             aperture-size: 0x8000, timebase-freq: 10000000}}
    mmio: 0x2004000
wiring:
  timer:
    count: {harts}
    from: mtimer.unnamed-gpio-out[${{i}}]
    to: hart${{i}}.unnamed-gpio-in[7]
"""


def generate_overlap(n: int) -> str:
    """A board of n memories mapped at one address: every pair overlaps."""
    return f"""machinedesc: 1
name: one-address
system: riscv64
components:
  m${{i}}:
    type: sysbus-memory
    count: {n}
    props: {{size: 4096}}
    mmio: 0x1000
"""


SHAPES: dict[str, Callable[[int], str]] = {"clusters": generate, "cluster": generate_cluster,
                                           "overlap": generate_overlap}


def measure(shape: str, n: int) -> dict[str, float | str]:
    """Time and peak RSS of validate+plan(+render, or the error report) for one generated board, here."""
    from machinedesc.errors import BoardError
    from machinedesc.plan.pipeline import load_plan
    from machinedesc.plan.render import render_qmp

    with tempfile.TemporaryDirectory() as tmp:
        # Warm up on tiny boards so the figures exclude importing the stages.
        for make in SHAPES.values():
            tiny = Path(tmp) / "tiny.yaml"
            tiny.write_text(make(10), encoding="utf-8")
            try:
                load_plan(tiny)
            except BoardError:
                pass
        board = Path(tmp) / "scale.yaml"
        board.write_text(SHAPES[shape](n), encoding="utf-8")
        load = os.getloadavg()[0]
        start, cpu = time.perf_counter(), time.process_time()
        try:
            plan = load_plan(board)
        except BoardError as err:
            planned, planned_cpu = time.perf_counter(), time.process_time()
            text = str(err)
            outcome, steps = f"{len(err.problems)} problems", 0
        else:
            planned, planned_cpu = time.perf_counter(), time.process_time()
            text = render_qmp(plan)
            outcome, steps = "plan", len(plan.steps)
        rendered = time.perf_counter()
    return {"shape": shape, "components": n, "steps": steps, "outcome": outcome, "plan_s": planned - start,
            "plan_cpu_s": planned_cpu - cpu, "render_s": rendered - planned, "output_bytes": len(text),
            "load": load, "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) > 3 and sys.argv[1] == "--one":
        print(json.dumps(measure(sys.argv[2], int(sys.argv[3]))))
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="runs per size; the fastest is shown")
    parser.add_argument("--shape", action="append", choices=sorted(SHAPES), help="default: all")
    parser.add_argument("sizes", nargs="*", type=int, default=DEFAULT_SIZES)
    args = parser.parse_args()
    print(f"{'shape':>8} {'components':>10} {'steps':>7} {'validate+plan s':>15} {'cpu s':>6} {'x':>5} "
          f"{'us/comp':>7} {'render s':>8} {'peak MiB':>8} {'output':>14} {'load':>5}")
    for shape in args.shape or list(SHAPES):
        previous: float | None = None
        for n in args.sizes:
            runs = []
            for _ in range(args.repeat):
                out = subprocess.run([sys.executable, __file__, "--one", shape, str(n)], check=True,
                                     capture_output=True, text=True)
                runs.append(json.loads(out.stdout))
            r = min(runs, key=lambda run: run["plan_cpu_s"])
            ratio = f"{r['plan_cpu_s'] / previous:5.1f}" if previous else f"{'':>5}"
            previous = r["plan_cpu_s"]
            print(f"{shape:>8} {n:>10} {r['steps']:>7} {r['plan_s']:>15.3f} {r['plan_cpu_s']:>6.2f} {ratio} "
                  f"{1e6 * r['plan_cpu_s'] / n:>7.1f} {r['render_s']:>8.3f} {r['peak_rss_mib']:>8.0f} "
                  f"{r['output_bytes']:>8} bytes {r['load']:>5.2f}", flush=True)
    print("targets: 10,000 components < 1 s, 100,000 < 10 s (validate+plan, warm)")


if __name__ == "__main__":
    main()
