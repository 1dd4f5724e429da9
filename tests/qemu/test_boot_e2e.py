"""End-to-end boot tests: the demo firmware on machines built over QMP, and on -M virt.

Each QMP-built test starts the patched ``qemu-system-<arch> -M none -preconfig``,
builds the whole machine with QMP commands sent one at a time through qemu.qmp
(cpu-cluster, CPUs created unrealized under it, RAM, UART, timer, wiring,
firmware), leaves preconfig, and reads the firmware's lines from the guest
UART (``-serial stdio``, i.e. chardev ``serial0``, read from QEMU's stdout).

The same firmware ELFs also run on QEMU's built-in ``-M virt`` (stock Debian
QEMU and the patched build), which proves the firmware itself.

A test that cannot find the QEMU binary it needs skips with a loud reason, and
fails instead when CI=true.  The firmware is built from source in the session
(firmware/build.sh); missing cross tools are an error under CI as well.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import IO, Any, Iterator, Optional

import pytest
from qemu.qmp import ConnectError, ExecuteError, QMPClient

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI") == "true"

# A QMP step: command name and its arguments.
Step = tuple[str, dict[str, Any]]

RISCV_RAM_BASE = 0x80000000
RISCV_UART_BASE = 0x10000000
RISCV_MTIMER_BASE = 0x2004000
RISCV_TEST_BASE = 0x100000
RISCV_IRQ_M_TIMER = 7  # index of the M-mode timer line among a hart's GPIO inputs
# Name of the hart-id property that the patch series adds to RISC-V CPUs.
RISCV_HARTID_PROP = "hartid"

AARCH64_RAM_BASE = 0x40000000
AARCH64_UART_BASE = 0x09000000
PSCI_CONDUIT_HVC = 2

RAM_SIZE = 16 * 1024 * 1024

RISCV_LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]
AARCH64_LINES = ["hello from cpu 0", "hello from cpu 1"]

STOCK_BINDIR = Path(os.environ.get("MACHINEDESC_STOCK_QEMU_BINDIR", "/usr/bin"))


def missing(reason: str) -> None:
    """Skip loudly outside CI; fail under CI=true, where everything must be there."""
    if IN_CI:
        pytest.fail(f"CI=true and {reason}")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


def patched_qemu(system: str) -> Path:
    """Path of the patched qemu-system-SYSTEM (skip or fail if it is not built).

    Order: $MACHINEDESC_QEMU_<SYSTEM> (e.g. MACHINEDESC_QEMU_RISCV64), then the
    prefix that ``qemu/build.sh --print-prefix`` names.
    """
    override = os.environ.get(f"MACHINEDESC_QEMU_{system.upper()}")
    if override:
        path = Path(override)
    else:
        res = subprocess.run(
            ["bash", str(REPO / "qemu" / "build.sh"), "--print-prefix"],
            capture_output=True, text=True, check=False,
        )
        if res.returncode != 0:
            missing(f"qemu/build.sh --print-prefix failed: {res.stderr.strip()}")
        path = Path(res.stdout.strip()) / "bin" / f"qemu-system-{system}"
    if not os.access(path, os.X_OK):
        missing(f"patched QEMU not built: no {path} (run qemu/build.sh)")
    return path


def stock_qemu(system: str) -> Path:
    """Path of Debian's stock qemu-system-SYSTEM (skip or fail if not installed)."""
    path = STOCK_BINDIR / f"qemu-system-{system}"
    if not os.access(path, os.X_OK):
        missing(f"stock QEMU not installed: no {path} "
                "(apt-get install -t bookworm-backports qemu-system-riscv qemu-system-arm)")
    return path


@pytest.fixture(scope="session")
def firmware(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Directory holding the firmware ELFs, built from source for this session."""
    out = tmp_path_factory.mktemp("firmware")
    res = subprocess.run(
        ["bash", str(REPO / "firmware" / "build.sh"), str(out)],
        capture_output=True, text=True, check=False,
    )
    if res.returncode != 0:
        if "not found" in res.stderr and not IN_CI:
            pytest.skip(f"SKIPPED LOUDLY: cannot build firmware: {res.stderr.strip()}")
        pytest.fail(f"firmware/build.sh failed:\n{res.stdout}{res.stderr}")
    return out


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

    def connect(self, sock: str) -> None:
        """Connect to a QMP unix socket (raises ConnectError)."""
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


class Guest:
    """A QEMU process with QMP on a private unix socket and serial0 on its stdout."""

    def __init__(self, binary: Path, args: list[str]) -> None:
        self.dir = tempfile.mkdtemp(prefix="md-boot-")
        self.sock = os.path.join(self.dir, "qmp.sock")
        self._stderr: IO[bytes] = open(os.path.join(self.dir, "stderr"), "w+b")
        self.argv = [
            str(binary), *args,
            "-nodefaults", "-no-user-config", "-display", "none",
            "-serial", "stdio",
            "-qmp", f"unix:{self.sock},server=on,wait=off",
        ]
        self._out = bytearray()
        self._cond = threading.Condition()
        self._eof = False
        self.qmp: Optional[SyncQMP] = None
        self.proc = subprocess.Popen(
            self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
            stderr=self._stderr,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            data = os.read(fd, 4096)
            with self._cond:
                if not data:
                    self._eof = True
                    self._cond.notify_all()
                    return
                self._out += data
                self._cond.notify_all()

    @property
    def output(self) -> str:
        """Everything the guest wrote to its UART so far."""
        with self._cond:
            return self._out.decode(errors="replace")

    def stderr_text(self) -> str:
        """QEMU's stderr so far."""
        self._stderr.flush()
        with open(self._stderr.name, "rb") as f:
            return f.read().decode(errors="replace")

    def _diag(self) -> str:
        return (f"\ncommand: {' '.join(self.argv)}\nexit status: {self.proc.poll()}"
                f"\nUART output: {self.output!r}\nQEMU stderr: {self.stderr_text()!r}")

    def connect(self, timeout: float = 15.0) -> None:
        """Connect to QMP, retrying while QEMU creates its socket."""
        qmp = SyncQMP()
        deadline = time.monotonic() + timeout
        try:
            while True:
                if self.proc.poll() is not None:
                    raise AssertionError("QEMU exited before QMP was up" + self._diag())
                if time.monotonic() > deadline:
                    raise AssertionError("QMP socket never answered" + self._diag())
                # Connect only once the socket exists, so that qemu.qmp does
                # not log a failed attempt for every poll.
                if os.path.exists(self.sock):
                    try:
                        qmp.connect(self.sock)
                        break
                    except (ConnectError, OSError):
                        pass
                time.sleep(0.002)
        except BaseException:
            qmp.close()
            raise
        self.qmp = qmp

    def cmd(self, name: str, **args: Any) -> Any:
        """Send one QMP command and return its result (raises ExecuteError)."""
        assert self.qmp is not None, "connect() first"
        return self.qmp.cmd(name, **args)

    def run(self, steps: list[Step]) -> None:
        """Send the steps in order; a failing step fails the test, naming the step."""
        for n, (name, args) in enumerate(steps, 1):
            try:
                self.cmd(name, **args)
            except ExecuteError as err:
                raise AssertionError(
                    f"step {n}/{len(steps)} {name} {args} failed: "
                    f"{err.error_class}: {err.error.error.desc}" + self._diag()) from err

    def phase(self) -> str:
        """The machine phase that query-machine-phase reports."""
        res = self.cmd("query-machine-phase")
        assert isinstance(res, dict), res
        return str(res["phase"])

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> str:
        """Wait until TEXT appeared COUNT times on the UART; return the output."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._out.decode(errors="replace").count(text) < count:
                left = deadline - time.monotonic()
                if left <= 0 or self._eof:
                    break
                self._cond.wait(left)
            out = self._out.decode(errors="replace")
        if out.count(text) < count:
            raise AssertionError(f"{text!r} did not appear {count} time(s)" + self._diag())
        return out

    def wait_exit(self, timeout: float = 30.0) -> int:
        """Wait for QEMU to exit by itself and return its exit status."""
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"QEMU still running after {timeout}s" + self._diag())
        self._reader.join(5)
        return rc

    def close(self) -> None:
        """Disconnect, stop QEMU if it still runs, remove the private directory."""
        if self.qmp is not None:
            try:
                self.qmp.close()
            except Exception:  # QEMU may already be gone; nothing to clean then
                pass
            self.qmp = None
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._reader.join(5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        self._stderr.close()
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def guests() -> Iterator[list[Guest]]:
    """Guests started by a test; all of them are stopped and cleaned up after it."""
    started: list[Guest] = []
    yield started
    for g in started:
        g.close()


def start(guests: list[Guest], binary: Path, args: list[str], connect: bool = True) -> Guest:
    """Start a Guest, register it for cleanup, and connect QMP."""
    g = Guest(binary, args)
    guests.append(g)
    if connect:
        g.connect()
    return g


def map_mmio(dev: str, addr: int) -> Step:
    return ("x-sysbus-mmio-map", {"device": dev, "addr": addr})


def riscv_steps(elf: Path, nharts: int = 2) -> list[Step]:
    """QMP steps that build the riscv64 demo machine on -M none.

    Memory map identical to -M virt: RAM 0x80000000, ns16550 0x10000000,
    ACLINT mtimer 0x2004000, SiFive test 0x100000.
    """
    steps: list[Step] = [
        ("x-machine-init", {}),
        ("device_add", {"driver": "cpu-cluster", "id": "cluster0",
                        "cluster-id": 0, "realized": False}),
    ]
    for i in range(nharts):
        steps.append(("device_add", {
            "driver": "rv64-riscv-cpu", "id": f"hart{i}", "parent": "cluster0",
            "realized": False, RISCV_HARTID_PROP: i, "resetvec": RISCV_RAM_BASE}))
    steps.append(("qom-set", {"path": "cluster0", "property": "realized", "value": True}))
    for i in range(nharts):
        steps.append(("qom-set", {"path": f"hart{i}", "property": "realized", "value": True}))
    steps += [
        ("device_add", {"driver": "sysbus-memory", "id": "ram", "size": RAM_SIZE}),
        map_mmio("ram", RISCV_RAM_BASE),
        ("device_add", {"driver": "serial-mm", "id": "uart0", "chardev": "serial0",
                        "regshift": 0}),
        map_mmio("uart0", RISCV_UART_BASE),
        ("device_add", {"driver": "riscv.aclint.mtimer", "id": "mtimer",
                        "hartid-base": 0, "num-harts": nharts,
                        "timecmp-base": 0, "time-base": 0x7ff8,
                        "aperture-size": 0x8000, "timebase-freq": 10_000_000}),
        map_mmio("mtimer", RISCV_MTIMER_BASE),
    ]
    for i in range(nharts):
        steps.append(("qom-set", {
            "path": "mtimer", "property": f"unnamed-gpio-out[{i}]",
            "value": f"hart{i}/unnamed-gpio-in[{RISCV_IRQ_M_TIMER}]"}))
    steps += [
        ("device_add", {"driver": "riscv.sifive.test", "id": "test"}),
        map_mmio("test", RISCV_TEST_BASE),
        ("device_add", {"driver": "loader", "id": "fw", "file": str(elf)}),
    ]
    return steps


def aarch64_steps(elf: Path) -> list[Step]:
    """QMP steps that build the seed's example board (cluster of two cortex-a72).

    CPU properties (see firmware/README.md): no EL3/EL2 so QEMU's PSCI (HVC
    conduit) serves CPU_ON and SYSTEM_OFF, reset vector at RAM, cpu1 starts
    powered off and cpu0 turns it on.
    """
    steps: list[Step] = [
        ("x-machine-init", {}),
        ("device_add", {"driver": "cpu-cluster", "id": "cluster0",
                        "cluster-id": 0, "realized": False}),
    ]
    for i in range(2):
        steps.append(("device_add", {
            "driver": "cortex-a72-arm-cpu", "id": f"cpu{i}", "parent": "cluster0",
            "realized": False, "has_el3": False, "has_el2": False,
            "rvbar": AARCH64_RAM_BASE, "psci-conduit": PSCI_CONDUIT_HVC,
            "start-powered-off": i != 0}))
    steps.append(("qom-set", {"path": "cluster0", "property": "realized", "value": True}))
    for i in range(2):
        steps.append(("qom-set", {"path": f"cpu{i}", "property": "realized", "value": True}))
    steps += [
        ("device_add", {"driver": "sysbus-memory", "id": "ram", "size": RAM_SIZE}),
        map_mmio("ram", AARCH64_RAM_BASE),
        ("device_add", {"driver": "pl011", "id": "uart0", "chardev": "serial0"}),
        map_mmio("uart0", AARCH64_UART_BASE),
        ("device_add", {"driver": "loader", "id": "fw", "file": str(elf)}),
    ]
    return steps


def assert_lines_in_order(out: str, lines: list[str]) -> None:
    """Each expected line appears as a whole line, in this order."""
    got = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert got[:len(lines)] == lines, f"UART output {out!r}"


# --- QMP-built machines on the patched QEMU ---------------------------------

def test_riscv64_qmp_machine_boots_and_powers_off(firmware: Path, guests: list[Guest]) -> None:
    qemu = patched_qemu("riscv64")
    g = start(guests, qemu, ["-M", "none", "-smp", "1,maxcpus=2", "-preconfig"])
    g.run(riscv_steps(firmware / "riscv64-hello.elf"))
    assert g.phase() == "initialized"
    # The wiring really points at the harts' M-timer inputs.
    for i in range(2):
        target = g.cmd("qom-get", path="mtimer", property=f"unnamed-gpio-out[{i}]")
        assert str(target).endswith(f"/hart{i}/unnamed-gpio-in[{RISCV_IRQ_M_TIMER}]"), target
    g.cmd("x-exit-preconfig")
    out = g.wait_for("hello from timer interrupt")
    assert_lines_in_order(out, RISCV_LINES)
    # The firmware powers off through the SiFive test device: QEMU exits 0.
    assert g.wait_exit() == 0, g.stderr_text()


def test_aarch64_seed_board_both_cpus_print(firmware: Path, guests: list[Guest]) -> None:
    qemu = patched_qemu("aarch64")
    g = start(guests, qemu, ["-M", "none", "-smp", "1,maxcpus=2", "-preconfig"])
    g.run(aarch64_steps(firmware / "aarch64-hello.elf"))
    assert g.phase() == "initialized"
    g.cmd("x-exit-preconfig")
    out = g.wait_for("hello from cpu 1")
    assert_lines_in_order(out, AARCH64_LINES)
    # PSCI SYSTEM_OFF from the firmware: QEMU exits 0.
    assert g.wait_exit() == 0, g.stderr_text()


def test_riscv64_system_reset_runs_firmware_again(firmware: Path, guests: list[Guest]) -> None:
    qemu = patched_qemu("riscv64")
    g = start(guests, qemu, ["-M", "none", "-smp", "1,maxcpus=2", "-preconfig"])
    g.run(riscv_steps(firmware / "riscv64-hello-nopoweroff.elf"))
    g.cmd("x-exit-preconfig")
    g.wait_for("hello from timer interrupt")
    g.cmd("system_reset")
    out = g.wait_for("hello from timer interrupt", count=2)
    got = [ln.strip() for ln in out.splitlines() if ln.strip()]
    assert got == RISCV_LINES * 2, out
    assert g.proc.poll() is None, "nopoweroff firmware must not stop QEMU"


def test_aarch64_system_reset_runs_firmware_again(firmware: Path, guests: list[Guest]) -> None:
    qemu = patched_qemu("aarch64")
    g = start(guests, qemu, ["-M", "none", "-smp", "1,maxcpus=2", "-preconfig"])
    g.run(aarch64_steps(firmware / "aarch64-hello-nopoweroff.elf"))
    g.cmd("x-exit-preconfig")
    g.wait_for("hello from cpu 1")
    g.cmd("system_reset")
    out = g.wait_for("hello from cpu 1", count=2)
    got = [ln.strip() for ln in out.splitlines() if ln.strip()]
    # cpu1 was powered on by PSCI in the first run; reset must power it off
    # again (start-powered-off) and the firmware must bring it up again.
    assert got == AARCH64_LINES * 2, out


# --- the same firmware on QEMU's built-in -M virt ----------------------------

def virt_args(system: str, elf: Path, smp: int) -> list[str]:
    if system == "riscv64":
        return ["-M", "virt", "-smp", str(smp), "-bios", str(elf)]
    return ["-M", "virt", "-cpu", "cortex-a72", "-smp", str(smp), "-kernel", str(elf)]


@pytest.mark.parametrize("build", ["stock", "patched"])
def test_riscv64_firmware_on_virt(build: str, firmware: Path, guests: list[Guest]) -> None:
    qemu = stock_qemu("riscv64") if build == "stock" else patched_qemu("riscv64")
    g = start(guests, qemu, virt_args("riscv64", firmware / "riscv64-hello.elf", 2),
              connect=False)
    assert g.wait_exit() == 0, g.stderr_text()
    assert_lines_in_order(g.output, RISCV_LINES)


def test_riscv64_four_hart_firmware_on_virt(firmware: Path, guests: list[Guest]) -> None:
    qemu = stock_qemu("riscv64")
    g = start(guests, qemu, virt_args("riscv64", firmware / "riscv64-hello-4harts.elf", 4),
              connect=False)
    assert g.wait_exit() == 0, g.stderr_text()
    assert_lines_in_order(g.output, [f"hello from hart {k}" for k in range(4)]
                          + ["hello from timer interrupt"])


@pytest.mark.parametrize("build", ["stock", "patched"])
def test_aarch64_firmware_on_virt(build: str, firmware: Path, guests: list[Guest]) -> None:
    qemu = stock_qemu("aarch64") if build == "stock" else patched_qemu("aarch64")
    g = start(guests, qemu, virt_args("aarch64", firmware / "aarch64-hello.elf", 2),
              connect=False)
    assert g.wait_exit() == 0, g.stderr_text()
    assert_lines_in_order(g.output, AARCH64_LINES)


def test_stock_qemu_lacks_the_qmp_configuration_commands(guests: list[Guest]) -> None:
    """Guard for the tests above: stock QEMU must refuse what the patch adds."""
    qemu = stock_qemu("riscv64")
    g = start(guests, qemu, ["-M", "none", "-preconfig"])
    with pytest.raises(ExecuteError) as err:
        g.cmd("query-machine-phase")
    assert err.value.error_class == "CommandNotFound"
