"""Tests of x-sysbus-mmio-map (whole regions and windows: the alias form) and the sysbus-memory device."""

from __future__ import annotations

import re
import struct
import time

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import EM_RISCV, Launcher, QemuInstance, flat_ranges, hmp, tiny_elf


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


# ---- the alias form: offset and size map a window of the region ----------------

def alias_names(vm: QemuInstance, path: str) -> set[str]:
    """Names of the alias memory regions the device owns (QOM children 'mmio<N>-alias-...')."""
    return {p["name"] for p in vm.cmd("qom-list", path=path)
            if str(p["type"]).startswith("child<") and "-alias-" in p["name"]}


def test_alias_maps_windows_of_one_region_several_times(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x4000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x80000000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x20000000, offset=0x1000, size=0x1000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x30000000, offset=0x3000, size=0x800,
           priority=2)
    # The whole region again, as an alias: [0, size) is a window too.
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x40000000, offset=0, size=0x4000)
    vm.cmd("x-exit-preconfig")
    # The flat view names the aliased region (and its own priority, 0); the
    # alias's priority 2 is read from the alias below.
    assert flat_ranges(vm) == {
        "0000000020000000-0000000020000fff (prio 0, ram): mem @0000000000001000",
        "0000000030000000-00000000300007ff (prio 0, ram): mem @0000000000003000",
        "0000000040000000-0000000040003fff (prio 0, ram): mem",
        "0000000080000000-0000000080003fff (prio 0, ram): mem",
    }
    path = "/machine/peripheral/ram0"
    assert alias_names(vm, path) == {
        "mmio0-alias-0x1000+0x1000@0x20000000[0]",
        "mmio0-alias-0x3000+0x800@0x30000000[0]",
        "mmio0-alias-0x0+0x4000@0x40000000[0]",
    }
    # Each alias is a memory region of its own, in the system address space.
    alias = path + "/mmio0-alias-0x3000+0x800@0x30000000[0]"
    assert vm.cmd("qom-get", path=alias, property="addr") == 0x30000000
    assert vm.cmd("qom-get", path=alias, property="size") == 0x800
    assert vm.cmd("qom-get", path=alias, property="priority") == 2
    assert vm.cmd("qom-get", path=alias, property="container") == "/machine/unattached/system[0]"
    # Mapping a window does not move the region: it stays where the plain form put it.
    assert "0000000080000000-0000000080003fff (prio 0, ram): mem" in flat_ranges(vm)


def test_alias_without_the_region_mapped(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="rom0", size=0x2000, readonly=True)
    vm.cmd("x-sysbus-mmio-map", device="rom0", addr=0x1000, offset=0x1000, size=0x1000)
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {"0000000000001000-0000000000001fff (prio 0, rom): mem @0000000000001000"}


# RISC-V code: print the bytes at 0x20000000 and 0x30000000 (one in each window),
# write 'Z' at 0x30000001, then print the bytes at 0x20000400 and 0x20000401 (the
# same two bytes of the region, through the first window).
READ_TWO_WINDOWS = struct.pack(
    "<15I",
    0x100003B7,  # lui  t2,0x10000      (the UART)
    0x200002B7,  # lui  t0,0x20000      (window 1: region offset 0x1000)
    0x0002C303,  # lbu  t1,0(t0)
    0x00638023,  # sb   t1,0(t2)
    0x300002B7,  # lui  t0,0x30000      (window 2: region offset 0x1400)
    0x0002C303,  # lbu  t1,0(t0)
    0x00638023,  # sb   t1,0(t2)
    0x05A00E13,  # li   t3,'Z'
    0x01C280A3,  # sb   t3,1(t0)
    0x200002B7,  # lui  t0,0x20000
    0x4002C303,  # lbu  t1,0x400(t0)
    0x00638023,  # sb   t1,0(t2)
    0x4012C303,  # lbu  t1,0x401(t0)
    0x00638023,  # sb   t1,0(t2)
    0x0000006F,  # j    .
)


def test_guest_reads_one_region_through_two_windows(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", extra_args=["-serial", "file:uart0.log"])
    (vm.workdir / "fw.elf").write_bytes(tiny_elf(EM_RISCV, 0x80000000, READ_TWO_WINDOWS))
    # 'X' at offset 0x1000 of the region, 'Y' at 0x1400.
    (vm.workdir / "data.bin").write_bytes(b"X" + bytes(0x3FF) + b"Y")
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=0)
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x10000)
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x80000000)
    vm.cmd("device_add", driver="serial-mm", id="uart0", regshift=0, chardev="serial0")
    vm.cmd("x-sysbus-mmio-map", device="uart0", addr=0x10000000)
    vm.cmd("device_add", driver="sysbus-memory", id="data", size=0x2000)
    vm.cmd("x-sysbus-mmio-map", device="data", addr=0x90000000)
    vm.cmd("x-sysbus-mmio-map", device="data", addr=0x20000000, offset=0x1000, size=0x1000)
    vm.cmd("x-sysbus-mmio-map", device="data", addr=0x30000000, offset=0x1400, size=0x800)
    vm.cmd("device_add", driver="loader", id="data-image", file=str(vm.workdir / "data.bin"),
           addr=0x90001000)
    vm.cmd("device_add", driver="loader", id="fw", file=str(vm.workdir / "fw.elf"),
           **{"cpu-num": 0})
    vm.cmd("x-exit-preconfig")
    log = vm.workdir / "uart0.log"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and len(log.read_bytes() if log.exists() else b"") < 4:
        time.sleep(0.02)
    assert log.read_bytes() == b"XYYZ"


def alias_error(vm: QemuInstance, **args: int) -> str:
    """The error of an alias map of a 0x2000-byte region 'ram0' with ARGS."""
    with pytest.raises(ExecuteError) as info:
        vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x40000000, **args)
    return str(info.value.error.error.desc)


@pytest.mark.parametrize(("args", "message"), [
    ({"size": 0x1000}, "'offset' and 'size' must be given together"),
    ({"offset": 0x1000}, "'offset' and 'size' must be given together"),
    ({"offset": 0, "size": 0}, "The size of the window must not be zero"),
    ({"offset": 0x1000, "size": 0x1001}, "The window of 0x1001 bytes at offset 0x1000 "
     "does not lie within MMIO region 0 of device 'ram0' (0x2000 bytes)"),
    ({"offset": 0x2000, "size": 1}, "The window of 0x1 bytes at offset 0x2000 "
     "does not lie within MMIO region 0 of device 'ram0' (0x2000 bytes)"),
    # offset + size wraps around to 0: still outside, not a small window.
    ({"offset": 0x1000, "size": 0xFFFFFFFFFFFFF000}, "The window of 0xfffffffffffff000 bytes "
     "at offset 0x1000 does not lie within MMIO region 0 of device 'ram0' (0x2000 bytes)"),
])
def test_alias_errors(qmp_riscv64: QemuInstance, args: dict[str, int], message: str) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x2000)
    assert alias_error(vm, **args) == message
    # Nothing was mapped, and QEMU takes the right command after the wrong one.
    assert alias_names(vm, "/machine/peripheral/ram0") == set()
    vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0x40000000, offset=0x1000, size=0x1000)
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {"0000000040000000-0000000040000fff (prio 0, ram): mem @0000000000001000"}


def test_alias_region_index_out_of_range(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x2000)
    with pytest.raises(ExecuteError, match=r"has 1 MMIO region\(s\), index 1 is out of range"):
        vm.cmd("x-sysbus-mmio-map", device="ram0", mmio=1, addr=0, offset=0, size=0x1000)


def test_alias_after_ready_is_refused(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x2000)
    vm.cmd("x-exit-preconfig")
    with pytest.raises(ExecuteError, match="permitted only in the 'initialized' phase"):
        vm.cmd("x-sysbus-mmio-map", device="ram0", addr=0, offset=0, size=0x1000)
