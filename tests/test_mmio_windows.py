"""Windows of a region (``mmio:`` with ``offset`` and ``size``): model, checks, plan, views, device tree, probe."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from machinedesc.apply.proven import proof_of
from machinedesc.board.model import Mmio
from machinedesc.devicetree.generate import generate
from machinedesc.plan.pipeline import load_board, load_plan
from machinedesc.plan.render import command_line
from machinedesc.qemu.capabilities import Capabilities, alias_refusal
from machinedesc.views.diff import _memory_changes
from machinedesc.views.machine import memory_map
from machinedesc.views.show import render_text, to_data

BOARD = """machinedesc: 1
system: riscv64
components:
  data:
    type: sysbus-memory
    props: {size: 0x4000}
    mmio:
      - addr: 0x80000000
      - {addr: 0x20000000, offset: 0x1000, size: 0x1000}
      - {addr: 0x30000000, offset: 0x1000, size: 0x1000, priority: 2}
      - {addr: 0x40000000, offset: 256 KiB, size: 0x10}
"""


def write(tmp_path: Path, text: str, name: str = "b.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_model_keeps_each_window(tmp_path: Path) -> None:
    ok = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    board = load_board(write(tmp_path, ok))
    data = board.by_id["data"]
    assert [(m.addr, m.offset, m.size, m.priority) for m in data.mmio] == [
        (0x80000000, None, None, 0), (0x20000000, 0x1000, 0x1000, 0),
        (0x30000000, 0x1000, 0x1000, 2), (0x40000000, 0x3FF0, 0x10, 0)]
    assert [m.window for m in data.mmio] == [False, True, True, True]
    assert data.mmio[1].alias_name() == "mmio0-alias-0x1000+0x1000@0x20000000"


def test_a_window_beyond_its_region_is_an_error_at_its_line(tmp_path: Path) -> None:
    from machinedesc.errors import BoardError
    with pytest.raises(BoardError) as err:
        load_board(write(tmp_path, BOARD))
    assert str(err.value).splitlines()[0] == (
        f"{tmp_path / 'b.yaml'}:11:9: components.data.mmio: data region 0 window [0x40000, +0x10) "
        "does not lie within the region (0x4000 bytes)")


def plan_lines(tmp_path: Path, text: str) -> list[str]:
    return [command_line(s) for s in load_plan(write(tmp_path, text)).steps]


def test_the_plan_sends_the_alias_form(tmp_path: Path) -> None:
    ok = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    maps = [line for line in plan_lines(tmp_path, ok) if line.startswith("x-sysbus-mmio-map")]
    assert maps == [
        "x-sysbus-mmio-map device=data addr=2147483648",
        "x-sysbus-mmio-map device=data addr=536870912 offset=4096 size=4096",
        "x-sysbus-mmio-map device=data addr=805306368 priority=2 offset=4096 size=4096",
        "x-sysbus-mmio-map device=data addr=1073741824 offset=16368 size=16",
    ]


def test_each_window_is_verified_and_its_step_proves_it(tmp_path: Path) -> None:
    ok = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    plan = load_plan(write(tmp_path, ok))
    windows = [c for c in plan.components if "/" in c.subject]
    assert [(c.subject, c.path) for c in windows] == [
        (f"data/{name}[0]", f"/machine/peripheral/data/{name}[0]")
        for name in ("mmio0-alias-0x1000+0x1000@0x20000000", "mmio0-alias-0x1000+0x1000@0x30000000",
                     "mmio0-alias-0x3ff0+0x10@0x40000000")]
    assert windows[0].what == "MMIO window 'data/mmio0-alias-0x1000+0x1000@0x20000000[0]'"
    proof = proof_of(plan.steps)
    assert all(proof.covers(c) for c in plan.checks)
    # Without the step of the window, its check is not proven (verify asks QEMU).
    steps = [s for s in plan.steps if s.arguments.get("addr") != 0x20000000]
    assert not proof_of(steps).covers(windows[0])


def test_windows_of_one_region_may_overlap_nothing_but_what_they_cover(tmp_path: Path) -> None:
    """The region is 16 KiB; each window occupies only its own 4 KiB: no overlap between them or with the region."""
    text = """machinedesc: 1
system: riscv64
components:
  rom:
    type: sysbus-memory
    props: {size: 0x4000, readonly: true}
    mmio:
      - addr: 0x0
      - {addr: 0x4000, offset: 0, size: 0x1000}
      - {addr: 0x5000, offset: 0, size: 0x1000}
      - {addr: 0x2000, offset: 0x3000, size: 0x1000, priority: 1}  # over the region itself: wins
  uart0: {type: serial-mm, props: {regshift: 0}, mmio: 0x6000}
"""
    board = load_board(write(tmp_path, text))
    assert len(board.by_id["rom"].mmio) == 4


def test_show_lists_each_window_as_an_alias(tmp_path: Path) -> None:
    ok = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    board = load_board(write(tmp_path, ok))
    rows = [r for r in memory_map(board) if not r.is_hole]
    assert [(r.start, r.size, r.region_text) for r in rows] == [
        (0x20000000, 0x1000, "0+0x1000"), (0x30000000, 0x1000, "0+0x1000"),
        (0x40000000, 0x10, "0+0x3ff0"), (0x80000000, 0x4000, "0")]
    assert rows[0].notes == ("alias: bytes [0x1000, 0x2000) of data region 0; the region itself is at 0x80000000",)
    text = render_text(board)
    assert "0x20000000 (window 0x1000+0x1000)" in text
    assert "  0x20000000 0x20000fff      4 KiB  data           0+0x1000    0  sysbus-memory" in text
    data = to_data(board)
    assert data["components"][0]["mmio"][1] == {"region": 0, "addr": 0x20000000, "priority": 0,
                                                "offset": 0x1000, "size": 0x1000}
    assert data["memory_map"][0]["offset"] == 0x1000
    assert "offset" not in data["memory_map"][-1]
    json.dumps(data)


def test_a_window_only_region_is_not_mapped_says_show(tmp_path: Path) -> None:
    text = BOARD.replace("      - addr: 0x80000000\n", "").replace("offset: 256 KiB, size: 0x10",
                                                                     "offset: 0x3ff0, size: 0x10")
    rows = [r for r in memory_map(load_board(write(tmp_path, text))) if not r.is_hole]
    assert rows[0].notes[0].endswith("the region itself is not mapped")


def test_diff_names_a_window(tmp_path: Path) -> None:
    old = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    new = old.replace("{addr: 0x20000000, offset: 0x1000", "{addr: 0x28000000, offset: 0x1000")
    changes = _memory_changes(load_board(write(tmp_path, old, "a.yaml")), load_board(write(tmp_path, new, "b.yaml")))
    texts = [c.text for c in changes]
    # Sizes in units, as show's memory map has them (the window's offset stays an address-like hex).
    assert "data region 0 window +0x1000: 0x20000000 size 4 KiB, 0x30000000 size 4 KiB priority 2 -> " \
           "0x28000000 size 4 KiB, 0x30000000 size 4 KiB priority 2" in texts


def test_device_tree_describes_the_region_not_its_windows(tmp_path: Path) -> None:
    ok = BOARD.replace("offset: 256 KiB, size: 0x10", "offset: 0x3ff0, size: 0x10")
    tree = generate(load_board(write(tmp_path, ok)))
    dts = tree.to_dts()
    assert "memory@80000000" in dts and "memory@20000000" not in dts
    assert sum("is an alias, not described in the device tree" in n for n in tree.notes) == 3


def test_device_tree_of_a_region_mapped_only_through_windows(tmp_path: Path) -> None:
    text = """machinedesc: 1
system: riscv64
components:
  ram:
    type: sysbus-memory
    props: {size: 0x10000000}
    mmio: [{addr: 0x80000000, offset: 0x1000000, size: 0x1000000}]
  uart0:
    type: serial-mm
    props: {regshift: 0}
    mmio: [{addr: 0x10000000, offset: 0, size: 0x8}, {addr: 0x10001000, offset: 0, size: 0x8}]
"""
    dts = generate(load_board(write(tmp_path, text))).to_dts()
    # RAM: its first window (the guest sees that RAM there); the UART: its first window at offset 0.
    assert "memory@80000000" in dts and "reg = <0x0 0x80000000 0x0 0x1000000>;" in dts
    assert "serial@10000000" in dts and "serial@10001000" not in dts


def caps(with_alias: bool) -> Capabilities:
    members = {"device", "mmio", "addr", "priority"} | ({"offset", "size"} if with_alias else set())
    return Capabilities({"x-sysbus-mmio-map": (frozenset(members), None, {})}, frozenset())


def test_a_qemu_without_the_alias_form_refuses_at_the_first_window() -> None:
    commands = [("x-sysbus-mmio-map", {"device": "d", "addr": 0}),
                ("x-sysbus-mmio-map", {"device": "d", "addr": 0x1000, "offset": 0, "size": 0x1000}),
                ("x-sysbus-mmio-map", {"device": "d", "addr": 0x2000, "offset": 0, "size": 0x1000})]
    where = ["b.yaml:8:9", "b.yaml:9:9", "b.yaml:10:9"]
    text = alias_refusal(caps(False), commands, where, "/old/qemu-system-riscv64 (QEMU 10.0.2)")
    assert text is not None
    assert text.splitlines()[0] == ("b.yaml:9:9: /old/qemu-system-riscv64 (QEMU 10.0.2) cannot map a window of a "
                                    "region (mmio: with offset and size): its x-sysbus-mmio-map has no alias form")
    assert "patch 32" in text.splitlines()[1]
    assert alias_refusal(caps(True), commands, where, "q") is None
    assert alias_refusal(caps(False), commands[:1], where, "q") is None


def test_mmio_describe() -> None:
    assert Mmio(1, 0x10, 0, None, None).describe("u") == "u region 1"
    assert Mmio(1, 0x10, 0, 0x20, None, 0x8).describe("u") == "u region 1 window [0x8, +0x20)"


PCIE = """machinedesc: 1
system: aarch64
components:
  cpu0: {type: cortex-a57-arm-cpu}
  gic:
    type: arm-gicv3
    props: {num-cpu: 1, num-irq: 288}
    mmio: [{addr: 0x08000000}, {addr: 0x080a0000, region: 1}]
  pcie:
    type: gpex-pcihost
    mmio:
      - {addr: 0x4010000000, offset: 0, size: 0x10000000}
      - {addr: 0x8000000000, region: 1, offset: 0x8000000000, size: 0x8000000000}
      - {addr: 0x10000000, region: 1, offset: 0x10000000, size: 0x2eff0000}
      - {addr: 0x3eff0000, region: 2}
wiring:
  pcie-gic: {from: "pcie.sysbus-irq[0..3]", to: "gic.unnamed-gpio-in[3..6]"}
"""


def test_a_pcie_host_gets_its_ranges_from_its_windows(tmp_path: Path) -> None:
    """As -M virt writes it (hw/arm/virt.c create_pcie): ECAM reg, I/O + 32-bit + 64-bit ranges, swizzled INTx."""
    dts = generate(load_board(write(tmp_path, PCIE))).to_dts()
    node = dts.split("pcie: pcie@4010000000 {")[1].split("};")[0]
    assert 'compatible = "pci-host-ecam-generic";' in node and 'device_type = "pci";' in node
    assert "reg = <0x40 0x10000000 0x0 0x10000000>;" in node
    assert "bus-range = <0x0 0xff>;" in node
    assert ("ranges = <0x1000000 0x0 0x0 0x0 0x3eff0000 0x0 0x10000 "
            "0x2000000 0x0 0x10000000 0x0 0x10000000 0x0 0x2eff0000 "
            "0x3000000 0x80 0x0 0x80 0x0 0x80 0x0>;") in node
    # Slot 0 pin 1 (INTA) is SPI 3, slot 1 pin 1 is SPI 4 (the swizzle), each level-high.
    assert node.count("&gic") == 16
    assert "interrupt-map = <0x0 0x0 0x0 0x1 &gic 0x0 0x3 0x4 0x0 0x0 0x0 0x2 &gic 0x0 0x4 0x4 " in node
    assert "0x800 0x0 0x0 0x1 &gic 0x0 0x4 0x4 " in node
    assert "interrupt-map-mask = <0x1800 0x0 0x0 0x7>;" in node


def test_a_pcie_host_without_its_ecam_at_offset_0_is_left_out(tmp_path: Path) -> None:
    text = PCIE.replace("{addr: 0x4010000000, offset: 0, size: 0x10000000}",
                        "{addr: 0x4010000000, offset: 0x100000, size: 0x1000000}")
    tree = generate(load_board(write(tmp_path, text)))
    assert "pcie@" not in tree.to_dts()
    assert "pcie (gpex-pcihost): its ECAM (region 0) is not mapped at offset 0: left out of the device tree" \
        in tree.notes
