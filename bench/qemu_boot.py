"""Benchmark: QMP round-trip time and time to first UART byte, QMP-built machine vs -M virt.

Prints figures, asserts nothing (speed targets live in bench/, never in tests).

1. QMP round trip: median / p95 / mean over many ``query-machine-phase`` and
   ``qom-get`` commands sent one at a time to a ``-M none -preconfig`` QEMU.
2. Process start to first UART byte, for the riscv64 demo machine built over
   QMP (``-M none -preconfig`` + the same steps as tests/qemu/test_boot_e2e.py)
   and for QEMU's built-in ``-M virt -bios`` running the same firmware, with
   the same binary; medians over several runs and their ratio.

Usage:  python3 bench/qemu_boot.py [--qemu PATH] [--runs N] [--iterations N]
The binary defaults to the patched build (``qemu/build.sh --print-prefix``);
``$MACHINEDESC_QEMU_RISCV64`` or ``--qemu`` override it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Optional

from qemu.qmp import ConnectError, QMPClient

REPO = Path(__file__).resolve().parents[1]

Step = tuple[str, dict[str, Any]]


def find_qemu(arg: Optional[str]) -> Path:
    """The qemu-system-riscv64 to measure: --qemu, env, then the patched build."""
    if arg:
        return Path(arg)
    env = os.environ.get("MACHINEDESC_QEMU_RISCV64")
    if env:
        return Path(env)
    res = subprocess.run(["bash", str(REPO / "qemu" / "build.sh"), "--print-prefix"],
                         capture_output=True, text=True, check=True)
    return Path(res.stdout.strip()) / "bin" / "qemu-system-riscv64"


def build_firmware(out: Path) -> Path:
    """Build the demo firmware into OUT; return the 2-hart riscv64 ELF."""
    subprocess.run(["bash", str(REPO / "firmware" / "build.sh"), str(out)],
                   check=True, stdout=subprocess.DEVNULL)
    return out / "riscv64-hello.elf"


def riscv_steps(elf: Path) -> list[Step]:
    """The QMP steps machinedesc plans for boards/soc.yaml with this firmware."""
    from machinedesc.plan.pipeline import load_plan

    plan = load_plan(REPO / "boards" / "soc.yaml", firmware=[elf])
    return [(s.command, dict(s.arguments)) for s in plan.steps]


class SyncQMP:
    """A blocking facade over qemu.qmp's QMPClient that owns a private event loop.

    Unlike qemu.qmp.legacy it never installs its loop as the thread's current
    loop, and it closes the loop in close(), so nothing leaks into other code
    that uses asyncio (no "unclosed event loop" ResourceWarning).
    """

    def __init__(self, name: str = "machinedesc-test") -> None:
        self._loop = asyncio.new_event_loop()
        self._client = QMPClient(name)
        self.timeout: float = 30.0

    def _run(self, coro: Any, timeout: Optional[float]) -> Any:
        return self._loop.run_until_complete(asyncio.wait_for(coro, timeout))

    def connect(self, sock: "str | socket.socket") -> None:
        """Connect to a QMP unix socket path or a connected socket (raises ConnectError)."""
        self._run(self._client.connect(sock), 10.0)

    def cmd(self, name: str, **args: Any) -> Any:
        """Execute one command and return its result (raises ExecuteError)."""
        return self._run(self._client.execute(name, args or None), self.timeout)

    def close(self) -> None:
        """Disconnect (errors from an already dead peer ignored) and close the loop."""
        try:
            self._run(self._client.disconnect(), 10.0)
        except Exception:  # QEMU may already be gone; nothing left to close then
            pass
        finally:
            self._loop.close()


class Qemu:
    """One QEMU process: serial0 on stdout (first byte timestamped), optional QMP."""

    def __init__(self, binary: Path, args: list[str], qmp: bool) -> None:
        self.dir = tempfile.mkdtemp(prefix="md-bench-")
        #: A second monitor, listening, for connections once QEMU is up.
        self.path = os.path.join(self.dir, "qmp.sock")
        argv = [str(binary), *args, "-nodefaults", "-no-user-config",
                "-display", "none", "-serial", "stdio"]
        # The first QMP connection is a socket connected before QEMU starts, as
        # machinedesc's is (machinedesc/qemu/process.py, QemuProcess, says why).
        self.sock: Optional[socket.socket] = None
        theirs: Optional[socket.socket] = None
        if qmp:
            self.sock, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
            argv += ["-chardev", f"socket,id=bench-qmp,fd={theirs.fileno()}",
                     "-mon", "chardev=bench-qmp,mode=control",
                     "-qmp", f"unix:{self.path},server=on,wait=off"]
        self.first_byte: Optional[float] = None
        self.output = bytearray()
        self.qmp: Optional[SyncQMP] = None
        self.t_start = time.perf_counter()
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, pass_fds=(theirs.fileno(),) if theirs else ())
        if theirs is not None:
            theirs.close()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            if not data:
                return
            if self.first_byte is None:
                self.first_byte = time.perf_counter()
            self.output += data

    def connect(self) -> SyncQMP:
        """Take QMP's greeting on the pre-connected socket (10 s at most)."""
        assert self.sock is not None, "started without qmp=True"
        qmp = SyncQMP("bench")
        try:
            qmp.connect(self.sock)
        except (ConnectError, OSError, asyncio.TimeoutError) as exc:
            qmp.close()
            raise RuntimeError(f"no QMP greeting (QEMU exit status {self.proc.poll()}): {self._stderr()}") from exc
        except BaseException:
            qmp.close()
            raise
        self.qmp = qmp
        return qmp

    def _stderr(self) -> str:
        assert self.proc.stderr is not None
        return self.proc.stderr.read().decode(errors="replace")

    def wait_first_byte(self, timeout: float = 30.0) -> float:
        """Seconds from process start to the first UART byte."""
        deadline = time.perf_counter() + timeout
        while self.first_byte is None:
            if time.perf_counter() > deadline or (self.proc.poll() is not None
                                                  and not self._reader.is_alive()):
                raise RuntimeError(f"no UART output: {self._stderr()}")
            time.sleep(0.0002)
        return self.first_byte - self.t_start

    def close(self) -> None:
        """Stop QEMU (if the firmware did not power it off) and clean up."""
        if self.qmp is not None:
            try:
                self.qmp.close()
            except Exception:  # QEMU may have powered off already
                pass
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._reader.join(5)
        for f in (self.proc.stdout, self.proc.stderr):
            if f is not None:
                f.close()
        if self.sock is not None:
            self.sock.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(pct / 100 * len(ordered)) - 1))
    return ordered[k]


def report(label: str, times: list[float]) -> None:
    """Print one round-trip line."""
    print(f"  {label:30s} median {statistics.median(times) * 1e6:7.1f} us"
          f"   p95 {percentile(times, 95) * 1e6:7.1f} us"
          f"   mean {statistics.fmean(times) * 1e6:7.1f} us"
          f"   ({1 / statistics.fmean(times):,.0f} cmd/s)")


async def async_rtt(sock: str, name: str, args: dict[str, Any], iterations: int) -> list[float]:
    """Round trips of one command through qemu.qmp's native asyncio QMPClient."""
    client = QMPClient("bench")
    await client.connect(sock)
    try:
        times = []
        for _ in range(iterations):
            t0 = time.perf_counter()
            await client.execute(name, args)
            times.append(time.perf_counter() - t0)
        return times
    finally:
        await client.disconnect()


def bench_rtt(binary: Path, iterations: int) -> None:
    """Print QMP round-trip figures for a few cheap commands."""
    q = Qemu(binary, ["-M", "none", "-preconfig"], qmp=True)
    try:
        qmp = q.connect()
        commands: list[Step] = [
            ("query-machine-phase", {}),
            ("qom-get", {"path": "/machine", "property": "type"}),
            ("query-status", {}),
        ]
        print(f"QMP round trip, {iterations} commands each, one at a time ({binary}):")
        usable = []
        for name, args in commands:
            try:
                qmp.cmd(name, **args)
            except Exception as err:  # e.g. stock QEMU: no query-machine-phase
                print(f"  {name:30s} unavailable: {err}")
                continue
            usable.append((name, args))
            times = []
            for _ in range(iterations):
                t0 = time.perf_counter()
                qmp.cmd(name, **args)
                times.append(time.perf_counter() - t0)
            report(f"{name} (sync)", times)
        # The same commands through the asyncio client (what a tool can use
        # to avoid the sync shim's per-call event-loop overhead).
        qmp.close()
        q.qmp = None
        for name, args in usable:
            report(f"{name} (asyncio)", asyncio.run(async_rtt(q.path, name, args, iterations)))
    finally:
        if q.proc.poll() is None:
            q.proc.terminate()
        q.close()


def boot_qmp(binary: Path, elf: Path) -> tuple[float, float, float, float]:
    """One QMP-built boot, in seconds: (start->QMP up, the steps before
    x-exit-preconfig, x-exit-preconfig itself, start->first UART byte)."""
    steps = riscv_steps(elf)
    q = Qemu(binary, ["-M", "none", "-smp", "1,maxcpus=2", "-preconfig"], qmp=True)
    try:
        qmp = q.connect()
        t_conn = time.perf_counter()
        for name, args in steps[:-1]:
            qmp.cmd(name, **args)
        t_built = time.perf_counter()
        name, args = steps[-1]
        qmp.cmd(name, **args)
        t_ready = time.perf_counter()
        first = q.wait_first_byte()
        return t_conn - q.t_start, t_built - t_conn, t_ready - t_built, first
    finally:
        q.close()


def boot_virt(binary: Path, elf: Path) -> float:
    """One -M virt boot of the same firmware: start->first byte."""
    q = Qemu(binary, ["-M", "virt", "-smp", "2", "-bios", str(elf)], qmp=False)
    try:
        return q.wait_first_byte()
    finally:
        q.close()


def bench_first_byte(binary: Path, elf: Path, runs: int) -> None:
    """Print start-to-first-UART-byte medians and the QMP/virt ratio."""
    print(f"\nProcess start -> first UART byte, riscv64 demo firmware, {runs} runs each:")
    virt = [boot_virt(binary, elf) for _ in range(runs)]
    try:
        qmp_runs = [boot_qmp(binary, elf) for _ in range(runs)]
    except Exception as err:
        print(f"  -M virt (built-in)     median {statistics.median(virt) * 1e3:7.1f} ms")
        print(f"  QMP-built machine      unavailable with this binary: {err}")
        return
    conn = [r[0] for r in qmp_runs]
    build = [r[1] for r in qmp_runs]
    exit_pre = [r[2] for r in qmp_runs]
    qmp_first = [r[3] for r in qmp_runs]
    nsteps = len(riscv_steps(elf))
    mv, mq = statistics.median(virt), statistics.median(qmp_first)
    print(f"  -M virt (built-in)     median {mv * 1e3:7.1f} ms   "
          f"min {min(virt) * 1e3:7.1f} ms")
    print(f"  QMP-built (-M none)    median {mq * 1e3:7.1f} ms   "
          f"min {min(qmp_first) * 1e3:7.1f} ms")
    print(f"    medians: start->QMP connected {statistics.median(conn) * 1e3:6.1f} ms, "
          f"{nsteps - 1} building steps {statistics.median(build) * 1e3:6.1f} ms, "
          f"x-exit-preconfig {statistics.median(exit_pre) * 1e3:6.1f} ms")
    print(f"  ratio QMP-built / virt: {mq / mv:.2f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--qemu", help="qemu-system-riscv64 to measure (default: patched build)")
    ap.add_argument("--runs", type=int, default=7, help="boots per machine (default 7)")
    ap.add_argument("--iterations", type=int, default=1000,
                    help="QMP commands per round-trip figure (default 1000)")
    ns = ap.parse_args()
    binary = find_qemu(ns.qemu)
    if not os.access(binary, os.X_OK):
        print(f"qemu_boot.py: no QEMU binary at {binary} (run qemu/build.sh)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="md-bench-fw-") as d:
        elf = build_firmware(Path(d))
        bench_rtt(binary, ns.iterations)
        bench_first_byte(binary, elf, ns.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
