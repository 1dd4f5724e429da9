#!/usr/bin/env python3
"""Benchmark: the end-to-end boot suite under pytest-xdist - 8 machines at once, and -n 2 against -n 0.

Usage: python bench/xdist_suite.py [--workers 8] [--suite PATH ...]

0. 8 machines at once: a generated test file of 8 tests, each building
   ``boards/soc.yaml`` (firmware that keeps running) with the plugin's
   ``machine_factory`` and holding it until all 8 are up (a barrier in a
   shared directory), under ``-n 8``.
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
    # A short --basetemp: the tests' own unix sockets live under it (108 bytes at most for a socket path).
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--basetemp={tmpdir}/b",
            "-n", str(workers), *suite]
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


EIGHT = """
import os, time
from pathlib import Path

import pytest

BARRIER = Path(os.environ["MD_BENCH_BARRIER"])


@pytest.mark.parametrize("n", range(8))
def test_one_of_eight(machine_factory, n):
    m = machine_factory("boards/soc.yaml", firmware=[os.environ["MD_BENCH_ELF"]])
    m.console.expect("hello from timer interrupt", timeout=120)
    (BARRIER / str(n)).touch()
    deadline = time.monotonic() + 180
    while len(list(BARRIER.iterdir())) < 8:  # every machine is up and running at this moment
        assert time.monotonic() < deadline, "not all 8 machines were up at once"
        time.sleep(0.05)
    assert m.exit_status is None and "hello from hart 1" in m.console.text
"""


def eight_at_once(tmp: Path) -> tuple[bool, int]:
    """8 tests, 8 xdist workers, each test holding a running machine until all 8 are up; (passed, peak QEMUs)."""
    fw = tmp / "fw"
    subprocess.run(["bash", str(REPO / "firmware" / "build.sh"), str(fw)], check=True, stdout=subprocess.DEVNULL)
    (tmp / "barrier").mkdir()
    test = tmp / "test_eight.py"
    test.write_text(EIGHT)
    os.environ.update(MD_BENCH_BARRIER=str(tmp / "barrier"), MD_BENCH_ELF=str(fw / "riscv64-hello-nopoweroff.elf"))
    box = tmp / "e"
    box.mkdir()
    from importlib.metadata import entry_points

    # An install that predates the plugin's entry point (a checkout's tests load it in tests/conftest.py).
    plugin = [] if any(ep.value == "machinedesc.pytest_plugin" for ep in entry_points(group="pytest11")) \
        else ["-p", "machinedesc.pytest_plugin"]
    elapsed, rc, peak = run_suite(8, [*plugin, str(test), f"--rootdir={REPO}"], box, sample=True)
    left = [p.name for p in box.glob("machinedesc-*")] + [str(p) for p in qemus_from(box)]
    verdict = "passed" if rc == 0 else "FAILED"
    print(f"8 machines at once (-n 8, one test each, all up together): {verdict} in {elapsed:.1f} s, "
          f"peak {peak} QEMUs, left behind: {left or 'nothing'}")
    return rc == 0 and not left, peak


def main() -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--workers", type=int, default=8)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--suite", nargs="*", default=SUITE)
    args = ap.parse_args()
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())} on {os.cpu_count()} CPUs")
    # Short paths: the tests' own unix sockets live under pytest's basetemp in TMPDIR (108 bytes at most).
    with tempfile.TemporaryDirectory(prefix="mx", dir="/tmp") as tmp:
        eight_ok, _ = eight_at_once(Path(tmp))
        box = Path(tmp) / "w"
        box.mkdir()
        elapsed, rc, peak = run_suite(args.workers, args.suite, box, sample=True)
        left = [p.name for p in box.glob("machinedesc-*")]
        running = qemus_from(box)
        print(f"-n {args.workers}: {'passed' if rc == 0 else f'FAILED (pytest exit {rc})'} in {elapsed:.1f} s; "
              f"at most {peak} QEMUs at once; left behind: {len(running)} QEMU, {len(left)} directories")
        times: dict[int, list[float]] = {0: [], 2: []}
        for i in range(args.runs):
            for n in (0, 2):
                run_dir = Path(tmp) / f"{n}{i}"
                run_dir.mkdir()
                t, code, _ = run_suite(n, args.suite, run_dir)
                if code != 0:
                    print(f"-n {n} failed (pytest exit {code})")
                times[n].append(t)
        serial, parallel = statistics.median(times[0]), statistics.median(times[2])
        print(f"suite wall time, median of {args.runs}: -n 0 {serial:.1f} s, -n 2 {parallel:.1f} s, "
              f"ratio -n 2 / -n 0 {parallel / serial:.2f}")
    return 0 if eight_ok and rc == 0 and not left and not running else 1


if __name__ == "__main__":
    sys.exit(main())
