"""Issue 10's table, the rows only QEMU can answer: boards the type data lets through build (real QEMU).

Devices that look CPUs up when they realize are listed before their CPUs and
still build; CPUs a device creates count toward -smp maxcpus; what only
QEMU knows (a loader's missing file) fails at the step and board line; an
unknown device type in a QMP file is exit 4 at its line, not the exit 3 of a
QEMU without the patch series.
"""

from __future__ import annotations

import re
import signal
from pathlib import Path

import pytest
from harness import Sandbox, StderrWatcher

PLIC_FIRST = """machinedesc: 1
system: riscv64
components:
  plic:
    type: riscv.sifive.plic
    props: {hart-config: "MS,MS,MS,MS", hartid-base: 0, num-sources: 32, num-priorities: 7,
            pending-base: 0x1000, enable-base: 0x2000, enable-stride: 0x80, context-base: 0x200000,
            context-stride: 0x1000, aperture-size: 0x600000}
    mmio: 0x0c000000
  swi:
    type: riscv.aclint.swi
    props: {num-harts: 4}
    mmio: 0x2000000
  hart${i}:
    count: 2
    type: rv64-riscv-cpu
    props: {mhartid: "${i}"}
  harts:
    type: riscv.hart_array
    props: {num-harts: 2, hartid-base: 2, cpu-type: rv64-riscv-cpu}
"""

GIC_FIRST = """machinedesc: 1
system: aarch64
components:
  gic:
    type: arm-gicv3
    props: {num-cpu: 2, num-irq: 64, redist-region-count: [2]}
    mmio: 0x8000000
  cpu${i}:
    count: 2
    type: cortex-a72-arm-cpu
"""


def _built(sandbox: Sandbox, board: Path, qemu: Path, *extra: str) -> str:
    """Apply ``board`` until it is built and verified, then stop it with Ctrl-C; stderr."""
    proc = sandbox.start(sandbox.argv_cli("apply", str(board), "--qemu", str(qemu), "-v", *extra))
    err = StderrWatcher(proc)
    err.wait_for("steps in")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(20) == 130
    text = err.finish()
    proc.communicate()
    assert re.search(r"machinedesc: built board '[a-z-]+' \(.*\): \d+ steps in [0-9.]+ s, verified", text), text
    return text


def test_plic_and_aclint_listed_before_their_harts_build(sandbox: Sandbox, patched_riscv64: Path,
                                                         tmp_path: Path) -> None:
    board = tmp_path / "plic-first.yaml"
    board.write_text(PLIC_FIRST)
    text = _built(sandbox, board, patched_riscv64)
    sent = re.findall(r'^-> \{"execute": "device_add", "arguments": \{"driver": "([^"]+)"', text, re.M)
    # Every CPU (and the hart array's) exists before the devices that look them up.
    assert sent.index("riscv.hart_array") < sent.index("riscv.sifive.plic") < sent.index("riscv.aclint.swi")
    assert sent.index("rv64-riscv-cpu") < sent.index("riscv.sifive.plic")
    sandbox.assert_clean()


def test_hart_array_cpus_count_toward_maxcpus(sandbox: Sandbox, patched_riscv64: Path, tmp_path: Path) -> None:
    board = tmp_path / "plic-first.yaml"
    board.write_text(PLIC_FIRST)
    out = sandbox.call(sandbox.argv_cli("plan", str(board)))
    assert out.rc == 0, out.stderr
    assert "-smp 1,maxcpus=4 " in out.stdout


def test_gicv3_listed_before_its_cpus_builds(sandbox: Sandbox, patched_aarch64: Path, tmp_path: Path) -> None:
    board = tmp_path / "gic-first.yaml"
    board.write_text(GIC_FIRST)
    _built(sandbox, board, patched_aarch64)
    sandbox.assert_clean()


def test_loader_with_a_missing_file_fails_at_its_step_and_line(sandbox: Sandbox, patched_riscv64: Path,
                                                                tmp_path: Path) -> None:
    board = tmp_path / "loader.yaml"
    board.write_text("machinedesc: 1\nsystem: riscv64\ncomponents:\n"
                     "  hart0: {type: rv64-riscv-cpu, props: {mhartid: 0}}\n"
                     "  ram: {type: sysbus-memory, props: {size: 1 MiB}, mmio: 0x80000000}\n"
                     f"  fw:\n    type: loader\n    props: {{file: {tmp_path / 'missing.elf'}}}\n")
    out = sandbox.call(sandbox.argv_cli("apply", "--allow-host-access", str(board), "--qemu", str(patched_riscv64)))
    assert out.rc == 4, out.stderr
    assert re.match(r".*loader\.yaml:6:3: step \d+/\d+ failed \(phase initialized\)\n  device_add driver=loader id=fw ",
                    out.stderr), out.stderr
    assert "Cannot load specified image" in out.stderr
    sandbox.assert_clean()


@pytest.mark.parametrize("driver, hint", [("serial-mmm", "did you mean 'serial-mm'?"), ("no-such-type", None)])
def test_unknown_type_in_a_qmp_file_is_exit_4_at_its_line(sandbox: Sandbox, patched_riscv64: Path, tmp_path: Path,
                                                          driver: str, hint: str | None) -> None:
    qmp = tmp_path / "typo.qmp"
    qmp.write_text("# machinedesc plan, format 1\n# system: riscv64\n"
                   "# qemu: qemu-system-riscv64 -M none -nodefaults -display none -preconfig\n"
                   "# phase: accel-created\nx-machine-init\n# phase: initialized\n"
                   f"device_add driver={driver} id=uart0\nx-exit-preconfig\n")
    out = sandbox.call(sandbox.argv_cli("run", str(qmp), "--qemu", str(patched_riscv64)))
    assert out.rc == 4, out.stderr
    lines = out.stderr.splitlines()
    assert re.fullmatch(r".*typo\.qmp:7:1: step 2/3 failed \(phase initialized\)", lines[0]), out.stderr
    assert f"has no device type '{driver}' (nothing was sent to QEMU)" in out.stderr
    assert (f"  hint: {hint}" in lines) if hint else not any("hint" in line for line in lines), out.stderr
    assert "patch series" not in out.stderr
    sandbox.assert_clean()


def test_hart_id_far_above_maxcpus_builds(sandbox: Sandbox, patched_riscv64: Path, tmp_path: Path) -> None:
    # QEMU before patch 37 sized its implied-extension bitmaps by -smp 1 and indexed them by hart ID: SIGSEGV.
    board = tmp_path / "hart.yaml"
    board.write_text("machinedesc: 1\nsystem: riscv64\ncomponents:\n"
                     "  hart0: {type: rv64-riscv-cpu, props: {mhartid: 0x10000000}}\n"
                     "  ram: {type: sysbus-memory, props: {size: 1 MiB}, mmio: 0x80000000}\n")
    _built(sandbox, board, patched_riscv64)
    sandbox.assert_clean()


# Properties whose combination QEMU cannot build (bench/limit_sweep.py): no single-property limit says so, QEMU's
# realize refuses them (patches 38, 39), and apply reports that at the device's line.
PFLASH = {
    "cfi.pflash02": ("{name: flash, num-blocks: 0x10000, sector-length: 0x10000, width: 2}",
                     'unsupported configuration: flash size ("num-blocks" * "sector-length") 0x100000000 bytes: '
                     "it must be 1 byte to 4 GiB - 1"),
    "cfi.pflash01": ("{name: flash, num-blocks: 4, sector-length: 0x40000, width: 1, device-width: 2}",
                     'unsupported configuration: "device-width" (2) is larger than "width" (1)'),
}


@pytest.mark.parametrize("driver", sorted(PFLASH))
def test_flash_properties_qemu_refuses_fail_at_their_line(sandbox: Sandbox, patched_aarch64: Path, tmp_path: Path,
                                                          driver: str) -> None:
    props, error = PFLASH[driver]
    board = tmp_path / "flash.yaml"
    board.write_text("machinedesc: 1\nsystem: aarch64\ncomponents:\n  cpu0: {type: cortex-a53-arm-cpu}\n"
                     f"  flash:\n    type: {driver}\n    props: {props}\n    mmio: 0x0\n")
    out = sandbox.call(sandbox.argv_cli("apply", str(board), "--qemu", str(patched_aarch64)))
    assert out.rc == 4, out.stderr
    assert re.search(r"(^|\n).*flash\.yaml:5:3: step \d+/\d+ failed \(phase initialized\)\n"
                     rf"  device_add driver={re.escape(driver)} id=flash ", out.stderr), out.stderr
    assert f"QEMU error GenericError: {error}\n" in out.stderr, out.stderr
    sandbox.assert_clean()
