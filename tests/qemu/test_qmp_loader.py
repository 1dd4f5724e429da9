"""Tests of firmware loading with the generic loader on machines built over QMP."""

from __future__ import annotations

import re
import struct
import time
from pathlib import Path

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import EM_AARCH64, EM_RISCV, Launcher, QemuInstance, hmp, tiny_elf

RISCV_RAM = 0x80000000
RISCV_UART = 0x10000000
ARM_RAM = 0x40000000
ARM_UART = 0x09000000

# lui t0,0x10000; li t1,'A'; sb t1,0(t0); j .
RISCV_PUTC_A = struct.pack("<4I", 0x100002B7, 0x04100313, 0x00628023, 0x0000006F)
# movz x0,#0x0900,lsl #16; movz w1,#'A'; strb w1,[x0]; b .
ARM_PUTC_A = struct.pack("<4I", 0xD2A12000, 0x52800821, 0x39000001, 0x14000000)


def wait_for_file_text(path: Path, text: str, timeout: float = 10.0) -> str:
    """Poll PATH until it contains TEXT; return its content."""
    deadline = time.monotonic() + timeout
    content = ""
    while time.monotonic() < deadline:
        content = path.read_text(errors="replace") if path.exists() else ""
        if text in content:
            return content
        time.sleep(0.02)
    raise AssertionError(f"{text!r} not in {path} after {timeout}s: {content!r}")


def riscv_board(vm: QemuInstance, harts: int = 1) -> None:
    """One or more harts, 1 MiB of RAM and a serial-mm UART on chardev serial0."""
    vm.cmd("x-machine-init")
    for n in range(harts):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=n)
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x100000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=RISCV_RAM)
    vm.cmd("device_add", driver="serial-mm", id="uart0", regshift=0, chardev="serial0")
    vm.cmd("x-sysbus-mmio-map", device="uart0", addr=RISCV_UART)


def test_riscv_elf_entry_via_cpu_num_runs_and_reruns_on_reset(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", extra_args=["-serial", "file:uart0.log"])
    (vm.workdir / "fw.elf").write_bytes(tiny_elf(EM_RISCV, RISCV_RAM, RISCV_PUTC_A))
    riscv_board(vm)
    vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "fw.elf"),
           **{"cpu-num": 0})
    vm.cmd("x-exit-preconfig")
    log = vm.workdir / "uart0.log"
    assert wait_for_file_text(log, "A") == "A"
    vm.cmd("system_reset")
    assert wait_for_file_text(log, "AA") == "AA"


def test_aarch64_elf_with_rvbar(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("aarch64", extra_args=["-serial", "file:uart0.log"])
    (vm.workdir / "fw.elf").write_bytes(tiny_elf(EM_AARCH64, ARM_RAM, ARM_PUTC_A))
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a72-arm-cpu", id="cpu0", rvbar=ARM_RAM)
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x100000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=ARM_RAM)
    vm.cmd("device_add", driver="pl011", id="uart0", chardev="serial0")
    vm.cmd("x-sysbus-mmio-map", device="uart0", addr=ARM_UART)
    # No cpu-num: the loader only loads; the CPU starts at its reset vector.
    vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "fw.elf"))
    vm.cmd("x-exit-preconfig")
    assert wait_for_file_text(vm.workdir / "uart0.log", "A") == "A"


def test_raw_image_on_none_is_sized_by_its_memory(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", extra_args=["-S", "-serial", "null"])
    (vm.workdir / "fw.bin").write_bytes(RISCV_PUTC_A)
    riscv_board(vm)
    vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "fw.bin"),
           addr=RISCV_RAM, **{"force-raw": True})
    vm.cmd("x-exit-preconfig")
    words = re.findall(r"0x([0-9a-f]{8})", hmp(vm, f"xp /4wx {RISCV_RAM:#x}").split(":", 1)[1])
    assert [int(w, 16) for w in words] == list(struct.unpack("<4I", RISCV_PUTC_A))


def test_raw_image_larger_than_its_memory_is_refused(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", extra_args=["-serial", "null"])
    (vm.workdir / "big.bin").write_bytes(bytes(0x100001))
    riscv_board(vm)
    with pytest.raises(ExecuteError, match="Cannot load specified image"):
        vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "big.bin"),
               addr=RISCV_RAM, **{"force-raw": True})


def test_loader_cpu_num_must_exist(qemu_launcher: Launcher, tmp_path: Path) -> None:
    vm = qemu_launcher("riscv64", extra_args=["-serial", "null"])
    elf = tmp_path / "fw.elf"
    elf.write_bytes(tiny_elf(EM_RISCV, RISCV_RAM, RISCV_PUTC_A))
    riscv_board(vm)
    with pytest.raises(ExecuteError, match="Specified boot CPU#3 is nonexistent"):
        vm.cmd("device_add", driver="loader", id="fw", file=str(elf), **{"cpu-num": 3})
