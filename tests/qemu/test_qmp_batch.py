"""Tests of x-batch: QMP commands run in order in one request, stopping at the first failure."""

from __future__ import annotations

import re
import struct
from typing import Any

from qemu_fixtures import Launcher, QemuInstance, flat_ranges, hmp

RAM = 0x80000000
# lui t0,0x10000; li t1,'A'; sb t1,0(t0); j .
PUTC_A = struct.pack("<4I", 0x100002B7, 0x04100313, 0x00628023, 0x0000006F)


def request(command: str, **arguments: Any) -> dict[str, Any]:
    return {"execute": command, "arguments": arguments}


def test_runs_commands_in_order_and_returns_each_reply(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    result = vm.cmd("x-batch", commands=[
        request("device_add", driver="sysbus-memory", id="ram0", size=0x10000),
        request("x-sysbus-mmio-map", device="ram0", addr=RAM),
        request("x-sysbus-mmio-map", device="ram0", addr=0x1000, offset=0x100, size=0x100),
        {"execute": "qom-get", "arguments": {"path": "ram0", "property": "realized"}, "id": 7},
    ])
    assert result == {"replies": [{"return": {}}, {"return": {}}, {"return": {}},
                                  {"return": True, "id": 7}]}
    # The two maps of one run share a memory transaction: both are in the flat view after it.
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {
        "0000000000001000-00000000000010ff (prio 0, ram): mem @0000000000000100",
        "0000000080000000-000000008000ffff (prio 0, ram): mem",
    }


def test_stops_after_the_first_failure(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    result = vm.cmd("x-batch", commands=[
        request("device_add", driver="sysbus-memory", id="ram0", size=0x1000),
        request("x-sysbus-mmio-map", device="ram0", addr=RAM),
        request("device_add", driver="no-such-device", id="bad"),
        request("device_add", driver="sysbus-memory", id="ram1", size=0x1000),
    ])
    replies = result["replies"]
    assert len(replies) == 3 and replies[:2] == [{"return": {}}, {"return": {}}]
    assert replies[2]["error"]["class"] == "GenericError"
    assert "no-such-device" in replies[2]["error"]["desc"]
    names = {p["name"] for p in vm.cmd("qom-list", path="/machine/peripheral")}
    assert "ram0" in names and "ram1" not in names
    # The map before the failure was committed: the run's transaction ends with the batch.
    vm.cmd("x-exit-preconfig")
    assert flat_ranges(vm) == {"0000000080000000-0000000080000fff (prio 0, ram): mem"}


def test_a_failing_map_ends_its_transaction(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    vm.cmd("x-machine-init")
    vm.cmd("device_add", driver="sysbus-memory", id="ram0", size=0x1000)
    result = vm.cmd("x-batch", commands=[
        request("x-sysbus-mmio-map", device="ram0", addr=RAM),
        request("x-sysbus-mmio-map", device="ram0", addr=0x1000, mmio=3),
    ])
    assert "out of range" in result["replies"][1]["error"]["desc"]
    vm.cmd("x-exit-preconfig")  # QEMU is still consistent after the failed run
    assert flat_ranges(vm) == {"0000000080000000-0000000080000fff (prio 0, ram): mem"}


def test_refuses_what_it_cannot_run(qmp_riscv64: QemuInstance) -> None:
    vm = qmp_riscv64
    for command, message in [
        (request("x-batch", commands=[]), "cannot be run in x-batch"),
        (request("block_resize", node_name="x", size=0), "cannot be run in x-batch"),  # a coroutine command
        ({"exec-oob": "x-batch"}, "exec-oob"),
        (5, "QMP input must be a JSON object"),
        (request("no-such-command"), "has not been found"),
    ]:
        replies = vm.cmd("x-batch", commands=[command, request("query-status")])["replies"]
        assert len(replies) == 1 and message in replies[0]["error"]["desc"], (command, replies)
    assert vm.cmd("x-batch", commands=[]) == {"replies": []}


def test_a_loader_after_a_map_run_sees_the_map(qemu_launcher: Launcher) -> None:
    """The generic loader sizes a raw image by the RAM at its address: the run must be committed first."""
    vm = qemu_launcher("riscv64", extra_args=["-S", "-serial", "null"])
    (vm.workdir / "fw.bin").write_bytes(PUTC_A)
    vm.cmd("x-machine-init")
    result = vm.cmd("x-batch", commands=[
        request("device_add", driver="rv64-riscv-cpu", id="hart0", mhartid=0),
        request("device_add", driver="sysbus-memory", id="ram0", size=0x100000),
        request("x-sysbus-mmio-map", device="ram0", addr=RAM),
        request("device_add", driver="loader", id="fw", file=str(vm.workdir / "fw.bin"),
                addr=RAM, **{"force-raw": True}),
    ])
    assert result == {"replies": [{"return": {}}] * 4}
    vm.cmd("x-exit-preconfig")
    words = re.findall(r"0x([0-9a-f]{8})", hmp(vm, f"xp /4wx {RAM:#x}").split(":", 1)[1])
    assert [int(w, 16) for w in words] == list(struct.unpack("<4I", PUTC_A))
