"""Tests of query-machine-phase, x-machine-init and x-exit-preconfig on the patched QEMU."""

from __future__ import annotations

import pytest
from qemu.qmp import ExecuteError

from qemu_fixtures import Launcher, QemuInstance

PHASES = ["no-machine", "machine-created", "accel-created", "late-backends-created",
          "initialized", "ready"]


def phase(vm: QemuInstance) -> str:
    """Current machine phase name."""
    result = vm.cmd("query-machine-phase")
    assert isinstance(result, dict)
    return str(result["phase"])


def test_preconfig_stops_in_late_backends_created(qmp_riscv64: QemuInstance) -> None:
    assert phase(qmp_riscv64) == "late-backends-created"


def test_schema_lists_all_phases(qmp_riscv64: QemuInstance) -> None:
    schema = qmp_riscv64.cmd("query-qmp-schema")
    enums = [entry for entry in schema
             if entry.get("meta-type") == "enum" and entry.get("values") == PHASES]
    assert enums, "MachinePhase enum with the six real phase names is not in the schema"


def test_machine_init_then_exit_preconfig(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    assert vm.cmd("x-machine-init") == {}
    assert phase(vm) == "initialized"
    assert vm.cmd("x-exit-preconfig") == {}
    assert phase(vm) == "ready"


def test_exit_preconfig_directly_from_late_backends(qmp_aarch64: QemuInstance) -> None:
    vm = qmp_aarch64
    vm.cmd("x-exit-preconfig")
    assert phase(vm) == "ready"


def test_machine_init_twice_is_an_error(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    with pytest.raises(ExecuteError, match="permitted only before machine initialization"):
        vm.cmd("x-machine-init")
    assert phase(vm) == "initialized"


def test_machine_init_after_ready_is_an_error(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-exit-preconfig")
    with pytest.raises(ExecuteError, match="permitted only before machine initialization"):
        vm.cmd("x-machine-init")


def test_exit_preconfig_after_ready_is_an_error(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("x-exit-preconfig")
    with pytest.raises(ExecuteError, match="permitted only before the machine is ready"):
        vm.cmd("x-exit-preconfig")
    assert phase(vm) == "ready"


def test_without_preconfig_the_machine_is_ready(qemu_launcher: Launcher) -> None:
    vm = qemu_launcher("riscv64", preconfig=False, extra_args=["-S"])
    assert phase(vm) == "ready"
