#!/usr/bin/env python3
"""Benchmark: the end-to-end boot suite under pytest-xdist - 8 machines at once, and -n 2 against -n 0.

Usage: python bench/xdist_suite.py [--workers 8] [--suite PATH ...]

1. One ``pytest -n WORKERS`` run of the boot suite (default
   tests/qemu/test_boot_e2e.py and tests/api/test_api.py: machines built by
   the pytest plugin and the API), with its own TMPDIR. A sampler counts the
   QEMU processes running from that TMPDIR at once (the peak is printed);
   afterwards nothing may be left: no QEMU process, no ``machinedesc-*``
   directory.
2. The wall time of the same suite with ``-n 2`` against ``-n 0``, the
   runs interleaved (median of --runs), and their ratio.

Prints figures and exits 1 if the 8-worker run failed or left something behind.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
SUITE = ["tests/qemu/test_boot_e2e.py", "tests/api/test_api.py"]


def qemus_from(tmpdir: Path) -> list[int]:
    """Pids of the QEMU processes whose command line names ``tmpdir`` (their private directory is in it)."""
    mark = str(tmpdir).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        if b"qemu-system-" in cmd.split(b"\0", 1)[0] and mark in cmd:
            found.append(int(entry.name))
    return found


def run_suite(workers: int, suite: list[str], tmpdir: Path, sample: bool = False) -> tuple[float, int, int]:
    """Wall seconds, pytest's exit status and (when ``sample``) the most QEMUs seen at once."""
    env = dict(os.environ, TMPDIR=str(tmpdir))
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", str(workers), *suite]
    peak = 0
    done = threading.Event()

    def sampler() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, len(qemus_from(tmpdir)))
            time.sleep(0.02)
    thread = threading.Thread(target=sampler, daemon=True)
    if sample:
        thread.start()
    start = time.perf_counter()
    out = subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - start
    done.set()
    if sample:
        thread.join()
    if out.returncode != 0:
        print(out.stdout[-3000:], out.stderr[-2000:], sep="\n")
    return elapsed, out.returncode, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--suite", nargs="*", default=SUITE)
    args = ap.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    with tempfile.TemporaryDirectory(prefix="md-xdist-") as tmp:
        box = Path(tmp) / "wide"
        box.mkdir()
        elapsed, rc, peak = run_suite(args.workers, args.suite, box, sample=True)
        left = [p.name for p in box.glob("machinedesc-*")]
        running = qemus_from(box)
        print(f"-n {args.workers}: {'passed' if rc == 0 else f'FAILED (pytest exit {rc})'} in {elapsed:.1f} s; "
              f"at most {peak} QEMUs at once; left behind: {len(running)} QEMU, {len(left)} directories")
        times: dict[int, list[float]] = {0: [], 2: []}
        for i in range(args.runs):
            for n in (0, 2):
                run_dir = Path(tmp) / f"n{n}-{i}"
                run_dir.mkdir()
                t, code, _ = run_suite(n, args.suite, run_dir)
                if code != 0:
                    print(f"-n {n} failed (pytest exit {code})")
                times[n].append(t)
        serial, parallel = statistics.median(times[0]), statistics.median(times[2])
        print(f"suite wall time, median of {args.runs}: -n 0 {serial:.1f} s, -n 2 {parallel:.1f} s, "
              f"ratio -n 2 / -n 0 {parallel / serial:.2f}")
    return 0 if rc == 0 and not left and not running else 1


if __name__ == "__main__":
    sys.exit(main())
