#!/usr/bin/env python3
"""Benchmark: validate + plan time and peak memory for generated boards of N components.

Each size runs in a fresh process so peak RSS is its own. Targets (issue 2):
10,000 components under 1 s, 100,000 under 10 s, growing linearly.

    python bench/plan_scale.py [SIZES...]      # default 100 1000 10000 100000
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

DEFAULT_SIZES = [100, 1_000, 10_000, 100_000]


def generate(n: int) -> str:
    """A board of about n components: clusters of 4 harts, UARTs with wired IRQs, RAM."""
    out = ["machinedesc: 1", "name: scale", "system: riscv64", "chardevs:", "  serial0: stdio",
           "components:", "  ram:", "    type: sysbus-memory", "    props: {size: 1 GiB}", "    mmio: 0x80000000"]
    wires = ["wiring:"]
    made, c = 1, 0
    while made < n:
        out += [f"  cluster{c}:", "    type: cpu-cluster", f"    props: {{cluster-id: {c}}}"]
        made += 1
        for h in range(4):
            if made >= n:
                break
            out += [f"  hart{c}_{h}:", "    type: rv64-riscv-cpu", f"    parent: cluster{c}",
                    f"    props: {{mhartid: {c * 4 + h}}}"]
            made += 1
        for u in range(4):
            if made >= n:
                break
            k = c * 4 + u
            out += [f"  uart{k}:", "    type: serial-mm", "    props: {chardev: serial0, regshift: 2}",
                    f"    mmio: {0x10000000 + k * 0x100:#x}"]
            made += 1
            if f"  hart{c}_{u}:" in out:
                wires += [f"  irq{k}:", f"    from: uart{k}.sysbus-irq[0]", f"    to: hart{c}_{u}.unnamed-gpio-in[11]"]
        c += 1
    return "\n".join(out + wires) + "\n"


def measure(n: int) -> dict[str, float]:
    """Time and peak RSS of validate+plan+render for one generated board, in this process."""
    from machinedesc.pipeline import load_plan
    from machinedesc.render import render_qmp

    with tempfile.TemporaryDirectory() as tmp:
        # Warm up on a tiny board so the figures exclude importing the stages.
        tiny = Path(tmp) / "tiny.yaml"
        tiny.write_text(generate(10), encoding="utf-8")
        load_plan(tiny)
        board = Path(tmp) / "scale.yaml"
        board.write_text(generate(n), encoding="utf-8")
        start = time.perf_counter()
        plan = load_plan(board)
        planned = time.perf_counter()
        text = render_qmp(plan)
        rendered = time.perf_counter()
    return {"components": n, "steps": len(plan.steps), "plan_s": planned - start,
            "render_s": rendered - planned, "plan_bytes": len(text),
            "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--one":
        print(json.dumps(measure(int(sys.argv[2]))))
        return
    sizes = [int(a) for a in sys.argv[1:]] or DEFAULT_SIZES
    print(f"{'components':>10} {'steps':>8} {'validate+plan s':>16} {'render s':>9} {'s per 1k':>9} {'peak MiB':>9}")
    for n in sizes:
        out = subprocess.run([sys.executable, __file__, "--one", str(n)], check=True, capture_output=True, text=True)
        r = json.loads(out.stdout)
        print(f"{r['components']:>10} {r['steps']:>8} {r['plan_s']:>16.3f} {r['render_s']:>9.3f} "
              f"{1000 * r['plan_s'] / n:>9.3f} {r['peak_rss_mib']:>9.0f}")
    print("targets: 10,000 components < 1 s, 100,000 < 10 s (validate+plan)")


if __name__ == "__main__":
    main()
