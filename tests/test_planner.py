"""Model, checks, step graph and planner: the decisions a plan is made of."""

from __future__ import annotations

from pathlib import Path

import pytest

from machinedesc.errors import BoardError
from machinedesc.plan.pipeline import load_board, load_plan
from machinedesc.plan.steps import Plan, StepKind
from machinedesc.qemu.phases import Phase

HEADER = "machinedesc: 1\nsystem: riscv64\nchardevs: {serial0: stdio}\n"
#: For boards of made-up types (or types another system has): a system without a
#: type database, where only the hand table (qemu/data/qemu_types.yaml) applies.
VENDOR = HEADER.replace("system: riscv64", "system: vendor")


def plan_of(tmp_path: Path, body: str, header: str = HEADER, **sets: str) -> Plan:
    board = tmp_path / "b.yaml"
    board.write_text(header + body, encoding="utf-8")
    return load_plan(board, sets)


def errors_of(tmp_path: Path, body: str, header: str = HEADER) -> str:
    board = tmp_path / "b.yaml"
    board.write_text(header + body, encoding="utf-8")
    with pytest.raises(BoardError) as err:
        load_plan(board)
    return str(err.value)


def lines(plan: Plan) -> list[str]:
    from machinedesc.plan.render import command_line
    return [command_line(s) for s in plan.steps]


def index(plan: Plan, needle: str) -> int:
    found = [i for i, line in enumerate(lines(plan)) if needle in line]
    assert found, f"{needle!r} not in plan"
    return found[0]


CLUSTER = """components:
  cluster0: {type: cpu-cluster, props: {cluster-id: 0}}
  cpu${i}: {count: 2, type: rv64-riscv-cpu, parent: cluster0, props: {mhartid: '${i}'}}
"""


def test_cluster_order_and_realized_false_only_where_needed(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, CLUSTER + "  uart0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x1000}\n")
    create_cluster = index(plan, "driver=cpu-cluster")
    creates = [index(plan, "id=cpu0"), index(plan, "id=cpu1")]
    realize_cluster = index(plan, "path=/machine/peripheral/cluster0 property=realized")
    realizes = [index(plan, "cluster0/cpu0 property=realized"), index(plan, "cluster0/cpu1 property=realized")]
    assert create_cluster < min(creates) and max(creates) < realize_cluster < min(realizes)
    assert "realized=false" in lines(plan)[create_cluster]
    assert all("realized=false" in lines(plan)[i] for i in creates)
    # The UART needs nothing between create and realize: one plain device_add.
    uart = lines(plan)[index(plan, "driver=serial-mm")]
    assert "realized" not in uart
    assert index(plan, "driver=serial-mm") < index(plan, "x-sysbus-mmio-map device=uart0 addr=4096")


def test_phases_and_transitions(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "backends:\n  mem0: {type: memory-backend-ram, props: {size: 1 MiB}}\n"
                   + CLUSTER + "  hot: {type: vendor-dev, phase: ready}\n", VENDOR)
    kinds = [(s.phase, s.command) for s in plan.steps]
    assert kinds[0] == (Phase.ACCEL_CREATED, "object-add")
    xmi = kinds.index((Phase.ACCEL_CREATED, "x-machine-init"))
    xep = kinds.index((Phase.INITIALIZED, "x-exit-preconfig"))
    assert 0 < xmi < xep < len(kinds) - 1
    assert kinds[-1] == (Phase.READY, "device_add")
    assert all(p is Phase.INITIALIZED for p, _ in kinds[xmi + 1:xep])
    assert "-smp" in plan.qemu_args and "1,maxcpus=2" in plan.qemu_args


def test_mutual_links_use_realized_false_for_one_side(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, "components:\n  a: {type: t-a, links: {peer: b}}\n  b: {type: t-b, links: {peer: a}}\n",
                   VENDOR)
    text = lines(plan)
    unrealized = [line for line in text if "realized=false" in line]
    assert len(unrealized) == 1
    setter = index(plan, "property=peer")
    realize = index(plan, "property=realized value=true")
    assert setter < realize
    assert sum(1 for s in plan.steps if s.kind is StepKind.SET) == 1


def test_fan_out_inserts_split_irq_and_or_join_inserts_or_irq(tmp_path: Path) -> None:
    body = CLUSTER + """  u0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x1000}
  u1: {type: serial-mm, props: {chardev: serial0}, mmio: 0x2000}
wiring:
  fan: {from: 'u0.sysbus-irq[0]', to: ['cpu0.unnamed-gpio-in[11]', 'cpu1.unnamed-gpio-in[11]']}
  both:
    from:
      - u0.sysbus-irq[0]
      - u1.sysbus-irq[0]
    join: or
    to: cpu0.unnamed-gpio-in[9]
"""
    plan = plan_of(tmp_path, body)
    text = "\n".join(lines(plan))
    assert "driver=split-irq id=split-u0-sysbus-irq-0 num-lines=3" in text
    assert "driver=or-irq id=or-cpu0-unnamed-gpio-in-9 num-lines=2" in text
    # Every wire of the split comes after the split device is realized.
    split_create = index(plan, "driver=split-irq")
    for i, line in enumerate(lines(plan)):
        if "split-u0-sysbus-irq-0 property=unnamed-gpio-out" in line:
            assert i > split_create
    checks = {(c.path, c.prop) for c in plan.links}
    assert ("/machine/peripheral/u0", "sysbus-irq[0]") in checks


def test_params_and_set_override(tmp_path: Path) -> None:
    body = "params: {n: 2}\n" + CLUSTER.replace("count: 2", "count: '${n}'")
    assert sum("driver=rv64-riscv-cpu" in l for l in lines(plan_of(tmp_path, body))) == 2
    assert sum("driver=rv64-riscv-cpu" in l for l in lines(plan_of(tmp_path, body, n="3"))) == 3


def test_mmio_priority_resolves_overlap(tmp_path: Path) -> None:
    body = """components:
  ram: {type: sysbus-memory, props: {size: 64 KiB}, mmio: 0x0}
  rom: {type: sysbus-memory, props: {size: 4 KiB, readonly: true}, mmio: [{addr: 0x1000, priority: 1}]}
"""
    plan = plan_of(tmp_path, body)
    assert "x-sysbus-mmio-map device=rom addr=4096 priority=1" in lines(plan)
    err = errors_of(tmp_path, body.replace(", priority: 1", ""))
    assert "rom region 0 [0x1000, 0x1fff] overlaps ram region 0 [0x0, 0xffff]" in err


def test_parent_cycle_is_reported_in_user_names(tmp_path: Path) -> None:
    err = errors_of(tmp_path, "components:\n  a: {type: x, parent: b}\n  b: {type: y, parent: a}\n", VENDOR)
    assert "ordering cycle that realized=false cannot break" in err
    assert "create a" in err and "create b" in err


def test_raw_command_after_named_component(tmp_path: Path) -> None:
    body = CLUSTER + """  uart0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x1000}
qmp:
  poke: {execute: qom-set, arguments: {path: uart0, property: x, value: 1}, after: [uart0]}
"""
    plan = plan_of(tmp_path, body)
    assert index(plan, "x-sysbus-mmio-map device=uart0") < index(plan, "property=x value=1")


def test_raw_command_without_after_comes_after_every_map(tmp_path: Path) -> None:
    # A raw command without after: sees the whole machine of its phase, maps included (as before the
    # maps moved to the end of their phase): a raw map that moves a device must not be undone by the
    # device's own map, and a raw loader's image needs the RAM mapped.
    body = CLUSTER + """  ram: {type: sysbus-memory, props: {size: 1 MiB}, mmio: 0x80000000}
  uart0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x1000}
qmp:
  move: {execute: x-sysbus-mmio-map, arguments: {device: uart0, addr: 0x2000}}
  fw: {execute: device_add, arguments: {driver: loader, id: fw, file: /dev/null, addr: 0x80000000}}
"""
    plan = plan_of(tmp_path, body)
    maps = [index(plan, "x-sysbus-mmio-map device=ram"), index(plan, "x-sysbus-mmio-map device=uart0 addr=4096")]
    assert max(maps) < index(plan, "device=uart0 addr=8192") < index(plan, "driver=loader id=fw")


def test_firmware_loads_after_cpus_and_memory(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(HEADER + CLUSTER + "  ram: {type: sysbus-memory, props: {size: 1 MiB}, mmio: 0x80000000}\n")
    plan = load_plan(board, {}, [tmp_path / "fw.elf"])
    fw = index(plan, "driver=loader")
    assert fw > index(plan, "x-sysbus-mmio-map device=ram")
    assert fw > index(plan, "cluster0/cpu1 property=realized")
    assert f"file={tmp_path / 'fw.elf'}" in lines(plan)[fw]


def test_model_types_values(tmp_path: Path) -> None:
    board = tmp_path / "b.yaml"
    board.write_text(VENDOR + "params: {size: 2 MiB}\ncomponents:\n  m: {type: sysbus-memory, "
                     "props: {size: '${size}', readonly: true, name: 'x y'}, mmio: 0x10}\n")
    comp = load_board(board).by_id["m"]
    assert comp.props == {"size": 2 << 20, "readonly": True, "name": "x y"}
    assert comp.mmio[0].addr == 16


def test_link_into_a_component_waits_for_its_realize(tmp_path: Path) -> None:
    body = """components:
  dma: {type: pl080, links: {downstream: 'ram/mem[0]'}, mmio: 0x1000}
  ram: {type: sysbus-memory, props: {size: 4 KiB}, mmio: 0x80000000}
"""
    plan = plan_of(tmp_path, body, VENDOR)  # pl080 is an Arm device: the hand table alone
    create = index(plan, "driver=pl080")
    assert "downstream=/machine/peripheral/ram/mem[0]" in lines(plan)[create]
    assert "realized" not in lines(plan)[create]
    assert create > index(plan, "driver=sysbus-memory")
    err = errors_of(tmp_path, body.replace("ram/mem[0]", "rom/mem[0]"), VENDOR)
    assert "link target 'rom' is not a component or backend" in err


def test_a_machine_property_step_names_its_board_line(tmp_path: Path) -> None:
    """A qom-set of /machine QEMU refuses is reported at the property's line, like every other step."""
    plan = plan_of(tmp_path, "machine:\n  type: none\n  props:\n    dump-guest-core: false\n"
                             "components:\n  ram: {type: sysbus-memory, props: {size: 4096}, mmio: 0x80000000}\n")
    [step] = [s for s in plan.steps if s.kind == StepKind.MACHINE]
    assert step.location is not None
    assert (Path(step.location.file).name, step.location.line) == ("b.yaml", HEADER.count("\n") + 4)


def test_maps_come_after_the_other_steps_of_their_phase_in_board_order(tmp_path: Path) -> None:
    """QEMU renders the memory map once for a run of maps in one x-batch (docs/plan.md): maps go last."""
    plan = plan_of(tmp_path, """components:
  uart0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x10000000}
  ram: {type: sysbus-memory, props: {size: 0x1000}, mmio: 0x80000000}
  test: {type: riscv.sifive.test, mmio: 0x100000}
""")
    kinds = [s.kind for s in plan.steps if s.phase is Phase.INITIALIZED and s.kind is not StepKind.TRANSITION]
    first_map = kinds.index(StepKind.MAP)
    assert kinds[first_map:] == [StepKind.MAP] * 3, kinds
    maps = [s.arguments["device"] for s in plan.steps if s.kind is StepKind.MAP]
    assert maps == ["uart0", "ram", "test"]  # the board's order


def test_a_loader_realizes_after_every_map_whatever_the_board_order(tmp_path: Path) -> None:
    """The generic loader sizes a raw image by the memory at its address when it realizes."""
    plan = plan_of(tmp_path, """components:
  fw: {type: loader, props: {file: /dev/null, addr: 0x80000000, force-raw: true}}
  ram: {type: sysbus-memory, props: {size: 0x1000}, mmio: 0x80000000}
  uart0: {type: serial-mm, props: {chardev: serial0}, mmio: 0x10000000}
""")
    loader = index(plan, "driver=loader id=fw")
    assert index(plan, "x-sysbus-mmio-map device=ram") < loader
    assert index(plan, "x-sysbus-mmio-map device=uart0") < loader
    step = plan.steps[loader]
    assert step.location is not None and step.location.line == 5
