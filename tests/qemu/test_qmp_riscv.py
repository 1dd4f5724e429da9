"""Tests of the RISC-V parts: the mhartid property, the ACLINT mtimer realize, reset vectors."""

from __future__ import annotations

import re

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher, QemuInstance, hmp

MTIMER = {"num-harts": 2, "timebase-freq": 10_000_000}


def pcs(vm: QemuInstance) -> list[int]:
    """Program counter of each CPU, from HMP 'info registers -a'."""
    return [int(v, 16) for v in re.findall(r"^ pc\s+([0-9a-f]+)", hmp(vm, "info registers -a"), re.M)]


def test_mhartid_property(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=5)
    assert vm.cmd("qom-get", path="hart0", property="mhartid") == 5
    vm.cmd("x-exit-preconfig")
    assert "mhartid  0000000000000005" in hmp(vm, "info registers")


def test_every_hart_gets_its_implied_extensions(qmp_riscv64: QemuInstance) -> None:
    # V implies Zve64d (target/riscv/cpu.c RVV_IMPLIED). Patch 37: QEMU recorded the rules it had applied
    # per hart ID in bitmaps sized by -smp 1, so hart ID 3000 wrote past them (0x10000000 was a SIGSEGV)
    # and a second hart with ID 0 (another cluster) got no implied extension at all.
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    for n, hartid in enumerate((0, 0, 3000, 0x10000000)):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=hartid, v=True)
    assert [vm.cmd("qom-get", path=f"hart{n}", property="zve64d") for n in range(4)] == [True] * 4
    vm.cmd("x-exit-preconfig")
    assert "mhartid  0000000010000000" in hmp(vm, "info registers -a")


def test_mtimer_after_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    for n in range(2):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=n)
    vm.cmd("device_add", driver="riscv.aclint.mtimer", id="mtimer", **MTIMER)
    assert vm.cmd("qom-get", path="mtimer", property="provide-rdtime") is True
    names = {p["name"] for p in vm.cmd("qom-list", path="/machine/peripheral/mtimer")}
    assert {"unnamed-gpio-out[0]", "unnamed-gpio-out[1]"} <= names
    assert "unnamed-gpio-out[2]" not in names
    assert vm.cmd("qom-get", path="/machine/peripheral/mtimer/riscv.aclint.mtimer[0]",
                  property="size") == 0x8000
    vm.cmd("x-sysbus-mmio-map", device="mtimer", addr=0x2000000)
    vm.cmd("x-exit-preconfig")


def test_mtimer_before_its_harts_is_an_error(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=0)
    with pytest.raises(ExecuteError, match="no RISC-V hart with hart ID 1"):
        vm.cmd("device_add", driver="riscv.aclint.mtimer", id="mtimer", **MTIMER)
    # An unrealized timer can wait for its harts.
    vm.cmd("device_add", driver="riscv.aclint.mtimer", id="mtimer", realized=False, **MTIMER)
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart1", mhartid=1)
    vm.cmd("qom-set", path="mtimer", property="realized", value=True)


def test_mtimer_needs_a_timebase(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0")
    with pytest.raises(ExecuteError, match="timebase-freq must be set"):
        vm.cmd("device_add", driver="riscv.aclint.mtimer", id="mtimer")


def test_harts_start_at_their_resetvec(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", maxcpus=2, extra_args=["-S"])
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=0, resetvec=0x80000000)
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart1", mhartid=1, resetvec=0x80001000)
    vm.cmd("x-exit-preconfig")
    # The first reset (QMP-created CPUs are registered for it) sets each PC.
    assert pcs(vm) == [0x80000000, 0x80001000]
    vm.cmd("cont")
    vm.cmd("stop")
    vm.cmd("system_reset")
    assert pcs(vm) == [0x80000000, 0x80001000]
