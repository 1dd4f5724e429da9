"""Tests of IRQ wiring with qom-set on output links (sysbus-irq[N], unnamed-gpio-out[N])."""

from __future__ import annotations

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import QemuInstance

PERIPHERAL = "/machine/peripheral"


def test_uart_irq_to_arm_cpu_input(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a72-arm-cpu", id="cpu0")
    vm.cmd("device_add", driver="pl011", id="uart0")
    target = f"{PERIPHERAL}/cpu0/unnamed-gpio-in[0]"
    vm.cmd("qom-set", path="uart0", property="sysbus-irq[0]", value=target)
    assert vm.cmd("qom-get", path="uart0", property="sysbus-irq[0]") == target
    # Unwired outputs stay empty.
    assert vm.cmd("qom-get", path="uart0", property="sysbus-irq[1]") == ""
    vm.cmd("x-exit-preconfig")
    assert vm.cmd("qom-get", path="uart0", property="sysbus-irq[0]") == target


def test_mtimer_outputs_to_two_harts(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    for n in range(2):
        vm.cmd("device_add", driver="rv64-riscv-cpu", id=f"hart{n}", mhartid=n)
    vm.cmd("device_add", driver="riscv.aclint.mtimer", id="mtimer",
           **{"num-harts": 2, "timebase-freq": 10_000_000})
    for n in range(2):
        # IRQ_M_TIMER is local interrupt 7.
        target = f"{PERIPHERAL}/hart{n}/unnamed-gpio-in[7]"
        vm.cmd("qom-set", path="mtimer", property=f"unnamed-gpio-out[{n}]", value=target)
        assert vm.cmd("qom-get", path="mtimer", property=f"unnamed-gpio-out[{n}]") == target


def test_split_and_or_irq_chain(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a72-arm-cpu", id="cpu0")
    vm.cmd("device_add", driver="pl011", id="uart0")
    vm.cmd("device_add", driver="split-irq", id="split", **{"num-lines": 2})
    vm.cmd("device_add", driver="or-irq", id="or", **{"num-lines": 2})
    vm.cmd("qom-set", path="uart0", property="sysbus-irq[0]",
           value=f"{PERIPHERAL}/split/unnamed-gpio-in[0]")
    vm.cmd("qom-set", path="split", property="unnamed-gpio-out[0]",
           value=f"{PERIPHERAL}/or/unnamed-gpio-in[1]")
    vm.cmd("qom-set", path="or", property="unnamed-gpio-out[0]",
           value=f"{PERIPHERAL}/cpu0/unnamed-gpio-in[1]")
    assert vm.cmd("qom-get", path="or", property="unnamed-gpio-out[0]") == \
        f"{PERIPHERAL}/cpu0/unnamed-gpio-in[1]"
    vm.cmd("x-exit-preconfig")


def test_wiring_to_a_missing_input_is_an_error(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="cortex-a72-arm-cpu", id="cpu0")
    vm.cmd("device_add", driver="pl011", id="uart0")
    with pytest.raises(ExecuteError):
        vm.cmd("qom-set", path="uart0", property="sysbus-irq[0]",
               value=f"{PERIPHERAL}/cpu0/unnamed-gpio-in[99]")
    with pytest.raises(ExecuteError, match="Property 'pl011.sysbus-irq\\[9\\]' not found"):
        vm.cmd("qom-set", path="uart0", property="sysbus-irq[9]",
               value=f"{PERIPHERAL}/cpu0/unnamed-gpio-in[0]")


def test_link_property_checked_at_realize(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x10000)
    with pytest.raises(ExecuteError, match="PL080 'downstream' link not set"):
        vm.cmd("device_add", driver="pl080", id="dma0")
    vm.cmd("device_add", driver="pl080", id="dma1", realized=False)
    region = f"{PERIPHERAL}/ram0/mem[0]"
    vm.cmd("qom-set", path="dma1", property="downstream", value=region)
    vm.cmd("qom-set", path="dma1", property="realized", value=True)
    assert vm.cmd("qom-get", path="dma1", property="downstream") == region
    vm.cmd("x-exit-preconfig")


def test_split_and_or_irq_exist_on_riscv64(qmp_riscv64: QemuInstance) -> None:
    """Patch 13: machinedesc inserts split-irq/or-irq for fan-out and join on any board."""
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=0)
    vm.cmd("device_add", driver="serial-mm", id="uart0")
    vm.cmd("device_add", driver="split-irq", id="split", **{"num-lines": 2})
    vm.cmd("device_add", driver="or-irq", id="or", **{"num-lines": 2})
    vm.cmd("qom-set", path="uart0", property="sysbus-irq[0]",
           value=f"{PERIPHERAL}/split/unnamed-gpio-in[0]")
    vm.cmd("qom-set", path="split", property="unnamed-gpio-out[1]",
           value=f"{PERIPHERAL}/or/unnamed-gpio-in[0]")
    vm.cmd("qom-set", path="or", property="unnamed-gpio-out[0]",
           value=f"{PERIPHERAL}/hart0/unnamed-gpio-in[11]")
    assert vm.cmd("qom-get", path="split", property="unnamed-gpio-out[1]") == \
        f"{PERIPHERAL}/or/unnamed-gpio-in[0]"
    vm.cmd("x-exit-preconfig")
