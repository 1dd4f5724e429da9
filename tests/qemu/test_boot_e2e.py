"""End-to-end boot tests: the demo firmware on machines built over QMP, and on -M virt.

Each QMP-built test starts the patched ``qemu-system-<arch> -M none
-smp 1,maxcpus=2 -preconfig`` (conftest's ``qemu_launcher``), builds the whole
machine with QMP commands sent one at a time through qemu.qmp (cpu-cluster,
CPUs created unrealized under it, RAM, UART, timer and its wiring, firmware
through the ``loader`` device), leaves preconfig, and reads the firmware's
lines from the guest UART (``-serial file:uart0.log``, i.e. chardev
``serial0``).

The same firmware ELFs also run on QEMU's built-in ``-M virt`` (stock Debian
QEMU and the patched build), which proves the firmware itself.

A test that cannot find the QEMU binary it needs skips with a loud reason, and
fails instead under CI.  The firmware is built from source once per session
(firmware/build.sh); missing cross tools fail under CI as well.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from needs import IN_CI, missing
from qemu.qmp import ExecuteError

REPO = Path(__file__).resolve().parents[2]

# A QMP step: command name and its arguments.
Step = tuple[str, dict[str, Any]]

RISCV_RAM_BASE = 0x80000000
RISCV_UART_BASE = 0x10000000
RISCV_MTIMER_BASE = 0x2004000
RISCV_TEST_BASE = 0x100000
RISCV_IRQ_M_TIMER = 7  # index of the M-mode timer line among a hart's GPIO inputs
# Name of the hart-id property that the patch series adds to RISC-V CPUs.
RISCV_HARTID_PROP = "mhartid"

AARCH64_RAM_BASE = 0x40000000
AARCH64_UART_BASE = 0x09000000
PSCI_CONDUIT_HVC = 2

RAM_SIZE = 16 * 1024 * 1024

RISCV_LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]
AARCH64_LINES = ["hello from cpu 0", "hello from cpu 1"]

STOCK_BINDIR = Path(os.environ.get("MACHINEDESC_STOCK_QEMU_BINDIR", "/usr/bin"))


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


def aarch64_steps(elf: Path, psci: bool = True) -> list[Step]:
    """QMP steps that build the seed's example board (cluster of two cortex-a72).

    CPU properties (see firmware/README.md): no EL3/EL2 so QEMU's PSCI (HVC
    conduit) serves CPU_ON and SYSTEM_OFF, reset vector at RAM, cpu1 starts
    powered off and cpu0 turns it on.  With PSCI=False: no conduit, every CPU
    starts running (spin-table bring-up), and there is no power-off.
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
            "rvbar": AARCH64_RAM_BASE, "psci-conduit": PSCI_CONDUIT_HVC if psci else 0,
            "start-powered-off": psci and i != 0}))
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


# --- helpers for QMP-built machines ------------------------------------------

UART_LOG = "uart0.log"


def start_preconfig(qemu_launcher: Callable[..., Any], system: str, maxcpus: int = 2) -> Any:
    """A patched ``-M none -smp 1,maxcpus=N -preconfig`` QEMU, serial0 to a file."""
    return qemu_launcher(system, maxcpus=maxcpus, extra_args=["-serial", f"file:{UART_LOG}"])


def uart_text(inst: Any) -> str:
    """What the guest wrote to serial0 so far."""
    path = Path(inst.workdir) / UART_LOG
    return path.read_text(errors="replace") if path.exists() else ""


def diag(inst: Any) -> str:
    """Context for a failure: command line, exit status, UART, stderr."""
    return (f"\ncommand: {' '.join(inst.argv)}\nexit status: {inst.process.poll()}"
            f"\nUART: {uart_text(inst)!r}\nstderr: {inst.stderr_text()!r}")


def run_steps(inst: Any, steps: list[Step]) -> None:
    """Send the steps in order; a failing step fails the test and names the step."""
    for n, (name, args) in enumerate(steps, 1):
        try:
            inst.cmd(name, **args)
        except ExecuteError as err:
            raise AssertionError(
                f"step {n}/{len(steps)} {name} {args} failed: "
                f"{err.error_class}: {err.error.error.desc}" + diag(inst)) from err


def phase(inst: Any) -> str:
    """The machine phase that query-machine-phase reports."""
    return str(inst.cmd("query-machine-phase")["phase"])


def wait_uart(inst: Any, text: str, count: int = 1, timeout: float = 30.0) -> str:
    """Wait until TEXT appeared COUNT times on the UART; return the whole output."""
    deadline = time.monotonic() + timeout
    while True:
        out = uart_text(inst)
        if out.count(text) >= count:
            return out
        if time.monotonic() > deadline or inst.process.poll() is not None:
            # QEMU may have exited right after writing: read once more.
            out = uart_text(inst)
            if out.count(text) >= count:
                return out
            raise AssertionError(f"{text!r} did not appear {count} time(s)" + diag(inst))
        time.sleep(0.01)


def wait_exit(inst: Any, timeout: float = 30.0) -> int:
    """Wait for QEMU to exit by itself (guest power-off); return its status."""
    try:
        return int(inst.wait_exit(timeout))
    except subprocess.TimeoutExpired:
        raise AssertionError(f"QEMU still running after {timeout}s" + diag(inst)) from None


def nonblank_lines(out: str) -> list[str]:
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


# --- QMP-built machines on the patched QEMU ---------------------------------

def test_riscv64_qmp_machine_boots_and_powers_off(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    inst = start_preconfig(qemu_launcher, "riscv64")
    assert phase(inst) == "late-backends-created"
    run_steps(inst, riscv_steps(firmware / "riscv64-hello.elf"))
    assert phase(inst) == "initialized"
    # The wiring really points at the harts' M-timer inputs.
    for i in range(2):
        target = inst.cmd("qom-get", path="mtimer", property=f"unnamed-gpio-out[{i}]")
        assert str(target).endswith(f"/hart{i}/unnamed-gpio-in[{RISCV_IRQ_M_TIMER}]"), target
    assert inst.cmd("qom-get", path="hart1", property="mhartid") == 1
    run_steps(inst, [("x-exit-preconfig", {})])
    out = wait_uart(inst, "hello from timer interrupt")
    assert nonblank_lines(out) == RISCV_LINES, out
    # The firmware powers off through the SiFive test device: QEMU exits 0.
    assert wait_exit(inst) == 0, diag(inst)


def test_aarch64_seed_board_both_cpus_print(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    inst = start_preconfig(qemu_launcher, "aarch64")
    run_steps(inst, aarch64_steps(firmware / "aarch64-hello.elf"))
    assert phase(inst) == "initialized"
    run_steps(inst, [("x-exit-preconfig", {})])
    out = wait_uart(inst, "hello from cpu 1")
    assert nonblank_lines(out) == AARCH64_LINES, out
    # PSCI SYSTEM_OFF from the firmware: QEMU exits 0.
    assert wait_exit(inst) == 0, diag(inst)


def test_riscv64_qmp_machine_with_four_harts(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    inst = start_preconfig(qemu_launcher, "riscv64", maxcpus=4)
    run_steps(inst, riscv_steps(firmware / "riscv64-hello-4harts.elf", nharts=4))
    run_steps(inst, [("x-exit-preconfig", {})])
    out = wait_uart(inst, "hello from timer interrupt")
    assert nonblank_lines(out) == [f"hello from hart {k}" for k in range(4)] + [
        "hello from timer interrupt"], out
    assert wait_exit(inst) == 0, diag(inst)


def test_aarch64_spin_table_bring_up_without_psci(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    """Both CPUs start running; the firmware's HVC/SMC trap and are skipped."""
    inst = start_preconfig(qemu_launcher, "aarch64")
    run_steps(inst, aarch64_steps(firmware / "aarch64-hello.elf", psci=False))
    run_steps(inst, [("x-exit-preconfig", {})])
    out = wait_uart(inst, "hello from cpu 1")
    assert nonblank_lines(out) == AARCH64_LINES, out
    # No PSCI, no SYSTEM_OFF: QEMU keeps running, and the CPUs are parked.
    time.sleep(0.3)
    assert inst.process.poll() is None, diag(inst)
    assert inst.cmd("query-status")["status"] == "running"


def test_riscv64_system_reset_runs_firmware_again(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    inst = start_preconfig(qemu_launcher, "riscv64")
    run_steps(inst, riscv_steps(firmware / "riscv64-hello-nopoweroff.elf"))
    run_steps(inst, [("x-exit-preconfig", {})])
    wait_uart(inst, "hello from timer interrupt")
    assert phase(inst) == "ready"
    run_steps(inst, [("system_reset", {})])
    out = wait_uart(inst, "hello from timer interrupt", count=2)
    assert nonblank_lines(out) == RISCV_LINES * 2, out
    assert inst.process.poll() is None, "the nopoweroff firmware must not stop QEMU"


def test_aarch64_system_reset_runs_firmware_again(
        firmware: Path, qemu_launcher: Callable[..., Any]) -> None:
    inst = start_preconfig(qemu_launcher, "aarch64")
    run_steps(inst, aarch64_steps(firmware / "aarch64-hello-nopoweroff.elf"))
    run_steps(inst, [("x-exit-preconfig", {})])
    wait_uart(inst, "hello from cpu 1")
    run_steps(inst, [("system_reset", {})])
    # cpu1 was powered on by PSCI in the first run: reset must power it off
    # again (start-powered-off) and the firmware must bring it up again.
    out = wait_uart(inst, "hello from cpu 1", count=2)
    assert nonblank_lines(out) == AARCH64_LINES * 2, out


# --- the same firmware on QEMU's built-in -M virt ----------------------------

def run_virt(binary: Path, system: str, elf: Path, smp: int) -> str:
    """Boot ELF on -M virt with serial0 on stdout; QEMU must exit 0 (power-off)."""
    if system == "riscv64":
        machine = ["-M", "virt", "-smp", str(smp), "-bios", str(elf)]
    else:
        machine = ["-M", "virt", "-cpu", "cortex-a72", "-smp", str(smp), "-kernel", str(elf)]
    argv = [str(binary), *machine, "-nodefaults", "-no-user-config",
            "-display", "none", "-serial", "stdio"]
    try:
        res = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                             timeout=60, check=False)
    except subprocess.TimeoutExpired as err:
        raise AssertionError(f"{' '.join(argv)} did not power off: {err.stdout!r}") from None
    out = res.stdout.decode(errors="replace")
    assert res.returncode == 0, f"{' '.join(argv)}: {res.returncode} {out!r} {res.stderr!r}"
    return out


def virt_binary(build: str, system: str, qemu_binary: Callable[[str], Path]) -> Path:
    return stock_qemu(system) if build == "stock" else qemu_binary(system)


@pytest.mark.parametrize("build", ["stock", "patched"])
def test_riscv64_firmware_on_virt(build: str, firmware: Path,
                                  qemu_binary: Callable[[str], Path]) -> None:
    qemu = virt_binary(build, "riscv64", qemu_binary)
    out = run_virt(qemu, "riscv64", firmware / "riscv64-hello.elf", 2)
    assert nonblank_lines(out) == RISCV_LINES, out


def test_riscv64_four_hart_firmware_on_virt(firmware: Path) -> None:
    out = run_virt(stock_qemu("riscv64"), "riscv64", firmware / "riscv64-hello-4harts.elf", 4)
    assert nonblank_lines(out) == [f"hello from hart {k}" for k in range(4)] + [
        "hello from timer interrupt"], out


@pytest.mark.parametrize("build", ["stock", "patched"])
def test_aarch64_firmware_on_virt(build: str, firmware: Path,
                                  qemu_binary: Callable[[str], Path]) -> None:
    qemu = virt_binary(build, "aarch64", qemu_binary)
    out = run_virt(qemu, "aarch64", firmware / "aarch64-hello.elf", 2)
    assert nonblank_lines(out) == AARCH64_LINES, out
