"""Step graph -> Plan: each ordered node becomes a QMP command with its source and reason.

Pure: a model in, steps out, no I/O, but for dtc, which compiles the
generated device tree the header's hash is of (devicetree.dtc.dtb_sha256).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..board.typecheck import created_cpus
from ..board.model import Backend, Board, Component, RawCommand, link_target
from ..boot.placer import Load
from ..devicetree.dtc import dtb_sha256
from ..devicetree.generate import generate
from ..qemu.phases import Phase
from .graph import Node, StepGraph
from .wires import Connection
from .steps import Check, Plan, Step, StepKind

#: The reason a plan gives for each transition, by the phase it leaves.
_TRANSITION_REASONS = {Phase.ACCEL_CREATED: "advance to the initialized phase",
                       Phase.INITIALIZED: "leave preconfig: the machine becomes ready"}


def make_plan(board: Board, sg: StepGraph, firmware: Sequence[str] = (), loads: Sequence[Load] = (),
              boot_notes: Sequence[str] = (), dtb_board: Board | None = None) -> Plan:
    """The Plan for ``board`` in the order of ``sg``; ``firmware`` are ELF paths to load.

    ``loads`` are the boot set-up's loader devices (after the firmware; the
    graph has a firmware step for each of both), ``boot_notes`` its placement
    report; ``dtb_board`` the board as written, whose device tree the header's
    hash is of (the boot set-up adds its ROM to ``board``).
    """
    by_id = {c.id: c for c in sg.components}
    paths = {c.id: board.qom_path(c, by_id) for c in sg.components}
    backends = {b.id: f"/objects/{b.id}" for b in board.backends}
    render = _Renderer(board, sg, by_id, paths, backends, firmware, loads)
    steps = [render.step(n) for n in sg.order]
    # CPUs a device creates itself (riscv.hart_array) need room under maxcpus too.
    cpus = sum(1 for c in sg.components if c.info.is_cpu) + created_cpus(board)
    args: list[str] = ["-M", board.machine]
    if cpus:
        args += ["-smp", f"1,maxcpus={cpus}"]
    args += ["-nodefaults", "-display", "none"]
    for cid, backend in board.chardevs.items():
        args += ["-chardev", f"{backend},id={cid}"]
    return Plan(
        board=board.file, name=board.name, system=board.system, qemu_args=tuple(args), steps=tuple(steps),
        checks=(*(Check.component(c.id, paths[c.id], c.location) for c in sg.components),
                *_window_checks(sg.components, paths),
                *(Check.link(paths[c.source.component], c.source.prop,
                             f"{paths[c.target.component]}/{c.target.prop}", c.wire.location)
                  for c in sg.connections)),
        chardevs=dict(board.chardevs), boot_notes=tuple(boot_notes),
        dtb_sha256=dtb_sha256(generate(dtb_board or board).to_dts()),
    )


def _window_checks(components: Sequence[Component], paths: Mapping[str, str]) -> list[Check]:
    """A check per mapped window: its alias, a QOM child of the device named by QEMU (patch 32), exists.

    The subject is ``<device argument of the map step>/<alias child>``, what
    ``apply.proven`` records for a map step that succeeded.  Identical
    windows (same region, offset, size and address) get ``[0]``, ``[1]``...
    """
    checks = []
    for c in components:
        seen: dict[str, int] = {}
        device = c.id if c.parent is None else paths[c.id]
        for m in c.mmio:
            if not m.window:
                continue
            name = m.alias_name()
            n = seen[name] = seen.get(name, -1) + 1
            child = f"{name}[{n}]"
            checks.append(Check(f"{device}/{child}", f"{paths[c.id]}/{child}", m.location))
    return checks


class _Renderer:
    def __init__(self, board: Board, sg: StepGraph, by_id: Mapping[str, Component], paths: Mapping[str, str],
                 backends: Mapping[str, str], firmware: Sequence[str], loads: Sequence[Load] = ()) -> None:
        self.board = board
        self.sg = sg
        self.by_id = by_id
        self.paths = paths
        self.backends = backends
        self.firmware = firmware
        self.loads = loads
        self.conns: dict[int, Connection] = {c.index: c for c in sg.connections}
        # By name, the first of each (as the board's own order has them): a step looks its entry up once.
        self.raw: dict[str, RawCommand] = {}
        for r in board.raw:
            self.raw.setdefault(r.name, r)
        self.backend_of: dict[str, Backend] = {}
        for b in board.backends:
            self.backend_of.setdefault(b.id, b)

    def target_path(self, target: str) -> str:
        owner, inside = link_target(target)
        if not owner:
            return inside
        base = self.paths.get(owner) or self.backends[owner]
        return f"{base}/{inside}" if inside else base

    def step(self, n: Node) -> Step:
        """The QMP command of step ``n`` of the ordered graph."""
        kind = n.kind
        if kind == "transition":
            return self.transition(n.name)
        phase = self.sg.phase[n]
        if kind == "backend":
            return self.backend(n.name)
        if kind == "machine":
            value = self.board.machine_props[n.name]
            return Step(phase, StepKind.MACHINE, "qom-set", {"path": "/machine", "property": n.name, "value": value},
                        self.board.machine_prop_locations.get(n.name), f"machine property {n.name}")
        if kind == "raw":
            raw = self.raw[n.name]
            return Step(phase, StepKind.RAW, raw.execute, dict(raw.arguments), raw.location,
                        f"raw command qmp.{raw.name}")
        if kind == "firmware" and n.number >= len(self.firmware):
            load = self.loads[n.number - len(self.firmware)]
            return Step(phase, StepKind.CREATE, "device_add", dict(load.args), load.location, load.reason)
        if kind == "firmware":
            path = self.firmware[n.number]
            loader = {"driver": "loader", "id": f"firmware{n.number}", "file": path}
            return Step(phase, StepKind.CREATE, "device_add", loader, None,
                        "load firmware (ELF) once CPUs and memory exist")
        if kind == "wire":
            return self.wire(phase, self.conns[n.number])
        return self.component_step(phase, n)

    def component_step(self, phase: Phase, n: Node) -> Step:
        """Create, set, realize or map: a step of one component."""
        kind = n.kind
        comp = self.by_id[n.name]
        if kind == "create":
            return self.create(phase, comp)
        if kind == "set":
            target = self.target_path(comp.links[n.prop])
            return Step(phase, StepKind.SET, "qom-set",
                        {"path": self.paths[comp.id], "property": n.prop, "value": target},
                        comp.location, f"link {comp.id}.{n.prop} -> {comp.links[n.prop]}, now that both exist",
                        comp.id)
        if kind == "realize":
            return Step(phase, StepKind.REALIZE, "qom-set",
                        {"path": self.paths[comp.id], "property": "realized", "value": True},
                        comp.location, f"realize {comp.id}", comp.id)
        mmio = comp.mmio[n.number]
        args: dict[str, Any] = {"device": comp.id if comp.parent is None else self.paths[comp.id], "addr": mmio.addr}
        if mmio.region:
            args["mmio"] = mmio.region
        if mmio.priority:
            args["priority"] = mmio.priority
        if mmio.window:
            # The alias form (patch 32): QEMU maps the window through an alias the device owns.
            args["offset"] = mmio.offset
            args["size"] = mmio.size
        return Step(phase, StepKind.MAP, "x-sysbus-mmio-map", args, mmio.location,
                    f"map {mmio.describe(comp.id)} at {mmio.addr:#x}", comp.id)

    def transition(self, command: str) -> Step:
        phase = Phase.left_by(command)
        reason = _TRANSITION_REASONS[phase]
        return Step(phase, StepKind.TRANSITION, command, {}, None, reason)

    def backend(self, bid: str) -> Step:
        b = self.backend_of[bid]
        return Step(Phase.ACCEL_CREATED, StepKind.BACKEND, "object-add", {"qom-type": b.type, "id": b.id, **b.props},
                    b.location, f"backend {b.id}")

    def create(self, phase: Phase, comp: Component) -> Step:
        args: dict[str, Any] = {"driver": comp.type, "id": comp.id}
        if comp.parent is not None:
            args["parent"] = self.target_path(comp.parent)
        args.update(comp.props)
        folded = self.sg.folded_links.get(comp.id, set())
        for prop, target in comp.links.items():
            if prop in folded or link_target(target)[0] not in self.by_id:
                args[prop] = self.target_path(target)
        why = self.sg.unrealized.get(comp.id)
        if why is not None:
            args["realized"] = False
            reason = f"create {comp.id} unrealized: {why}"
        elif comp.synthetic:
            reason = f"{comp.type} inserted for wire {comp.yaml_path}"
        else:
            reason = f"create {comp.id}"
        return Step(phase, StepKind.CREATE, "device_add", args, comp.location, reason, comp.id)

    def wire(self, phase: Phase, conn: Connection) -> Step:
        src, dst = conn.source, conn.target
        args = {"path": self.paths[src.component], "property": src.prop,
                "value": f"{self.paths[dst.component]}/{dst.prop}"}
        via = f" (via {conn.via})" if conn.via else ""
        return Step(phase, StepKind.WIRE, "qom-set", args, conn.wire.location,
                    f"wire {src.text} -> {dst.text}{via}", src.component)
