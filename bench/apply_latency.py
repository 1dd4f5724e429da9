#!/usr/bin/env python3
"""Benchmark for apply and the API: first UART byte against QEMU's own -M virt, start-up, verification, QMP steps/s.

Usage: python bench/apply_latency.py [--runs N] [--devices N] [--qemu PATH]

Everything is measured in one run, side by side, and reported as ratios
(the machine is shared and noisy: read the ratios and the load average
printed first, not single absolute times).

1. First UART byte of ``boards/soc.yaml`` with the demo firmware, the runs
   interleaved: ``qemu-system-riscv64 -M virt -bios riscv64-hello.elf`` (the
   same binary, same firmware: the reference), then
   - ``machinedesc apply`` from the command line (a fresh process, as a user
     runs it; bytecode compiled, as in an installed package);
   - the API in-process, from ``api.machine(plan)`` entering its ``with``
     (QEMU spawn, QMP, probe, steps, verification, cont) to the first byte
     (target ratio <= 1.5, goal 1.2);
   - apply's engine in-process (``drive``), the same work without the API.
2. Start-up: a bare ``python -c pass``, the floor of any front end built
   on the required libraries (``import asyncio, qemu.qmp, click``), and the
   imports the ``apply`` path of a planned board needs (``machinedesc.cli``,
   ``machinedesc.plan.pipeline``, ``machinedesc.apply.engine``), so that the
   command line's ratio can be split into Python, libraries, machinedesc's
   own modules and the build.
3. A generated board of N devices (default 1,000; each created and
   MMIO-mapped, 2 steps), built in-process, paused: steps per second of the
   send stage (target >= 5,000 on a quiet machine), the verification time
   against the send time (target: verification no slower than the build),
   and where a step's time goes: QEMU's CPU time and Python's per step.

Needs the patched QEMU (``machinedesc qemu build``, or --qemu / MACHINEDESC_QEMU_RISCV64)
and the firmware tools (firmware/install-deps.sh).  Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from machinedesc import api  # noqa: E402
from machinedesc.apply import engine  # noqa: E402
from machinedesc.apply.engine import drive, run_async  # noqa: E402
from machinedesc.apply.job import Options, plan_job  # noqa: E402
from machinedesc.plan.steps import Plan  # noqa: E402
from machinedesc.qemu.binary import find_binary  # noqa: E402


#: The libraries any apply front end here needs: the QMP client (over asyncio) and the command parser.
FLOOR = "import asyncio, qemu.qmp, click"
#: What `machinedesc apply` of a board whose plan is cached imports (tests/test_imports.py).
APPLY_IMPORTS = "import machinedesc.cli, machinedesc.plan.pipeline, machinedesc.apply.engine"


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


def wall(argv: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def engine_first_byte(plan: Plan, qemu: Path) -> float:
    """Seconds from calling apply's engine on a ready plan to the guest's first UART byte."""
    first: list[float] = []
    with open(os.devnull, "wb") as devnull:
        opts = Options(qemu=str(qemu), stdout=devnull, on_first_output=first.append)
        start = time.monotonic()
        run_async(drive(plan_job(plan), opts))
    deadline = time.monotonic() + 2.0
    while not first and time.monotonic() < deadline:  # the callback comes from a thread (watch_first_output)
        time.sleep(0.001)
    if not first:
        raise SystemExit("the guest printed nothing")
    return first[0] - start


def api_first_byte(plan: Plan, qemu: Path) -> float:
    """Seconds from entering ``with api.machine(plan)`` to the guest's first UART byte (in-process)."""
    start = time.monotonic()
    with api.machine(plan, qemu=qemu) as m:
        m.console.expect("hello from timer interrupt", timeout=30)
        assert m.first_output is not None
        return m.first_output - start


def machinedesc_argv() -> list[str]:
    return [sys.executable, "-m", "machinedesc"]


def big_board(path: Path, n: int) -> Path:
    lines = ["machinedesc: 1", "name: big", f"summary: {n} generated devices", "system: riscv64",
             "components:"]
    for i in range(n):
        lines += [f"  dev{i}:", "    type: riscv.sifive.test", f"    mmio: {0x20000000 + i * 0x1000:#x}"]
    path.write_text("\n".join(lines) + "\n")
    return path


def row(label: str, times: list[float], ref: float | None = None) -> None:
    med = statistics.median(times)
    ratio = f"  ratio to virt {med / ref:5.2f}" if ref else ""
    print(f"  {label:44s} {med * 1000:7.1f} ms (min {min(times) * 1000:6.1f}, max {max(times) * 1000:6.1f}){ratio}")


def interleaved(runs: int, named: dict[str, Callable[[], float]]) -> dict[str, list[float]]:
    """Each measurement once per round, the rounds ``runs`` times: drift hits all alike."""
    for measure in named.values():
        measure()  # warm the page cache (and write the bytecode)
    times: dict[str, list[float]] = {name: [] for name in named}
    for _ in range(runs):
        for name, measure in named.items():
            times[name].append(measure())
    return times


def qemu_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def build_big(plan: Plan, qemu: Path) -> dict[str, float]:
    """Build ``plan`` paused in-process; stage timings plus CPU seconds of QEMU and of Python during send."""
    timings: dict[str, float] = {}
    cpu: dict[str, float] = {}
    namespace = vars(engine)  # the engine's own name for send_all, which run() calls
    send_all = namespace["send_all"]

    async def measured(session: Any, job: Any, window: int = 1, batch: int = 0) -> None:
        pid = session.qemu.pid
        q0, p0 = qemu_cpu(pid), time.process_time()
        await send_all(session, job, window=window, batch=batch)
        cpu.update(qemu=qemu_cpu(pid) - q0, python=time.process_time() - p0)

    namespace["send_all"] = measured  # measured around the real one
    try:
        with api.machine(plan, qemu=qemu, paused=True, timings=timings):
            pass
    finally:
        namespace["send_all"] = send_all
    return {**timings, **cpu}


def main() -> None:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--devices", type=int, default=1000)
    ap.add_argument("--qemu", help="patched qemu-system-riscv64 (default: machinedesc's lookup)")
    args = ap.parse_args()

    qemu = Path(args.qemu) if args.qemu else find_binary("riscv64")
    print(f"QEMU: {qemu}")
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="md-bench-") as tmp:
        fw_dir = Path(tmp) / "fw"
        subprocess.run(["bash", str(REPO / "firmware" / "build.sh"), str(fw_dir)], check=True,
                       stdout=subprocess.DEVNULL)
        elf = fw_dir / "riscv64-hello.elf"
        # As an installed package runs: bytecode compiled once (kept out of the tree).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        env.update(PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
                   PYTHONPYCACHEPREFIX=str(Path(tmp) / "pycache"))
        apply_argv = machinedesc_argv() + ["apply", str(REPO / "boards" / "soc.yaml"),
                                           "--firmware", str(elf), "--qemu", str(qemu)]
        virt_argv = [str(qemu), "-M", "virt", "-smp", "2", "-bios", str(elf), "-nodefaults",
                     "-display", "none", "-serial", "stdio"]
        plan = api.plan(REPO / "boards" / "soc.yaml", firmware=[elf])
        times = interleaved(args.runs, {
            "virt": lambda: first_byte(virt_argv, env),
            "cli": lambda: first_byte(apply_argv, env),
            "api": lambda: api_first_byte(plan, qemu),
            "engine": lambda: engine_first_byte(plan, qemu),
            "python": lambda: wall([sys.executable, "-c", "pass"], env),
            "floor": lambda: wall([sys.executable, "-c", FLOOR], env),
            "imports": lambda: wall([sys.executable, "-c", APPLY_IMPORTS], env),
        })
        v = statistics.median(times["virt"])
        print(f"first UART byte of boards/soc.yaml, median of {args.runs} (runs interleaved):")
        row("qemu -M virt -bios (same firmware)", times["virt"])
        row("machinedesc apply (command line)", times["cli"], v)
        row("api.machine(plan), in-process", times["api"], v)
        row("apply's engine (drive), in-process", times["engine"], v)
        print("start-up of the command line (whole processes):")
        row("python -c pass", times["python"], v)
        row(f"python -c '{FLOOR}'", times["floor"], v)
        row("python -c 'import <the apply path>'", times["imports"], v)

        board = big_board(Path(tmp) / "big.yaml", args.devices)
        t0 = time.perf_counter()
        big = api.plan(board, cache=False)
        t_plan = time.perf_counter() - t0
        builds = [build_big(big, qemu) for _ in range(3)]
        best = max(builds, key=lambda b: b["steps"] / b["send"])
        n = best["steps"]
        print(f"generated board, {args.devices} devices, {int(n)} steps (plan {t_plan:.2f} s), best of 3 builds:")
        print(f"  QEMU start + QMP connect {best['start'] * 1000:.0f} ms, probe {best['probe'] * 1000:.0f} ms")
        rates = ", ".join(f"{b['steps'] / b['send']:,.0f}" for b in builds)
        print(f"  steps/s (send stage): {n / best['send']:,.0f}  (runs: {rates}; target >= 5,000 on a quiet machine)")
        print(f"  verify {best['verify'] * 1000:.0f} ms against send {best['send'] * 1000:.0f} ms: "
              f"ratio {best['verify'] / best['send']:.2f} (target <= 1)")
        print(f"  per step: QEMU CPU {best['qemu'] / n * 1e6:.0f} us, Python CPU {best['python'] / n * 1e6:.0f} us, "
              f"wall {best['send'] / n * 1e6:.0f} us")


if __name__ == "__main__":
    main()
