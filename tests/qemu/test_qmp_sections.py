"""QEMU numbers a flat view's sections below its target page size, and validation counts them the same way.

system/physmem.c phys_section_add asserts ``sections_nb < TARGET_PAGE_SIZE``: 1024 on aarch64 under
``-M none`` (its pages vary and stay 1 KiB), 4096 on RISC-V. Each case maps the most regions QEMU
takes, then one more, which aborts QEMU; machinedesc's check (board/checks_mmio.py) must accept the
first board and refuse the second at the region that crosses the limit.
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from qemu_fixtures import Launcher

from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_plan

BASE = 0x10000000


def board(tmp_path: Path, system: str, count: int, driver: str) -> Path:
    """``count`` devices of type ``driver``, each region mapped in a 4 KiB page of its own from BASE."""
    lines = ["machinedesc: 1", f"system: {system}", "components:"]
    for i in range(count):
        lines += [f"  m{i}:", f"    type: {driver}", f"    mmio: {BASE + i * 0x1000:#x}"]
    path = tmp_path / f"{system}-{count}.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def map_in_qemu(launcher: Launcher, system: str, count: int, driver: str) -> int | None:
    """Build the same regions over QMP; None if QEMU lived, else the signal that ended it."""
    vm = launcher(system)
    vm.cmd("x-machine-init")
    vm.cmd("x-batch", commands=[{"execute": "device_add", "arguments": {"driver": driver, "id": f"m{i}"}}
                                for i in range(count)])
    try:
        vm.cmd("x-batch", commands=[{"execute": "x-sysbus-mmio-map",
                                     "arguments": {"device": f"m{i}", "addr": BASE + i * 0x1000}}
                                    for i in range(count)])
        vm.cmd("x-exit-preconfig")
    except Exception:  # noqa: BLE001 (QEMU died: its status says how)
        return -vm.wait_exit(10)
    finally:
        vm.kill()  # closes the monitor too, also after QEMU died
    return None


# Devices without RAM: QEMU's find_ram_offset makes thousands of RAM regions slow to create.
@pytest.mark.parametrize(("system", "most", "driver"), [
    ("aarch64", 1023, "pl011"),              # 4 KiB, whole pages: a section each, and section 0
    ("riscv64", 4095, "riscv.sifive.test"),  # 4 KiB
    ("riscv64", 2047, "serial-mm"),          # 8 bytes: a section, and one for its page's subpage
])
def test_the_most_regions_qemu_takes_validate_and_one_more_is_refused(
        qemu_launcher: Launcher, tmp_path: Path, system: str, most: int, driver: str) -> None:
    assert map_in_qemu(qemu_launcher, system, most, driver) is None
    assert map_in_qemu(qemu_launcher, system, most + 1, driver) == signal.SIGABRT
    load_plan(board(tmp_path, system, most, driver))
    with pytest.raises(BoardError) as err:
        load_plan(board(tmp_path, system, most + 1, driver))
    text = str(err.value)
    assert f"components.m{most}.mmio: the memory map needs at least" in text, text
    assert "phys_section_add" in text and text.count("flat-view sections") == 1
