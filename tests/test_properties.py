"""Property-based test of the planner: random valid boards give plans that respect QEMU's ordering rules.

Hypothesis generates boards (as JSON, which is YAML 1.2) with clusters of
CPUs (some replicated with ``count``), parent trees of unknown-type devices,
links between devices (including pairs that link to each other), sysbus
devices at non-overlapping addresses, wiring with fan-out, ``join: or``
and ``count``, raw QMP commands with ``after``, and hot-plugged devices.
Alongside each board it keeps the expanded model (ids, parents, links,
connections) that the checks compare the plan with.

The checks read only the Plan's steps (commands and arguments), not the
planner's internals: every QOM path is created before use, parents before
children, each cluster realized after all its CPUs exist and before any of
them realizes, wiring after both ends exist, MMIO mapped after realize,
realized=false only where a step must sit between create and realize, every
step inside its phase, and the same board rendered twice is byte-identical.
"""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
import tempfile
import warnings
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shell_parser import qmp_shell_command

from machinedesc.errors import BoardError, Problem
from machinedesc.plan.pipeline import load_plan
from machinedesc.plan.steps import Plan, Step, StepKind
from machinedesc.plan.render import render_json, render_qmp
from machinedesc.qemu.phases import Phase

T = TypeVar("T")

# When a property fails, hypothesis' pytest plugin imports hypothesis.extra._patching
# (libcst, when installed), whose import raises a DeprecationWarning from mypy_extensions;
# under -W error that turns the failure report into an INTERNALERROR that hides the
# falsifying example. Importing it once here, warnings silenced, keeps failures readable.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)
    try:
        import hypothesis.extra._patching  # noqa: F401
    except ImportError:
        pass

PERIPHERAL = "/machine/peripheral"
#: Lines that exist from instance_init, i.e. before the device realizes (QEMU source:
#: pl011_init, riscv_cpu_init, or_irq_init); every other line needs the device realized.
EARLY_OUTPUTS = {("pl011", "sysbus-irq"), ("or-irq", "unnamed-gpio-out"),
                 ("cortex-a72-arm-cpu", "unnamed-gpio-out"), ("cortex-a72-arm-cpu", "pmu-interrupt")}
EARLY_INPUTS = {("rv64-riscv-cpu", "unnamed-gpio-in"), ("cortex-a72-arm-cpu", "unnamed-gpio-in")}
CPU_TYPES = {"riscv64": "rv64-riscv-cpu", "aarch64": "cortex-a72-arm-cpu"}
#: The system the generated boards name: one without a type database, since their
#: devices are of made-up types; the hand table (CPUs, or-irq, split-irq, pl011, ...) applies.
NO_DATABASE = "vendor"
SYNTHETIC = {"split-irq", "or-irq"}

Line = tuple[str, str]  # (component id, "name[index]")


@dataclass
class Comp:
    """One expanded component as the generator meant it."""

    id: str
    type: str
    parent: str | None = None
    phase: str = "initialized"
    links: dict[str, str] = field(default_factory=dict)
    mmio: list[int] = field(default_factory=list)


@dataclass
class Model:
    """The board as a dict, plus the expanded facts the plan is checked against."""

    board: dict[str, Any] = field(default_factory=dict)
    comps: dict[str, Comp] = field(default_factory=dict)
    clusters: dict[str, list[str]] = field(default_factory=dict)
    connections: set[tuple[Line, Line]] = field(default_factory=set)
    raw_after: dict[str, list[str]] = field(default_factory=dict)
    backends: list[str] = field(default_factory=list)
    after_cpus: list[str] = field(default_factory=list)
    machine_props: list[str] = field(default_factory=list)

    def target_path(self, target: str, path_of: dict[str, str]) -> str:
        """Where a link to ``target`` (a component or a backend id) points."""
        return f"/objects/{target}" if target in self.backends else path_of[target]

    def add(self, comp: Comp) -> None:
        assert comp.id not in self.comps
        self.comps[comp.id] = comp

    @property
    def cold(self) -> list[str]:
        return [c.id for c in self.comps.values() if c.phase == "initialized"]


class _Draw:
    """Small helpers over hypothesis' draw function."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any]) -> None:
        self.draw = draw

    def integer(self, lo: int, hi: int) -> int:
        value: int = self.draw(st.integers(lo, hi))
        return value

    def flip(self) -> bool:
        value: bool = self.draw(st.booleans())
        return value

    def pick(self, items: list[T]) -> T:
        value: T = self.draw(st.sampled_from(items))
        return value

    def some(self, items: list[T], lo: int, hi: int) -> list[T]:
        if not items:
            return []
        hi = min(hi, len(items))
        value: list[T] = self.draw(st.lists(st.sampled_from(items), min_size=min(lo, hi), max_size=hi, unique=True))
        return value


@st.composite
def boards(draw: Callable[[st.SearchStrategy[Any]], Any]) -> Model:
    d = _Draw(draw)
    m = Model()
    comps: dict[str, Any] = {}
    params: dict[str, Any] = {}
    wiring: dict[str, Any] = {}
    qmp: dict[str, Any] = {}
    system = d.pick(sorted(CPU_TYPES))
    cpu = CPU_TYPES[system]
    arm = system == "aarch64"
    m.board = {"machinedesc": 1, "name": "generated", "system": NO_DATABASE, "chardevs": {"serial0": "null"}}
    hart = 0
    cpu_groups: list[list[str]] = []

    # Clusters of CPUs, some CPUs replicated with count (literal or a parameter).
    for k in range(d.integer(0, 3)):
        cl = f"cl{k}"
        comps[cl] = {"type": "cpu-cluster", "props": {"cluster-id": k}}
        m.add(Comp(cl, "cpu-cluster"))
        m.clusters[cl] = []
        for g in range(d.integer(1, 2)):
            if d.flip():
                n = d.integer(1, 3)
                count: Any = n
                if d.flip():
                    params[f"n_{cl}_{g}"] = n
                    count = f"${{n_{cl}_{g}}}"
                comps[f"{cl}g{g}h${{i}}"] = {"type": cpu, "count": count, "parent": cl,
                                            "props": {"start-powered-off": f"${{i + {hart} != 0}}"} if arm
                                            else {"mhartid": f"${{i + {hart}}}"}}
                ids = [f"{cl}g{g}h{i}" for i in range(n)]
                cpu_groups.append(ids)
            else:
                ids = [f"{cl}g{g}"]
                comps[ids[0]] = {"type": cpu, "parent": cl,
                                 "props": {"start-powered-off": hart != 0} if arm else {"mhartid": hart}}
            for cid in ids:
                m.add(Comp(cid, cpu, parent=cl))
                m.clusters[cl].append(cid)
                hart += 1

    # Unknown-type devices: a parent forest, links to anything cold (cycles included).
    plain = [f"d{j}" for j in range(d.integer(0, 5))]
    pairs = d.integer(0, 2)
    for j, did in enumerate(plain):
        spec: dict[str, Any] = {"type": "vendor-dev"}
        parent = d.pick([None, *plain[:j]]) if j else None
        if parent:
            spec["parent"] = parent
        comps[did] = spec
        m.add(Comp(did, "vendor-dev", parent=parent))
    for p in range(pairs):
        for me, peer, prop in ((f"dma{p}", f"iommu{p}", "iommu"), (f"iommu{p}", f"dma{p}", "dma")):
            comps[me] = {"type": f"vendor-{me.rstrip('0123456789')}", "links": {prop: peer}}
            m.add(Comp(me, comps[me]["type"], links={prop: peer}))
    backends = {f"mem{b}": {"type": "memory-backend-ram", "props": {"size": "64 KiB"}} for b in range(d.integer(0, 2))}
    if backends:
        m.board["backends"] = backends
        m.backends = list(backends)
    if d.flip():
        m.board["machine"] = {"type": "none", "props": {"dt-compatible": "vendor,board"}}
        m.machine_props = ["dt-compatible"]
    linkable = [*(c for c in m.cold if m.comps[c].type != "cpu-cluster"), *m.backends]
    for did in plain:
        targets = d.some([t for t in linkable if t != did], 0, 2)
        if targets:
            links = {f"link{n}": t for n, t in enumerate(targets)}
            comps[did]["links"] = links
            m.comps[did].links = dict(links)

    # A replicated ring of devices, each linking to the next copy (${i} in links and parent).
    if d.flip():
        n = d.integer(2, 4)
        under = d.pick([None, *plain])
        spec = {"type": "vendor-ring", "count": n, "links": {"next": f"ring${{(i + 1) % {n}}}"}}
        if under:
            spec["parent"] = under
        comps["ring${i}"] = spec
        for i in range(n):
            m.add(Comp(f"ring{i}", "vendor-ring", parent=under, links={"next": f"ring{(i + 1) % n}"}))

    # Sysbus devices at non-overlapping addresses.
    addr = 0x10000000
    uart_bound = False
    for s in range(d.integer(0, 5)):
        kind = d.pick(["serial-mm", "pl011", "sysbus-memory"])
        sid = f"s{s}"
        spec = {"type": kind, "props": {}}
        if kind == "serial-mm":
            shift = d.integer(0, 2)
            spec["props"]["regshift"] = shift
            size = 8 << shift
        elif kind == "pl011":
            size = 0x1000
        else:
            size, size_text = d.pick([(4096, "4 KiB"), (0x10000, "64 KiB"), (1 << 20, "1 MiB"), (8192, 8192)])
            spec["props"]["size"] = size_text
        if kind != "sysbus-memory" and not uart_bound and d.flip():
            spec["props"]["chardev"] = "serial0"
            uart_bound = True
        comp = Comp(sid, kind)
        if d.flip():
            addr += d.pick([0, 0x1000, 0x100000])
            spec["mmio"] = addr if d.flip() else [{"addr": addr, "priority": d.integer(0, 2)}]
            comp.mmio.append(addr)
            addr += -(-size // 0x1000) * 0x1000
        comps[sid] = spec
        m.add(comp)
    if hart and not arm and d.flip():  # a timer that finds its harts when it realizes
        addr += 0x100000
        comps["mtimer"] = {"type": "riscv.aclint.mtimer", "mmio": addr,
                           "props": {"num-harts": hart, "aperture-size": "32 KiB", "timebase-freq": 10000000}}
        m.add(Comp("mtimer", "riscv.aclint.mtimer", mmio=[addr]))
        m.after_cpus.append("mtimer")
        addr += 0x8000
    if d.flip():  # a replicated sysbus device with an mmio expression
        n = d.integer(1, 3)
        base = addr + 0x100000
        comps["r${i}"] = {"type": "pl011", "count": n, "mmio": f"${{{base} + i * 0x1000}}"}
        for i in range(n):
            m.add(Comp(f"r{i}", "pl011", mmio=[base + i * 0x1000]))
        addr = base + n * 0x1000

    # Hot-plugged plain devices: parent and links only towards what exists before them.
    for h in range(d.integer(0, 3)):
        hid = f"hp{h}"
        spec = {"type": "vendor-hp", "phase": "ready"}
        comp = Comp(hid, "vendor-hp", phase="ready")
        parent = d.pick([None, *plain]) if plain else None
        if parent:
            spec["parent"] = parent
            comp.parent = parent
        earlier = [f"hp{x}" for x in range(h)]
        targets = d.some([*linkable, *earlier], 0, 2)
        if targets:
            spec["links"] = {f"peer{n}": t for n, t in enumerate(targets)}
            comp.links = dict(spec["links"])
        comps[hid] = spec
        m.add(comp)

    # Wiring: any output may feed several wires and joins (fan-out); each input is driven once.
    outputs: list[Line] = []
    inputs: list[Line] = []
    for c in m.comps.values():
        if c.type == "serial-mm":
            outputs.append((c.id, "sysbus-irq[0]"))
        elif c.type == "pl011":
            outputs += [(c.id, f"sysbus-irq[{k}]") for k in range(6)]
        elif c.type in ("vendor-dev", "vendor-hp"):
            outputs += [(c.id, f"irq[{k}]") for k in range(2)]
            inputs += [(c.id, f"in[{k}]") for k in range(2)]
        elif c.type == "rv64-riscv-cpu":
            inputs += [(c.id, f"unnamed-gpio-in[{k}]") for k in range(8)]
        elif c.type == "cortex-a72-arm-cpu":
            inputs += [(c.id, f"unnamed-gpio-in[{k}]") for k in range(3)]
            outputs += [(c.id, f"unnamed-gpio-out[{k}]") for k in range(4)] + [(c.id, "pmu-interrupt[0]")]
        elif c.type == "riscv.aclint.mtimer":
            outputs += [(c.id, f"unnamed-gpio-out[{k}]") for k in range(hart)]
    free_in = list(inputs)

    def line_text(line: Line) -> str:
        return f"{line[0]}.{line[1]}"

    # A count-replicated wire from a pl011's lines to a replicated CPU group.
    pl011s = [c.id for c in m.comps.values() if c.type == "pl011"]
    if cpu_groups and pl011s and d.flip():
        group, src = d.pick(cpu_groups), d.pick(pl011s)
        k = 3 if arm else d.integer(8, 15)  # the pool above leaves these inputs free
        n = len(group)
        wiring["percpu"] = {"count": n, "from": f"{src}.sysbus-irq[${{i}}]", "to": f"{group[0][:-1]}${{i}}.unnamed-gpio-in[{k}]"}
        for i in range(n):
            line = (src, f"sysbus-irq[{i}]")
            m.connections.add((line, (group[i], f"unnamed-gpio-in[{k}]")))
    for w in range(d.integer(0, 6)):
        if not free_in or not outputs:
            break
        if d.flip() and len(outputs) >= 2:
            srcs = d.some(outputs, 2, 3)
            dsts = d.some(free_in, 1, 2)
            wire: dict[str, Any] = {"from": [line_text(x) for x in srcs], "join": "or"}
        else:
            srcs = [d.pick(outputs)]
            dsts = d.some(free_in, 1, 3)
            wire = {"from": line_text(srcs[0])}
        wire["to"] = [line_text(t) for t in dsts] if len(dsts) > 1 or d.flip() else line_text(dsts[0])
        for t in dsts:
            free_in.remove(t)
            for src_line in srcs:
                m.connections.add((src_line, t))
        wiring[f"w{w}"] = wire

    # Raw commands after named components (ready when one of them is hot-plugged).
    for q in range(d.integer(0, 2)):
        after = d.some(sorted(m.comps), 0, 2)
        hot = any(m.comps[a].phase == "ready" for a in after)
        phase = "ready" if hot else d.pick(["initialized", "ready", *([] if after else ["accel-created"])])
        raw: dict[str, Any] = {"execute": "qom-list", "arguments": {"path": "/machine"}, "phase": phase}
        if after:
            raw["after"] = after
        qmp[f"q{q}"] = raw
        m.raw_after[f"q{q}"] = after

    for key, value in (("params", params), ("components", comps), ("wiring", wiring), ("qmp", qmp)):
        if value:
            m.board[key] = value
    return m


# ------------------------------------------------------------------ checks


def _plan_for(model: Model) -> tuple[Plan, str, str, str]:
    """The plan of the board, its QMP text twice (two loads) and its JSON lines."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.yaml"
        path.write_text(json.dumps(model.board, indent=1) + "\n", encoding="utf-8")
        plan = load_plan(path)
        again = load_plan(path)
        return plan, render_qmp(plan), render_qmp(again), render_json(again)


def _split_plan(model: Model, k: int) -> str:
    """The JSON plan when the first ``k`` components and the chardevs come from an include."""
    comps = dict(model.board.get("components", {}))
    first = dict(list(comps.items())[:k])
    fragment = {"machinedesc": 1, "chardevs": model.board["chardevs"], "components": first}
    main = {key: value for key, value in model.board.items() if key != "chardevs"}
    main["include"] = "parts/fragment.yaml"
    rest = dict(list(comps.items())[k:])
    if rest:
        main["components"] = rest
    else:
        main.pop("components", None)
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "parts").mkdir()
        (Path(tmp) / "parts" / "fragment.yaml").write_text(json.dumps(fragment), encoding="utf-8")
        (Path(tmp) / "board.yaml").write_text(json.dumps(main), encoding="utf-8")
        return render_json(load_plan(Path(tmp) / "board.yaml"))


def _line_of(value: str) -> tuple[str, str]:
    path, _, line = value.rpartition("/")
    return path, line


def _line_name(prop: str) -> str:
    return prop.split("[", 1)[0]


def check_plan(model: Model, plan: Plan) -> None:
    steps = plan.steps
    commands = [s.command for s in steps]
    assert commands.count("x-machine-init") == 1 and commands.count("x-exit-preconfig") == 1
    xmi, xep = commands.index("x-machine-init"), commands.index("x-exit-preconfig")
    assert xmi < xep

    created: dict[str, int] = {}      # QOM path -> index of its device_add
    realized: dict[str, int] = {}     # QOM path -> index where it is realized
    unrealized: set[str] = set()      # created with realized=false
    driver: dict[str, str] = {}
    path_of: dict[str, str] = {}      # id -> QOM path
    parent_path: dict[str, str | None] = {}
    link_values: dict[tuple[str, str], tuple[str, int]] = {}  # (id, prop) -> (value, index)
    wired: dict[tuple[str, str], str] = {}  # (source path, output prop) -> input "path/line"
    wire_index: dict[tuple[str, str], int] = {}
    mapped: dict[str, list[int]] = defaultdict(list)
    raw_index: dict[int, int] = {}

    created["/machine"] = -1
    for n, s in enumerate(steps):
        # Every step says where it came from and why.
        assert s.reason, f"step {n} {s.command} without a reason"
        if s.kind not in (StepKind.TRANSITION, StepKind.MACHINE):
            assert s.location is not None and s.location.file.endswith("board.yaml") and s.location.line >= 1, \
                f"step {n} {s.command} without a source line"

    def known_link(cid: str, prop: str) -> bool:
        return cid in model.comps and prop in model.comps[cid].links

    for n, s in enumerate(steps):
        a = dict(s.arguments)
        # Every step inside its phase.
        if s.kind is not StepKind.TRANSITION:
            where = {Phase.ACCEL_CREATED: n < xmi, Phase.INITIALIZED: xmi < n < xep, Phase.READY: n > xep}
            assert where[s.phase], f"step {n} {s.command} of phase {s.phase.value} outside it"
        if s.command == "device_add":
            parent = a.get("parent")
            if parent is not None:
                assert parent in created, f"{a['id']}: parent {parent} not created before"
            path = f"{parent or PERIPHERAL}/{a['id']}"
            assert path not in created, f"{path} created twice"
            created[path], driver[path], path_of[a["id"]], parent_path[a["id"]] = n, a["driver"], path, parent
            for prop, value in a.items():
                if known_link(a["id"], prop):
                    assert value in created, f"{a['id']}.{prop}={value}: target not created before"
                    link_values[(a["id"], prop)] = (value, n)
            if a.get("realized") is False:
                unrealized.add(path)
            else:
                assert "realized" not in a
                realized[path] = n
        elif s.command == "object-add":
            assert s.phase is Phase.ACCEL_CREATED
            created[f"/objects/{a['id']}"] = n
        elif s.command == "qom-set" and a["path"] == "/machine":
            assert s.phase is Phase.ACCEL_CREATED and a["property"] in model.machine_props
        elif s.command == "qom-set":
            path, prop, value = a["path"], a["property"], a["value"]
            assert path in created, f"qom-set on {path} before it is created"
            cid = path.rsplit("/", 1)[1]
            if prop == "realized":
                assert value is True and path in unrealized and path not in realized, f"bad realize of {path}"
                realized[path] = n
            elif known_link(cid, prop):
                assert value in created, f"link {cid}.{prop}={value}: target not created before"
                assert (cid, prop) not in link_values, f"link {cid}.{prop} set twice"
                link_values[(cid, prop)] = (value, n)
            else:
                dst, line = _line_of(value)
                assert dst in created, f"wire to {value} before {dst} is created"
                if (driver[path], _line_name(prop)) not in EARLY_OUTPUTS:
                    assert path in realized, f"wire from {path}.{prop}: output exists only after realize"
                if (driver[dst], _line_name(line)) not in EARLY_INPUTS:
                    assert dst in realized, f"wire to {value}: input exists only after realize"
                assert (path, prop) not in wired, f"output {path}.{prop} connected twice"
                wired[(path, prop)] = value
                wire_index[(path, prop)] = n
        elif s.command == "x-sysbus-mmio-map":
            dev = a["device"]
            path = dev if dev.startswith("/") else path_of.get(dev, "")
            assert path in realized, f"{dev} mapped before it is realized"
            mapped[path.rsplit("/", 1)[1]].append(a["addr"])
        elif s.kind is StepKind.RAW:
            raw_index[n] = n

    # Every component created once, under the right parent, in its phase; all realized.
    ours = {i for i in path_of if driver[path_of[i]] not in SYNTHETIC}
    assert ours == set(model.comps)
    for cid, comp in model.comps.items():
        path = path_of[cid]
        expected_parent = path_of[comp.parent] if comp.parent else None
        assert parent_path[cid] == expected_parent, f"{cid}: parent {parent_path[cid]} != {expected_parent}"
        assert path in realized, f"{cid} never realized"
        assert steps[created[path]].phase.value == comp.phase
        assert steps[realized[path]].phase.value == comp.phase
        if comp.phase == "ready":
            assert path not in unrealized, f"hot-plugged {cid} created with realized=false"
        else:
            assert realized[path] < xep
        assert sorted(mapped.get(cid, [])) == sorted(comp.mmio)
        # Links: the value is the target's path, set before the device realizes.
        for prop, target in comp.links.items():
            assert (cid, prop) in link_values, f"link {cid}.{prop} never set"
            value, at = link_values[(cid, prop)]
            assert value == model.target_path(target, path_of)
            assert at <= realized[path], f"link {cid}.{prop} set after {cid} realized"
    # Synthetic devices are realized before their lines are used (checked above) and in time.
    for path in driver:
        assert path in realized, f"{path} never realized"

    assert sorted(p.removeprefix("/objects/") for p in created if p.startswith("/objects/")) == sorted(model.backends)
    # QEMU is started with room for every CPU the plan adds.
    ncpus = sum(1 for c in model.comps.values() if c.type in CPU_TYPES.values())
    args = list(plan.qemu_args)
    assert args[:2] == ["-M", "none"]
    if ncpus:
        assert args[args.index("-smp") + 1] == f"1,maxcpus={ncpus}"
    else:
        assert "-smp" not in args

    # Clusters: realize after all their CPUs exist, before any of them realizes.
    for cl, cpus in model.clusters.items():
        at = realized[path_of[cl]]
        assert all(created[path_of[c]] < at for c in cpus), f"{cl} realized before all its CPUs exist"
        assert all(at < realized[path_of[c]] for c in cpus), f"a CPU of {cl} realized before the cluster"

    # Devices that look up the CPUs when they realize come after every CPU's realize.
    for cid in model.after_cpus:
        for cpu in (c for c in model.comps.values() if c.type in CPU_TYPES.values()):
            assert realized[path_of[cpu.id]] < realized[path_of[cid]], f"{cid} realized before CPU {cpu.id}"

    # realized=false only where a step must sit between create and realize: a link set on
    # the device, a child created under it, or (for a CPU) its cluster's realize.
    for path in unrealized:
        cid = path.rsplit("/", 1)[1]
        between = steps[created[path] + 1:realized[path]]
        assert any(_needs_unrealized(s, path, parent_path.get(cid)) for s in between), \
            f"{cid}: needless realized=false"

    # Wiring: exactly the connections the board asks for, through split/or devices.
    by_path = {p: i for i, p in path_of.items()}
    reach: set[tuple[Line, Line]] = set()
    for (src_path, prop), _value in wired.items():
        if driver[src_path] in SYNTHETIC:
            continue
        todo = [(src_path, prop)]
        while todo:
            out = todo.pop()
            dst, line = _line_of(wired[out]) if out in wired else ("", "")
            if not dst:
                continue
            if driver[dst] == "split-irq":
                todo += [k for k in wired if k[0] == dst]
            elif driver[dst] == "or-irq":
                todo += [k for k in wired if k[0] == dst]
            else:
                reach.add(((by_path[src_path], prop), (by_path[dst], line)))
    assert reach == model.connections, f"connections: missing {model.connections - reach}, extra {reach - model.connections}"

    # Raw commands after every create/set/realize/map step of their components.
    raws = [n for n, s in enumerate(steps) if s.kind is StepKind.RAW]
    assert len(raws) == len(model.raw_after)
    for n in raws:
        name = steps[n].reason.removeprefix("raw command qmp.")
        for cid in model.raw_after[name]:
            last = max(k for k, s in enumerate(steps) if s.component == cid and s.kind in
                       (StepKind.CREATE, StepKind.SET, StepKind.REALIZE, StepKind.MAP))
            assert last < n, f"qmp.{name} before the steps of {cid}"


def _needs_unrealized(step: Step, path: str, parent: str | None) -> bool:
    a = step.arguments
    if step.kind is StepKind.SET:
        return bool(a["path"] == path)
    if step.command == "device_add":
        return bool(a.get("parent") == path)
    if step.kind is StepKind.REALIZE:
        return parent is not None and a["path"] == parent
    return False


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boards(), st.integers(0, 50))
def test_generated_boards_plan_in_a_valid_order(model: Model, split: int) -> None:
    plan, first, second, jsonl = _plan_for(model)
    check_plan(model, plan)
    assert first == second, "the same board must give a byte-identical plan"
    # The text forms say the same as the steps: qmp-shell reads each line back as its message.
    assert jsonl.splitlines() == [json.dumps(s.message, separators=(",", ":")) for s in plan.steps]
    commands = [line for line in first.splitlines() if line and not line.startswith("#")]
    assert len(commands) == len(plan.steps)
    for line, step in zip(commands, plan.steps):
        assert qmp_shell_command(line) == {"execute": step.command, "arguments": dict(step.arguments)}, line
    # Moving components into an include changes no command.
    assert _split_plan(model, split) == jsonl


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boards())
def test_plan_does_not_depend_on_the_hash_seed(model: Model) -> None:
    """Two processes with different PYTHONHASHSEED print the same plan (no set/dict-order leaks)."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.yaml"
        path.write_text(json.dumps(model.board), encoding="utf-8")
        outputs = []
        for seed in ("1", "2"):
            env = {**os.environ, "PYTHONHASHSEED": seed}
            run = subprocess.run([sys.executable, "-c", "from machinedesc.cli import main; main()", "plan", str(path)], env=env,
                                 capture_output=True, text=True, check=False)
            # stderr holds only notes (no type database for the made-up system, regions of
            # unknown size): they too must not depend on the seed.
            assert run.returncode == 0, run.stderr
            assert all(line.startswith(("note: ", "  hint: ")) for line in run.stderr.splitlines()), run.stderr
            outputs.append(run.stdout + run.stderr)
        assert outputs[0] == outputs[1]


def _fanout_model() -> Model:
    """Two harts in a cluster, two PL011s; one output or-joined and also wired elsewhere."""
    model = Model()
    model.board = {
        "machinedesc": 1, "system": NO_DATABASE,
        "components": {
            "cl0": {"type": "cpu-cluster"},
            "h${i}": {"type": "rv64-riscv-cpu", "count": 2, "parent": "cl0"},
            "u0": {"type": "pl011", "mmio": 0x1000},
            "u1": {"type": "pl011", "mmio": 0x2000},
            "d0": {"type": "vendor-dev", "links": {"peer": "d1"}},
            "d1": {"type": "vendor-dev", "links": {"peer": "d0"}},
        },
        "wiring": {
            "both": {"from": ["u0.sysbus-irq[0]", "u1.sysbus-irq[0]"], "join": "or", "to": "h0.unnamed-gpio-in[1]"},
            "alone": {"from": "u0.sysbus-irq[0]", "to": "h1.unnamed-gpio-in[1]"},
        },
    }
    for comp in (Comp("cl0", "cpu-cluster"), Comp("h0", "rv64-riscv-cpu", parent="cl0"),
                 Comp("h1", "rv64-riscv-cpu", parent="cl0"), Comp("u0", "pl011", mmio=[0x1000]),
                 Comp("u1", "pl011", mmio=[0x2000]), Comp("d0", "vendor-dev", links={"peer": "d1"}),
                 Comp("d1", "vendor-dev", links={"peer": "d0"})):
        model.add(comp)
    model.clusters = {"cl0": ["h0", "h1"]}
    model.connections = {
        (("u0", "sysbus-irq[0]"), ("h0", "unnamed-gpio-in[1]")),
        (("u1", "sysbus-irq[0]"), ("h0", "unnamed-gpio-in[1]")),
        (("u0", "sysbus-irq[0]"), ("h1", "unnamed-gpio-in[1]")),
    }
    return model


def test_output_in_join_and_fanout() -> None:
    """An output both or-joined and wired elsewhere reaches both, through one split-irq (was B8)."""
    model = _fanout_model()
    plan, _, _, _ = _plan_for(model)
    check_plan(model, plan)
    splits = [s for s in plan.steps if s.arguments.get("driver") == "split-irq"]
    assert len(splits) == 1


def _index(plan: Plan, pred: Callable[[Step], bool]) -> int:
    return next(n for n, s in enumerate(plan.steps) if pred(s))


def _move(plan: Plan, src: int, dst: int) -> Plan:
    steps = list(plan.steps)
    step = steps.pop(src)
    steps.insert(dst, step)
    return replace(plan, steps=tuple(steps))


def _realize_of(cid: str) -> Callable[[Step], bool]:
    return lambda s: s.arguments.get("property") == "realized" and str(s.arguments["path"]).endswith("/" + cid)


def _create_of(cid: str) -> Callable[[Step], bool]:
    return lambda s: s.command == "device_add" and s.arguments.get("id") == cid


def _broken_plans(plan: Plan) -> dict[str, Plan]:
    """Plans each breaking one rule, derived from a valid one."""
    out: dict[str, Plan] = {}
    out["cluster realized after a CPU"] = _move(plan, _index(plan, _realize_of("cl0")), _index(plan, _realize_of("h0")))
    out["cluster realized before its CPUs exist"] = _move(plan, _index(plan, _realize_of("cl0")),
                                                          _index(plan, _create_of("h1")))
    out["child before parent"] = _move(plan, _index(plan, _create_of("h0")), _index(plan, _create_of("cl0")))
    mmio = _index(plan, lambda s: s.command == "x-sysbus-mmio-map")
    # Maps come last in their phase (docs/plan.md): move it before its device's device_add, which realizes it.
    mapped = str(plan.steps[mmio].arguments["device"]).rsplit("/", 1)[-1]
    out["map before realize"] = _move(plan, mmio, _index(plan, _create_of(mapped)))
    wire = _index(plan, lambda s: s.kind is StepKind.WIRE)
    out["wire before its ends exist"] = _move(plan, wire, _index(plan, lambda s: s.command == "device_add"))
    out["step after its phase"] = _move(plan, wire, len(plan.steps) - 1)
    steps = list(plan.steps)
    n = _index(plan, _create_of("u1"))
    steps.insert(n + 1, replace(steps[n], command="qom-set", kind=StepKind.REALIZE,
                                arguments={"path": "/machine/peripheral/u1", "property": "realized", "value": True}))
    steps[n] = replace(steps[n], arguments={**steps[n].arguments, "realized": False})
    out["needless realized=false"] = replace(plan, steps=tuple(steps))
    out["never realized"] = replace(plan, steps=tuple(s for s in plan.steps if not _realize_of("h1")(s)))
    out["connection lost"] = replace(plan, steps=tuple(
        s for s in plan.steps if not (s.kind is StepKind.WIRE and s.arguments["path"].endswith("/u1"))))
    return out


@pytest.mark.parametrize("broken", ["cluster realized after a CPU", "cluster realized before its CPUs exist",
                                    "child before parent", "map before realize", "wire before its ends exist",
                                    "step after its phase", "needless realized=false", "never realized",
                                    "connection lost"])
def test_check_plan_rejects_broken_plans(broken: str) -> None:
    """The checks above can fail: each rule, broken on purpose in a valid plan, is caught."""
    model = _fanout_model()
    plan, _, _, _ = _plan_for(model)
    check_plan(model, plan)
    with pytest.raises(AssertionError):
        check_plan(model, _broken_plans(plan)[broken])


# ------------------------------------------------------------------ broken boards

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(1 << 70), 1 << 70) | st.floats(allow_nan=False)
    | st.sampled_from(["", "x", "${", "${i}", "${1 // 0}", "${nope}", "64 KiB", "cl0", "d0", "s0.sysbus-irq[9]",
                       "/machine", "hp0", "ready", "or", "~"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.sampled_from(["type", "x", "addr", "to"]), inner,
                                                                max_size=3),
    max_leaves=6,
)


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(value, dict):
        for k, v in value.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            out += _paths(v, (*prefix, i))
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(boards(), st.data())
def test_broken_boards_fail_cleanly(model: Model, data: st.DataObject) -> None:
    """Values of a valid board replaced by junk, or entries deleted: a clean BoardError, never a crash.

    Every problem has a position in the file, and the report lists them sorted by position.
    """
    board = json.loads(json.dumps(model.board))
    for _ in range(data.draw(st.integers(1, 3))):
        paths = [p for p in _paths(board) if p]
        if not paths:
            break
        path = data.draw(st.sampled_from(paths))
        parent = board
        for part in path[:-1]:
            parent = parent[part]
        if data.draw(st.booleans()):
            parent[path[-1]] = data.draw(_JSON)
        elif isinstance(parent, dict):
            del parent[path[-1]]
        else:
            parent.pop(path[-1])
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "board.yaml"
        file.write_text(json.dumps(board, indent=1), encoding="utf-8")
        try:
            load_plan(file)
        except BoardError as err:
            assert err.problems
            for problem in err.problems:
                assert problem.location is not None and problem.location.file.endswith("board.yaml"), problem
                assert problem.message
            # Problems of one kind past errors.MAX_PER_KIND are counted in one "... and N more" line.
            heads = [line for line in str(err).splitlines() if not line.startswith(("  ", "... and "))]
            positions = []
            for line in heads:
                match = re.match(r".*board\.yaml:(\d+):(\d+): ", line)
                assert match, line
                positions.append((int(match.group(1)), int(match.group(2))))
            assert positions == sorted(positions), str(err)


# ------------------------------------------------------------------ MMIO overlaps against an oracle

_OVERLAP = re.compile(r"(\S+) region (\d+) \[(0x[0-9a-f]+), (0x[0-9a-f]+)\] overlaps (\S+) region (\d+) "
                      r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\] at the same priority (-?\d+)")


def _problems_of(board: dict[str, Any]) -> list[Problem]:
    """The problems planning ``board`` (written as a file) reports; [] when it plans."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "board.yaml"
        path.write_text(json.dumps(board), encoding="utf-8")
        try:
            load_plan(path)
        except BoardError as err:
            return err.problems
    return []


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.sampled_from([1, 2, 4, 16]), st.integers(0, 2)),
                min_size=1, max_size=8))
def test_mmio_overlaps_match_an_oracle(regions: list[tuple[int, int, int]]) -> None:
    """Every pair of regions overlapping at the same priority is reported, naming both ranges; no other."""
    unit = 0x1000
    comps = {f"m{k}": {"type": "sysbus-memory", "props": {"size": size * unit},
                       "mmio": [{"addr": start * unit, "priority": prio}]}
             for k, (start, size, prio) in enumerate(regions)}
    spans = {f"m{k}": (start * unit, (start + size) * unit - 1, prio) for k, (start, size, prio) in enumerate(regions)}
    expected = {frozenset((a, b)) for a in spans for b in spans
                if a < b and spans[a][2] == spans[b][2] and spans[a][0] <= spans[b][1] and spans[b][0] <= spans[a][1]}
    problems = _problems_of({"machinedesc": 1, "system": NO_DATABASE, "components": comps})
    reported = set()
    for problem in problems:
        match = _OVERLAP.search(problem.message)
        assert match, problem.message
        b, _, b_start, b_end, a, _, a_start, a_end, prio = match.groups()
        assert (int(b_start, 16), int(b_end, 16), int(prio)) == spans[b]
        assert (int(a_start, 16), int(a_end, 16), int(prio)) == spans[a]
        assert problem.path == f"components.{b}.mmio" or problem.path.startswith(f"components.{b}.mmio[")
        reported.add(frozenset((a, b)))
    assert reported == expected


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.lists(st.integers(0, 3), min_size=1, max_size=3, unique=True),
                          st.lists(st.integers(0, 4), min_size=1, max_size=3, unique=True)),
                min_size=1, max_size=6))
def test_inputs_driven_twice_match_an_oracle(wires: list[tuple[list[int], list[int]]]) -> None:
    """An input named by two wires is an error on the later wire; fan-out and join alone are fine."""
    wiring: dict[str, Any] = {}
    first: dict[int, str] = {}
    expected: set[tuple[str, int, str]] = set()
    for w, (srcs, dsts) in enumerate(wires):
        spec: dict[str, Any] = {"from": [f"u0.sysbus-irq[{s}]" for s in srcs], "join": "or"} if len(srcs) > 1 \
            else {"from": f"u0.sysbus-irq[{srcs[0]}]"}
        spec["to"] = [f"h0.unnamed-gpio-in[{t}]" for t in dsts]
        wiring[f"w{w}"] = spec
        for t in dsts:
            if t in first:
                expected.add((f"w{w}", t, first[t]))
            else:
                first[t] = f"w{w}"
    board = {"machinedesc": 1, "system": NO_DATABASE, "wiring": wiring, "components": {
        "cl0": {"type": "cpu-cluster"}, "h0": {"type": "rv64-riscv-cpu", "parent": "cl0"},
        "u0": {"type": "pl011", "mmio": 0x1000}}}
    problems = _problems_of(board)
    reported = set()
    for problem in problems:
        match = re.fullmatch(r"input h0\.unnamed-gpio-in\[(\d+)\] is already driven by wire '(\w+)' \(at .*\)",
                             problem.message)
        assert match, problem.message
        wire = problem.path.split(".")[1]
        reported.add((wire, int(match.group(1)), match.group(2)))
    assert reported == expected


_MORE = re.compile(r"([\d,]+) more overlapping pairs at the same priority (-?\d+) are not listed, from (\S+) region 0 "
                   r"\[(0x[0-9a-f]+), (0x[0-9a-f]+)\] on: ([\d,]+) regions overlap in \[(0x[0-9a-f]+), "
                   r"(0x[0-9a-f]+)\] \(([\d,]+) pairs; only the first 3 of a group are listed\)")


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 15), st.sampled_from([1, 2, 4, 16]), st.integers(0, 1)),
                min_size=1, max_size=10))
def test_overlap_groups_beyond_the_listed_pairs_match_an_oracle(regions: list[tuple[int, int, int]]) -> None:
    """A group of overlapping regions lists its first pairs in address order, then counts the rest in one problem.

    A group: regions of one priority, in order of (start, end, file order), each overlapping an
    earlier one of the group; its pairs in order of the later region, then the earlier one.
    """
    from machinedesc.board import checks_mmio

    unit = 0x1000
    comps = {f"m{k}": {"type": "sysbus-memory", "props": {"size": size * unit},
                       "mmio": [{"addr": start * unit, "priority": prio}]}
             for k, (start, size, prio) in enumerate(regions)}
    spans = sorted(((start * unit, (start + size) * unit - 1, k, prio) for k, (start, size, prio) in enumerate(regions)))
    listed: set[tuple[str, str]] = set()
    more: set[tuple[int, int, str, int, int, int, int]] = set()
    for prio in (0, 1):
        groups: list[list[tuple[int, int, int, int]]] = []
        for span in (s for s in spans if s[3] == prio):
            if groups and span[0] <= max(s[1] for s in groups[-1]):
                groups[-1].append(span)
            else:
                groups.append([span])
        for group in groups:
            pairs = [(b, a) for j, b in enumerate(group) for a in group[:j] if a[1] >= b[0]]
            listed |= {(f"m{b[2]}", f"m{a[2]}") for b, a in pairs[:3]}
            if len(pairs) > 3:
                b = pairs[3][0]
                more.add((len(pairs) - 3, prio, f"m{b[2]}", len(group), group[0][0],
                          max(s[1] for s in group), len(pairs)))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(checks_mmio, "MAX_OVERLAPS_LISTED", 3)
        problems = _problems_of({"machinedesc": 1, "system": NO_DATABASE, "components": comps})
    reported_listed, reported_more = set(), set()
    for problem in problems:
        if match := _OVERLAP.fullmatch(problem.message):
            reported_listed.add((match.group(1), match.group(5)))
            continue
        match = _MORE.fullmatch(problem.message)
        assert match, problem.message
        count, prio, b, _, _, n, lo, hi, pairs = match.groups()
        assert problem.path == f"components.{b}.mmio"
        reported_more.add((int(count.replace(",", "")), int(prio), b, int(n.replace(",", "")), int(lo, 16),
                           int(hi, 16), int(pairs.replace(",", ""))))
    assert reported_listed == listed
    assert reported_more == more
