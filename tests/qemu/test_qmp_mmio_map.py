"""Tests of x-sysbus-mmio-map and the sysbus-memory device."""

from __future__ import annotations

import re

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import QemuInstance, hmp


def flat_ranges(vm: QemuInstance) -> set[str]:
    """Lines of the system address space's flat view ('START-END (prio P, KIND): NAME')."""
    text = hmp(vm, "info mtree -f")
    system = text.split('AS "memory", root: system')[1].split("FlatView")[0]
    return {line.strip() for line in system.splitlines() if re.match(r"\s+[0-9a-f]{16}-", line)}


def test_map_ram_and_rom_and_several_instances(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x10000)
    vm.cmd("device_add", driver="sysbus-memory", id="ram1", size=0x2000)
    vm.cmd("device_add", driver="sysbus-memory", id="rom0", size=0x1000, readonly=True)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x80000000)
    vm.cmd("x-sysbus-mmio-map", device="/machine/peripheral/ram1", addr=0x90000000, mmio=0)
    vm.cmd("x-sysbus-mmio-map", device="rom0", addr=0x1000, priority=1)
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {
        "0000000000001000-0000000000001fff (prio 1, rom): mem",
        "0000000080000000-000000008000ffff (prio 0, ram): mem",
        "0000000090000000-0000000090001fff (prio 0, ram): mem",
    }
    blocks = hmp(vm, "info ramblock")
    assert "/machine/peripheral/ram0" in blocks and "/machine/peripheral/ram1" in blocks
    assert re.search(r"/machine/peripheral/rom0 .* ro\s*$", blocks, re.M)


def test_remap_moves_the_region(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x1000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x80000000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x40000000)
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {"0000000040000000-0000000040000fff (prio 0, ram): mem"}


def test_sysbus_memory_needs_a_size(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="'size' must be set and non-zero"):
        vm.cmd("device_add", driver="sysbus-memory", id="ram0")


def test_map_before_initialized_is_refused(qmp_riscv64: QemuInstance) -> None:
    with pytest.raises(ExecuteError, match="permitted only in the 'initialized' phase"):
        qmp_riscv64.cmd("x-sysbus-mmio-map", device="ram0", addr=0)


def test_map_after_ready_is_refused(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x1000)
    vm.cmd("x-exit-preconfig")
    with pytest.raises(ExecuteError, match="permitted only in the 'initialized' phase"):
        vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0)


def test_map_region_index_out_of_range(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="serial-mm", id="uart0", regshift=0)
    with pytest.raises(ExecuteError,
                       match=r"Device 'uart0' has 1 MMIO region\(s\), index 1 is out of range"):
        vm.cmd("x-sysbus-mmio-map", device="uart0", addr=0x10000000, mmio=1)


def test_map_unknown_device(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="Device 'nosuch' not found"):
        vm.cmd("x-sysbus-mmio-map", device="nosuch", addr=0)


def test_map_non_sysbus_device(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0")
    with pytest.raises(ExecuteError, match="Device 'hart0' is not a sysbus device"):
        vm.cmd("x-sysbus-mmio-map", device="hart0", addr=0)


def test_map_unrealized_device(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x1000, realized=False)
    with pytest.raises(ExecuteError, match="Device 'ram0' is not realized"):
        vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0)


def test_map_missing_address_argument(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="'addr'"):
        vm.cmd("x-sysbus-mmio-map", device="ram0")
