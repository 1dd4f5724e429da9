"""End-to-end boot tests: the demo firmware on catalog boards built over QMP, and on -M virt.

The QMP-built machines come from machinedesc's own pytest plugin
(machinedesc/pytest_plugin.py, docs/api.md): ``machine_factory`` plans a
catalog board (``boards/soc.yaml``...) with the firmware ELF loaded through
the ``loader`` device, builds it in the patched ``qemu-system-<arch> -M none
-preconfig`` with apply's engine (capability probe, steps, verification),
starts the CPUs and hands the test the machine: its console (pexpect-style
``expect``), QMP on the build's connection, and QEMU's exit status. Every
machine is torn down when its test ends. Board x firmware pairs are an
ordinary ``parametrize``; the suite runs under pytest-xdist (``-n auto``).

The same firmware ELFs also run on QEMU's built-in ``-M virt`` (stock Debian
QEMU and the patched build), which proves the firmware itself.

A test that cannot find the QEMU binary it needs skips with a loud reason, and
fails instead under CI.  The firmware is built from source once per session
(firmware/build.sh); missing cross tools fail under CI as well.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from needs import IN_CI, missing

from machinedesc.api import QemuTimeoutError
from machinedesc.pytest_plugin import MachineFactory

REPO = Path(__file__).resolve().parents[2]
BOARDS = REPO / "boards"

RISCV_IRQ_M_TIMER = 7  # index of the M-mode timer line among a hart's GPIO inputs

RISCV_LINES = ["hello from hart 0", "hello from hart 1", "hello from timer interrupt"]
AARCH64_LINES = ["hello from cpu 0", "hello from cpu 1"]
RISCV_4_LINES = [f"hello from hart {k}" for k in range(4)] + ["hello from timer interrupt"]

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


def nonblank_lines(out: str) -> list[str]:
    return [ln.strip() for ln in out.splitlines() if ln.strip()]


@pytest.fixture(scope="session")
def patched(qemu_binary: Callable[[str], Path]) -> Callable[[str], Path]:
    """The patched binary per system (skips loudly, or fails under CI, when it is not built)."""
    return qemu_binary


# --- catalog boards built over QMP on the patched QEMU, through the plugin ----

#: Board x firmware: every catalog board that boots a demo firmware, and what the firmware prints.
MATRIX = [
    ("soc.yaml", "riscv64", "riscv64-hello.elf", RISCV_LINES),
    ("soc-4core.yaml", "riscv64", "riscv64-hello-4harts.elf", RISCV_4_LINES),
    ("soc.yaml", "riscv64", "riscv64-hello-4harts.elf", None),  # 4-hart firmware, 2 harts: see below
    ("seed-a72.yaml", "aarch64", "aarch64-hello.elf", AARCH64_LINES),
    ("a72-dma.yaml", "aarch64", "aarch64-hello.elf", AARCH64_LINES),
]


@pytest.mark.parametrize("board, system, elf, expected", MATRIX,
                         ids=[f"{b.removesuffix('.yaml')}-{e.removesuffix('.elf')}" for b, _, e, _ in MATRIX])
def test_board_boots_firmware_and_powers_off(board: str, system: str, elf: str, expected: list[str] | None,
                                             machine_factory: MachineFactory, firmware: Path,
                                             patched: Callable[[str], Path]) -> None:
    m = machine_factory(BOARDS / board, firmware=[firmware / elf], qemu=patched(system))
    if expected is None:
        # The 4-hart image waits for harts 2 and 3, which this board does not have: it never finishes.
        m.console.expect_exact("hello from hart 1", timeout=30)
        with pytest.raises(AssertionError, match="hello from timer interrupt"):
            m.console.expect_exact("hello from timer interrupt", timeout=0.5)
        assert m.exit_status is None
        return
    m.console.expect_exact(expected[-1], timeout=30)
    # The firmware powers off (SiFive test device, PSCI SYSTEM_OFF): QEMU exits 0.
    assert m.wait(timeout=30) == 0
    assert nonblank_lines(m.console.text) == expected


def test_riscv64_machine_is_wired_as_the_board_says(machine_factory: MachineFactory, firmware: Path,
                                                    patched: Callable[[str], Path]) -> None:
    m = machine_factory(BOARDS / "soc.yaml", firmware=[firmware / "riscv64-hello.elf"],
                        qemu=patched("riscv64"), paused=True)
    # Built and verified, CPUs not started yet: preconfig is over.
    assert m.qmp("query-machine-phase")["phase"] == "ready"
    # The wiring really points at the harts' M-timer inputs.
    for i in range(2):
        target = m.qmp("qom-get", path="mtimer", property=f"unnamed-gpio-out[{i}]")
        assert str(target).endswith(f"/hart{i}/unnamed-gpio-in[{RISCV_IRQ_M_TIMER}]"), target
    assert m.qmp("qom-get", path="hart1", property="mhartid") == 1
    assert m.console.text == ""  # nothing ran before cont
    m.qmp("cont")
    m.console.expect_exact("hello from timer interrupt", timeout=30)
    assert m.wait(timeout=30) == 0
    assert nonblank_lines(m.console.text) == RISCV_LINES


def test_aarch64_spin_table_bring_up_without_psci(machine_factory: MachineFactory, firmware: Path,
                                                  patched: Callable[[str], Path], tmp_path: Path) -> None:
    """Both CPUs start running; the firmware's HVC/SMC trap and are skipped."""
    text = (BOARDS / "seed-a72.yaml").read_text()
    assert "psci-conduit: 2" in text and "start-powered-off: ${i != 0}" in text
    board = tmp_path / "seed-a72-spin.yaml"
    board.write_text(text.replace("psci-conduit: 2", "psci-conduit: 0")
                     .replace("start-powered-off: ${i != 0}", "start-powered-off: false"))
    m = machine_factory(board, firmware=[firmware / "aarch64-hello.elf"], qemu=patched("aarch64"))
    m.console.expect_exact("hello from cpu 1", timeout=30)
    # No PSCI, no SYSTEM_OFF: QEMU keeps running, and the CPUs are parked.
    with pytest.raises(QemuTimeoutError, match="did not power off"):
        m.wait(timeout=0.3)
    assert nonblank_lines(m.console.text) == AARCH64_LINES
    assert m.qmp("query-status")["status"] == "running"


@pytest.mark.parametrize("board, system, elf, last, lines", [
    ("soc.yaml", "riscv64", "riscv64-hello-nopoweroff.elf", "hello from timer interrupt", RISCV_LINES),
    # cpu1 was powered on by PSCI in the first run: reset must power it off
    # again (start-powered-off) and the firmware must bring it up again.
    ("seed-a72.yaml", "aarch64", "aarch64-hello-nopoweroff.elf", "hello from cpu 1", AARCH64_LINES),
], ids=["riscv64", "aarch64"])
def test_system_reset_runs_firmware_again(board: str, system: str, elf: str, last: str, lines: list[str],
                                          machine_factory: MachineFactory, firmware: Path,
                                          patched: Callable[[str], Path]) -> None:
    m = machine_factory(BOARDS / board, firmware=[firmware / elf], qemu=patched(system))
    m.console.expect_exact(last, timeout=30)
    assert m.qmp("query-machine-phase")["phase"] == "ready"
    m.qmp("system_reset")
    m.console.expect_exact(last, timeout=30)
    assert nonblank_lines(m.console.text) == lines * 2
    assert m.exit_status is None, "the nopoweroff firmware must not stop QEMU"


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
