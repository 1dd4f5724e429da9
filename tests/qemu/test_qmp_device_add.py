"""Tests of device_add in the initialized phase: realized=false, parent=, any type on none, maxcpus."""

from __future__ import annotations

from typing import Any

import pytest
from qemu.qmp import ExecuteError
from qemu_fixtures import Launcher, QemuInstance


def add(vm: QemuInstance, driver: str, dev_id: str, **props: Any) -> None:
    """device_add DRIVER with id DEV_ID and PROPS (hyphenated names allowed)."""
    vm.cmd("device_add", driver=driver, id=dev_id, **props)


def child_names(vm: QemuInstance, path: str) -> set[str]:
    """Names of the QOM child<> properties of PATH."""
    return {p["name"] for p in vm.cmd("qom-list", path=path)
            if str(p["type"]).startswith("child<")}


def phase(vm: QemuInstance) -> str:
    """Current machine phase name."""
    return str(vm.cmd("query-machine-phase")["phase"])


def test_device_add_before_machine_init_is_refused(qmp_riscv64: QemuInstance) -> None:
    with pytest.raises(ExecuteError, match="only after machine initialization; "
                                           "use x-machine-init first"):
        add(qmp_riscv64, "sysbus-memory", "ram0", size=4096)
    # Nothing was created, and QEMU is still there to take the right order.
    qmp_riscv64.cmd("x-machine-init")
    add(qmp_riscv64, "sysbus-memory", "ram0", size=4096)


def test_device_add_in_initialized_realizes_by_default(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "sysbus-memory", "ram0", size=4096)
    assert vm.cmd("qom-get", path="/machine/peripheral/ram0", property="realized") is True


def test_realized_false_then_qom_set(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "serial-mm", "uart0", realized=False, regshift=0)
    path = "/machine/peripheral/uart0"
    assert vm.cmd("qom-get", path=path, property="realized") is False
    # Attached to the system bus already, as qdev_realize() would do.
    assert vm.cmd("qom-get", path=path, property="parent_bus") == "/machine/unattached/sysbus"
    # serial-mm creates its IRQ output at realize.
    assert "sysbus-irq[0]" not in {p["name"] for p in vm.cmd("qom-list", path=path)}
    vm.cmd("qom-set", path="uart0", property="realized", value=True)
    assert vm.cmd("qom-get", path=path, property="realized") is True
    assert "sysbus-irq[0]" in {p["name"] for p in vm.cmd("qom-list", path=path)}


def test_realized_false_accepts_keyval_strings(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", extra_args=[
        "-device", "sysbus-memory,id=ram0,size=4096,realized=false"])
    vm.cmd("x-machine-init")
    assert vm.cmd("qom-get", path="/machine/peripheral/ram0", property="realized") is False


def test_realized_false_must_be_a_boolean(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="'realized' expects a boolean"):
        add(vm, "sysbus-memory", "ram0", size=4096, realized=3)


def test_realized_false_after_ready_is_refused(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-exit-preconfig")
    with pytest.raises(ExecuteError, match="'realized=false' is permitted only before"):
        add(vm, "sysbus-memory", "ram0", size=4096, realized=False)


def test_cluster_with_cpus_created_under_it(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    add(vm, "cpu-cluster", "cluster0", realized=False, **{"cluster-id": 0})
    for n in range(2):
        add(vm, "cortex-a72-arm-cpu", f"cpu{n}", parent="cluster0", realized=False)
    assert {"cpu0", "cpu1"} <= child_names(vm, "/machine/peripheral/cluster0")
    # They are not also under /machine/peripheral.
    assert "cpu0" not in child_names(vm, "/machine/peripheral")
    vm.cmd("qom-set", path="cluster0", property="realized", value=True)
    for n in range(2):
        vm.cmd("qom-set", path=f"/machine/peripheral/cluster0/cpu{n}",
               property="realized", value=True)
    vm.cmd("x-exit-preconfig")
    cpus = vm.cmd("query-cpus-fast")
    assert sorted(c["qom-path"] for c in cpus) == [
        "/machine/peripheral/cluster0/cpu0", "/machine/peripheral/cluster0/cpu1"]


def test_parent_by_qom_path(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "cpu-cluster", "cl", realized=False)
    add(vm, "rv64-riscv-cpu", "hart0", parent="/machine/peripheral/cl", realized=False)
    assert "hart0" in child_names(vm, "/machine/peripheral/cl")


def test_parent_not_found(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="Parent 'nosuch' not found"):
        add(vm, "rv64-riscv-cpu", "hart0", parent="nosuch")


def test_parent_requires_id(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "cpu-cluster", "cl", realized=False)
    with pytest.raises(ExecuteError, match="'parent' requires 'id'"):
        vm.cmd("device_add", driver="rv64-riscv-cpu", parent="cl")


def test_parent_duplicate_child_name(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "cpu-cluster", "cl", realized=False)
    add(vm, "rv64-riscv-cpu", "hart0", parent="cl", realized=False)
    with pytest.raises(ExecuteError, match="already has a child named 'hart0'"):
        add(vm, "rv64-riscv-cpu", "hart0", parent="cl", realized=False)


def test_unknown_device_type(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="'no-such-device' is not a valid device model"):
        add(vm, "no-such-device", "x")


def test_non_user_creatable_types_allowed_only_before_ready(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "serial-mm", "uart0", regshift=0)
    add(vm, "riscv.sifive.test", "test0")
    vm.cmd("x-exit-preconfig")
    # Hot-plug keeps the upstream rule.
    with pytest.raises(ExecuteError, match="pluggable device type"):
        add(vm, "serial-mm", "uart1", regshift=0)


def test_empty_cluster_is_an_error_not_an_abort(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="cpu-cluster 3 has no CPUs"):
        add(vm, "cpu-cluster", "cl", **{"cluster-id": 3})
    add(vm, "cpu-cluster", "cl2", realized=False, **{"cluster-id": 3})
    with pytest.raises(ExecuteError, match="has no CPUs"):
        vm.cmd("qom-set", path="cl2", property="realized", value=True)
    assert phase(vm) == "initialized"


def test_exit_preconfig_with_unrealized_device(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    add(vm, "sysbus-memory", "ram0", size=4096, realized=False)
    with pytest.raises(ExecuteError, match=r"Device 'ram0' \(sysbus-memory\) is not realized"):
        vm.cmd("x-exit-preconfig")
    assert phase(vm) == "initialized"
    vm.cmd("qom-set", path="ram0", property="realized", value=True)
    vm.cmd("x-exit-preconfig")
    assert phase(vm) == "ready"


def test_more_cpus_than_maxcpus_is_an_error(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", maxcpus=2)
    vm.cmd("x-machine-init")
    add(vm, "rv64-riscv-cpu", "h0", mhartid=0)
    add(vm, "rv64-riscv-cpu", "h1", mhartid=1)
    with pytest.raises(ExecuteError, match="Cannot add CPU number 3: maxcpus is 2"):
        add(vm, "rv64-riscv-cpu", "h2", mhartid=2)
    vm.cmd("x-exit-preconfig")
    assert len(vm.cmd("query-cpus-fast")) == 2


def test_four_cpus_run_with_maxcpus_4(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-machine-init")
    for n in range(4):
        add(vm, "cortex-a72-arm-cpu", f"cpu{n}")
    vm.cmd("x-exit-preconfig")
    assert len(vm.cmd("query-cpus-fast")) == 4
    assert vm.cmd("query-status")["status"] == "running"


def test_other_machines_keep_the_upstream_creation_rule(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", machine="virt", extra_args=["-bios", "none"])
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="pluggable device type"):
        add(vm, "serial-mm", "uart9", regshift=0)
    vm.cmd("x-exit-preconfig")
    assert phase(vm) == "ready"
