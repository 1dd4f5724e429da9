#!/usr/bin/env python3
"""Benchmark for apply: start-to-first-UART-byte against QEMU's own -M virt, and QMP steps per second.

Usage: python bench/apply_latency.py [--runs N] [--devices N] [--qemu PATH]

1. Latency: wall time from starting ``machinedesc apply boards/soc.yaml
   --firmware riscv64-hello.elf`` (a fresh process, as a user runs it) to the
   guest's first UART byte on its stdout, next to the time from starting
   ``qemu-system-riscv64 -M virt -bios riscv64-hello.elf`` (the same binary,
   same firmware) to its first byte.  Runs alternate; medians and their
   ratio are printed (target <= 1.5, goal <= 1.2).
2. Throughput: a generated board of N devices (default 1,000; each is
   created and MMIO-mapped, 2 steps) is applied in-process; steps per second
   of the send stage (target >= 2,000), plus the probe and verification times.

Needs the patched QEMU (``machinedesc qemu build``, or --qemu / MACHINEDESC_QEMU_RISCV64)
and the firmware tools (firmware/install-deps.sh).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machinedesc.apply.engine import drive, run_async  # noqa: E402
from machinedesc.apply.job import Options, plan_job  # noqa: E402
from machinedesc.plan.pipeline import load_plan  # noqa: E402
from machinedesc.plan.steps import Plan  # noqa: E402
from machinedesc.qemu.binary import find_binary  # noqa: E402


def first_byte(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from spawning ``argv`` to the first byte on its stdout; waits for it to exit."""
    start = time.perf_counter()
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=env)
    assert proc.stdout is not None
    data = os.read(proc.stdout.fileno(), 1)
    elapsed = time.perf_counter() - start
    out, err = proc.communicate(timeout=60)
    if not data or proc.returncode != 0:
        raise SystemExit(f"{argv[:4]}... failed (status {proc.returncode}):\n{err.decode()}")
    if b"hello from timer interrupt" not in data + out:
        raise SystemExit(f"unexpected guest output: {(data + out)!r}")
    return elapsed


def engine_first_byte(plan: Plan, qemu: Path) -> float:
    """Seconds from calling apply's engine on a ready plan to the guest's first UART byte."""
    first: list[float] = []
    with open(os.devnull, "wb") as devnull:
        opts = Options(qemu=str(qemu), stdout=devnull, on_first_output=first.append)
        start = time.monotonic()
        run_async(drive(plan_job(plan), opts))
    if not first:
        raise SystemExit("the guest printed nothing")
    return first[0] - start


def machinedesc_argv() -> list[str]:
    exe = shutil.which("machinedesc")
    if exe:
        return [exe]
    return [sys.executable, "-c", "from machinedesc.cli import main; main()"]


def big_board(path: Path, n: int) -> Path:
    lines = ["machinedesc: 1", "name: big", f"summary: {n} generated devices", "system: riscv64",
             "components:"]
    for i in range(n):
        lines += [f"  dev{i}:", "    type: riscv.sifive.test", f"    mmio: {0x20000000 + i * 0x1000:#x}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--qemu", help="patched qemu-system-riscv64 (default: machinedesc's lookup)")
    args = ap.parse_args()

    qemu = Path(args.qemu) if args.qemu else find_binary("riscv64")
    with tempfile.TemporaryDirectory(prefix="md-bench-") as tmp:
        fw_dir = Path(tmp) / "fw"
        subprocess.run(["bash", str(REPO / "firmware" / "build.sh"), str(fw_dir)], check=True,
                       stdout=subprocess.DEVNULL)
        elf = fw_dir / "riscv64-hello.elf"
        env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
        apply_argv = machinedesc_argv() + ["apply", str(REPO / "boards" / "soc.yaml"),
                                           "--firmware", str(elf), "--qemu", str(qemu)]
        virt_argv = [str(qemu), "-M", "virt", "-smp", "2", "-bios", str(elf), "-nodefaults",
                     "-display", "none", "-serial", "stdio"]
        first_byte(apply_argv, env)  # warm the page cache for both
        first_byte(virt_argv, env)
        t_apply, t_virt = [], []
        for _ in range(args.runs):
            t_apply.append(first_byte(apply_argv, env))
            t_virt.append(first_byte(virt_argv, env))
        a, v = statistics.median(t_apply), statistics.median(t_virt)
        print(f"QEMU: {qemu}")
        print(f"first UART byte, median of {args.runs}:")
        print(f"  machinedesc apply boards/soc.yaml: {a * 1000:7.1f} ms "
              f"(min {min(t_apply) * 1000:.1f}, max {max(t_apply) * 1000:.1f})")
        print(f"  qemu -M virt (same firmware):      {v * 1000:7.1f} ms "
              f"(min {min(t_virt) * 1000:.1f}, max {max(t_virt) * 1000:.1f})")
        print(f"  ratio apply / virt: {a / v:.2f}  (target <= 1.5, goal <= 1.2)")

        # The same, without Python's start-up and the board's planning: from the
        # call into apply's engine (binary lookup, QEMU spawn, QMP, probe, steps,
        # verification, cont) to the first byte, in this process.
        plan = load_plan(REPO / "boards" / "soc.yaml", {}, [elf])
        t_engine = []
        for _ in range(args.runs):
            t_engine.append(engine_first_byte(plan, qemu))
        e = statistics.median(t_engine)
        print(f"  apply engine only (plan ready, in-process): {e * 1000:7.1f} ms "
              f"(min {min(t_engine) * 1000:.1f}); ratio to virt {e / v:.2f}")

        board = big_board(Path(tmp) / "big.yaml", args.devices)
        t0 = time.perf_counter()
        plan = load_plan(board, {})
        t_plan = time.perf_counter() - t0
        rates = []
        timings: dict[str, float] = {}
        # Detached and paused, so apply returns once built; its private directory goes
        # into our own temporary directory, where _stop_detached finds (only) it.
        runs = Path(tmp) / "runs"
        runs.mkdir()
        tempfile.tempdir = str(runs)
        for _ in range(3):
            timings = {}
            with open(os.devnull, "wb") as devnull:
                opts = Options(qemu=str(qemu), paused=True, detach=True, serial="none",
                               stdout=devnull, timings=timings)
                run_async(drive(plan_job(plan), opts))
            rates.append(timings["steps"] / timings["send"])
            _stop_detached(runs)
        tempfile.tempdir = None
        print(f"generated board, {args.devices} devices, {int(timings['steps'])} steps "
              f"(plan {t_plan:.2f} s):")
        print(f"  QEMU start + QMP connect {timings['start'] * 1000:.0f} ms, "
              f"probe {timings['probe'] * 1000:.0f} ms, verify {timings['verify'] * 1000:.0f} ms")
        print(f"  steps/s (send stage), best of 3: {max(rates):,.0f}  "
              f"(runs: {', '.join(f'{r:,.0f}' for r in rates)}; target >= 2,000)")


def _stop_detached(tmpdir: Path) -> None:
    """Stop the QEMU the throughput run left detached and remove its directory."""
    for d in tmpdir.glob("machinedesc-*"):
        pidfile = d / "qemu.pid"
        if not pidfile.exists():
            continue
        pid = int(pidfile.read_text().strip())
        try:
            os.kill(pid, 9)
        except ProcessLookupError:
            pass
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    main()
