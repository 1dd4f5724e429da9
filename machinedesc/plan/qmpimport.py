"""``machinedesc import-qmp``: a board from a QMP configuration file, with a coverage report.

Reads a file in either dialect (v4 files are first read into machinedesc's
own, plan.qmpdialect) and folds its commands into board entries:

* ``device_add driver=T id=X ...`` is component X of type T with its
  properties; a ``riscv.hart_array`` becomes a ``cpu-cluster`` X with
  ``num-harts`` CPUs ``X-hart0``, ``X-hart1``, ... (``mhartid``,
  ``resetvec`` as the array would set them), written as one ``count:`` entry;
* ``x-sysbus-mmio-map`` goes into the component's ``mmio`` (its alias form,
  ``offset`` and ``size``, as a window: ``{addr, offset, size}``);
* ``qom-set`` of an output line (``sysbus-irq[N]``, ``unnamed-gpio-out[N]``,
  a named output) to an input (``.../unnamed-gpio-in[M]``) is a wire; runs of
  wires become one entry (plan.qmpfold): with ranges where both ends stay on
  their components (``gpio.sysbus-irq[0..31]``), else with ``count:`` (one
  wire per hart: ``hart${i}.unnamed-gpio-in[3]``);
* ``qom-set ... realized=true`` and the phase transitions are what the
  planner sends anyway;
* ``device_add driver=loader`` stays a raw ``qmp:`` entry (its ``cpu-num``
  sets the entry point, which ``apply --firmware`` does not), named in the
  report with its line;
* everything else is kept as a raw ``qmp:`` entry, in its phase.

Every command lands in one line of the report: nothing is dropped silently.
Chardevs the devices name become ``chardevs:`` entries (the first ``stdio``,
the others ``null``), also said in the report.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..board.flowyaml import addr as _addr
from ..board.flowyaml import scalar as _scalar
from ..board.flowyaml import unique_name as _unique
from ..board.flowyaml import value as _value
from ..board.model import QEMU_ID
from ..errors import QmpFileError
from ..qemu.phases import EXIT_PRECONFIG, MACHINE_INIT
from ..qemu.types import system_type_info
from ..source import SourceLocation
from .qmpfile import QmpFile
from .qmpfold import CompT, WireEntry, fold_components, fold_wires
from .steps import Step

_OUT = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9_-]*)\[(?P<index>[0-9]{1,18})\]$")
_IN = re.compile(r"^(?P<path>.+)/(?P<name>[A-Za-z][A-Za-z0-9_-]*)\[(?P<index>[0-9]{1,18})\]$")
_HART = re.compile(r"^(?P<array>[^/]+)/harts\[(?P<index>[0-9]{1,18})\]$")
_PERIPHERAL = "/machine/peripheral/"
#: A string written plain in flow style (no comma: it would end the flow entry).


@dataclass
class _Comp:
    type: str
    props: dict[str, Any]
    line: int
    mmio: list[dict[str, int | str]] = field(default_factory=list)  # addr: a ${...} text in a count: entry
    parent: str | None = None
    count: int | None = None  # a hart array's CPUs: one entry with count
    links: dict[str, str] = field(default_factory=dict)  # link properties: name -> target (links:)


@dataclass
class Imported:
    """The board text and the coverage report (one line per kind of command, with counts and lines)."""

    yaml: str
    report: list[str]


class _Importer:
    def __init__(self, qmp: QmpFile) -> None:
        self.qmp = qmp
        self.comps: dict[str, _Comp] = {}
        self.arrays: dict[str, int] = {}  # hart array id -> its number of harts
        #: QOM path below /machine/peripheral of each component with a parent (cluster0/hart0) -> its id.
        self.children: dict[str, str] = {}
        self.wires: list[tuple[str, str, int, str, str, int]] = []
        self.raw: list[Step] = []
        self.left_out: list[str] = []
        self.counts: dict[str, int] = {}

    def count(self, what: str) -> None:
        self.counts[what] = self.counts.get(what, 0) + 1

    def run(self) -> None:
        for step in self.qmp.commands:
            try:
                self.take(step)
            except (ValueError, TypeError, KeyError) as err:
                # A number that is not one, an argument missing: the command cannot become board YAML.
                detail = f"missing argument {err}" if isinstance(err, KeyError) else str(err)
                literal = re.fullmatch(r"invalid literal for int\(\) with base \d+: (.*)", detail)
                if literal:  # int() of an argument that is not a number (addr=0xzz)
                    detail = f"{literal[1]} is not a number (decimal, or hex with 0x)"
                raise QmpFileError(step.location or SourceLocation(self.qmp.path, 0, 0),
                                   f"{step.as_written}: cannot import this command: {detail}",
                                   "fix the command (`machinedesc run` on the file shows what QEMU says)") from None

    def take(self, step: Step) -> None:
        """Fold one command into the components, wires or raw entries."""
        args = dict(step.arguments)
        if step.command in (MACHINE_INIT, EXIT_PRECONFIG):
            self.count("phase transitions (the plan sends them)")
        elif step.command == "device_add":
            self.device(step, args)
        elif step.command == "x-sysbus-mmio-map" and str(args.get("device")) in self.comps:
            entry: dict[str, int | str] = {"region": _arg(args, "mmio", 0, _U32),
                                           "addr": _arg(args, "addr", None, _U64),
                                           "priority": _arg(args, "priority", 0, _S32)}
            if "offset" in args or "size" in args:
                # The alias form: a window of the region (mmio: offset:, size:).
                entry.update(offset=_arg(args, "offset", None, _U64), size=_arg(args, "size", None, _U64))
                self.count("MMIO windows (alias form, into the components' mmio with offset and size)")
            else:
                self.count("MMIO maps (into the components' mmio)")
            self.comps[str(args["device"])].mmio.append(entry)
        elif step.command == "qom-set" and self.qom_set(args):
            pass
        else:
            self.raw.append(step)
            self.count("commands kept as raw qmp: entries")

    def device(self, step: Step, args: dict[str, Any]) -> None:
        driver = str(args.pop("driver", ""))
        raw_id = args.pop("id", "")
        if raw_id != "" and not (isinstance(raw_id, str) and QEMU_ID.match(raw_id)):
            # QEMU refuses it too; written as a board key it could be YAML of its own ("a: {...}").
            raise ValueError(f"id {raw_id!r} is not an id QEMU takes (a letter, then letters, digits, "
                             "'_', '.', '-')")
        cid = str(raw_id)
        line = step.location.line if step.location else 0
        if driver == "loader":
            self.left_out.append(f"line {line}: loader of {args.get('file', '?')} kept as a raw qmp: entry "
                                 "(or delete it and give the image to apply --firmware)")
            self.raw.append(step)
            self.count("firmware loaders (raw qmp: entries)")
            return
        if not cid:
            self.raw.append(step)
            self.count("commands kept as raw qmp: entries")
            return
        args.pop("realized", None)
        parent = args.pop("parent", None)
        if driver == "riscv.hart_array":
            harts = int(args.get("num-harts", 1))
            base = int(args.get("hartid-base", 0))
            self.arrays[cid] = harts
            self.comps[cid] = _Comp("cpu-cluster", {"cluster-id": len(self.arrays) - 1}, line)
            cpu_type = str(args.get("cpu-type", "rv64-riscv-cpu"))
            resetvec = {"resetvec": int(args["resetvec"])} if "resetvec" in args else {}
            if harts == 1:  # one hart: a plain entry reads better than a count: of one
                self.comps[f"{cid}-hart0"] = _Comp(cpu_type, {"mhartid": base, **resetvec}, line, parent=cid)
            else:
                props: dict[str, Any] = {"mhartid": f"${{{base} + i}}" if base else "${i}", **resetvec}
                self.comps[f"{cid}-hart${{i}}"] = _Comp(cpu_type, props, line, parent=cid, count=harts)
            self.count("hart arrays (each a cluster with count: CPUs)")
            return
        if isinstance(parent, str):
            parent = parent.removeprefix(_PERIPHERAL)
            if not parent.startswith("/"):
                self.children[f"{parent}/{cid}"] = cid
        self.comps[cid] = _Comp(driver, args, line, parent=parent if isinstance(parent, str) else None)
        self.count("devices (components)")

    def qom_set(self, args: dict[str, Any]) -> bool:
        """Fold a qom-set into the board; False if it stays a raw command."""
        path, prop, value = (str(args.get("path", "")).removeprefix(_PERIPHERAL), str(args.get("property", "")),
                             args.get("value"))
        if prop == "realized" and value is True and self.component(path):
            self.count("realize commands (the plan sends them)")
            return True
        out, dst = _OUT.match(prop), _IN.match(str(value)) if isinstance(value, str) else None
        src_comp, dst_comp = self.component(path), self.component(dst["path"]) if dst else None
        if not (out and dst and src_comp and dst_comp):
            return False
        self.wires.append((src_comp, out["name"], int(out["index"]), dst_comp, dst["name"], int(dst["index"])))
        self.count("wires (qom-set of an output line)")
        return True

    def component(self, path: str) -> str | None:
        """The component id a (peripheral-relative) QOM path names, or None."""
        path = path.removeprefix(_PERIPHERAL)
        hart = _HART.match(path)
        if hart and hart["array"] in self.arrays:
            return f"{hart['array']}-hart{hart['index']}"
        path = self.children.get(path, path)  # a child of its parent: cluster0/hart0
        return path if path in self.comps and self.comps[path].count is None else None


def import_qmp(qmp: QmpFile, system: str | None, name: str) -> Imported:
    """The board for ``qmp`` (already in machinedesc's dialect), named ``name``.

    Raises QmpFileError when the system cannot be told (no header, no ``system``).
    """
    imp = _Importer(qmp)
    imp.run()
    system = system or qmp.system or _guess_system(imp.comps)
    if system is None:
        raise QmpFileError(SourceLocation(qmp.path, 0, 0), "cannot tell which qemu-system-X this file is for",
                           "give --system riscv64 (or aarch64, ...)")
    _fold_links(imp, system)
    renamed = _rename_dotted(imp)
    chardevs = sorted({str(c.props["chardev"]) for c in imp.comps.values() if "chardev" in c.props})
    out = ["# Imported by machinedesc import-qmp from " + qmp.path,
           "machinedesc: 1", f"name: {name}", f"summary: {_scalar(f'imported from {qmp.path}')}",
           f"system: {system}", ""]
    if chardevs:
        out.append("chardevs:")
        out.extend(f"  {_scalar(c)}: {'stdio' if i == 0 else _scalar('null')}" for i, c in enumerate(chardevs))
        out.append("")
    out.append("components:" if imp.comps else "components: {}  # the file adds no device")
    for cid, comp in _folded_components(imp.comps, imp.counts).items():
        out.append(f"  {cid}: {_component(comp)}")
    entries = fold_wires(imp.wires)
    if entries:
        out += ["", "wiring:"]
        used: set[str] = set()
        last: dict[str, int] = {}
        for entry in entries:
            if not isinstance(entry, WireEntry):
                src, sname, si, dst, dname, di = entry
                entry = WireEntry(f"{src}-{dst}", f"{src}.{sname}[{si}]", f"{dst}.{dname}[{di}]", None, 1)
            count = f"count: {entry.count}, " if entry.count is not None else ""
            out.append(f"  {_unique(entry.name, used, last)}: {{{count}from: {_scalar(entry.source)}, "
                       f"to: {_scalar(entry.target)}}}")
            kind = "wire entries with ranges" if entry.ranged else "wire entries with count:" if entry.count else ""
            if kind:
                imp.counts[kind] = imp.counts.get(kind, 0) + 1
    if imp.raw:
        out += ["", "qmp:"]
        for k, step in enumerate(imp.raw):
            args = json.dumps(dict(step.arguments), separators=(", ", ": "))
            line = step.location.line if step.location else 0
            out.append(f"  line{line or k}: {{execute: {_scalar(step.command)}, arguments: {args}}}")
    report = [f"import-qmp: {qmp.path}: {len(qmp.commands)} commands"]
    report += [f"  {n:4d} {what}" for what, n in imp.counts.items()]
    report += [f"  {ln}" for ln in imp.left_out]
    report += [f"  id {old} renamed {new}: a wire's line names its component before the first dot"
               for old, new in renamed.items()]
    if chardevs:
        report.append(f"  chardevs {', '.join(chardevs)}: the first on stdio, the others null (edit to taste)")
    if len(entries) < len(imp.wires):
        report.append(f"  {len(imp.wires)} wires written as {len(entries)} entries "
                      "(runs folded into ranges and count: entries)")
    return Imported("\n".join(out) + "\n", report)


def _rename_dotted(imp: _Importer) -> dict[str, str]:
    """Ids with a dot (QEMU takes them; a board's lines cannot name them) renamed with '-' for '.'."""
    renamed: dict[str, str] = {}
    used = set(imp.comps)  # and, as _unique adds them, the new names
    last: dict[str, int] = {}
    for cid in list(imp.comps):
        if "." in cid:
            renamed[cid] = _unique(cid.replace(".", "-"), used, last)
    if not renamed:
        return renamed
    imp.comps = {renamed.get(k, k): v for k, v in imp.comps.items()}
    for comp in imp.comps.values():
        if comp.parent in renamed:
            comp.parent = renamed[comp.parent]
    imp.wires = [(renamed.get(a, a), b, c, renamed.get(d, d), e, f) for a, b, c, d, e, f in imp.wires]
    for comp in imp.comps.values():
        for name, target in comp.links.items():
            owner, sep, inside = target.partition("/")
            comp.links[name] = renamed.get(owner, owner) + sep + inside
    return renamed


def _fold_links(imp: _Importer, system: str) -> None:
    """Link properties (the type database says which) into the components' ``links:``.

    Both a ``device_add`` argument and a later ``qom-set`` of the property (a
    link set once both exist, as for two devices that link to each other)
    become a link the planner sets; the raw ``qmp:`` entry goes.
    """
    def is_link(comp: _Comp, name: str) -> bool:
        prop = (system_type_info(comp.type, system).properties or {}).get(name)
        return prop is not None and prop.kind == "link"

    for comp in imp.comps.values():
        for name in [n for n, v in comp.props.items() if isinstance(v, str) and is_link(comp, n)]:
            comp.links[name] = _link_target(imp, str(comp.props.pop(name)))
            imp.count("links (into the components' links)")
    kept: list[Step] = []
    for step in imp.raw:
        args = step.arguments
        cid = imp.component(str(args.get("path", ""))) if step.command == "qom-set" else None
        name, value = str(args.get("property", "")), args.get("value")
        if cid is None or not isinstance(value, str) or not is_link(imp.comps[cid], name):
            kept.append(step)
            continue
        imp.comps[cid].links[name] = _link_target(imp, value)
        imp.counts["commands kept as raw qmp: entries"] -= 1
        if not imp.counts["commands kept as raw qmp: entries"]:
            del imp.counts["commands kept as raw qmp: entries"]
        imp.count("links (into the components' links)")
    imp.raw = kept


def _link_target(imp: _Importer, path: str) -> str:
    """A link's QOM path as a board writes it: ``ram/mem[0]``, ``hart0`` for cluster0/hart0; else as it is."""
    if not path.startswith(_PERIPHERAL):
        return path
    parts = path.removeprefix(_PERIPHERAL).split("/")
    for n in range(len(parts), 0, -1):
        owner = imp.component("/".join(parts[:n]))
        if owner is not None:
            return "/".join([owner, *parts[n:]])
    return path


def _guess_system(comps: Mapping[str, _Comp]) -> str | None:
    types = " ".join(c.type for c in comps.values())
    if "riscv" in types:
        return "riscv64"
    if "arm" in types or "gic" in types:
        return "aarch64"
    return None


def _component(comp: _Comp) -> str:
    parts = [f"type: {_scalar(comp.type)}"]
    if comp.count is not None:
        parts.insert(0, f"count: {comp.count}")
    if comp.parent:
        parts.append(f"parent: {_scalar(comp.parent)}")
    if comp.props:
        parts.append("props: {" + ", ".join(f"{_scalar(k)}: {_value(v)}" for k, v in comp.props.items()) + "}")
    if comp.links:
        parts.append("links: {" + ", ".join(f"{_scalar(k)}: {_scalar(v)}" for k, v in comp.links.items()) + "}")
    if len(comp.mmio) == 1 and comp.mmio[0].keys() == {"region", "addr", "priority"} \
            and comp.mmio[0]["region"] == 0 and comp.mmio[0]["priority"] == 0:
        parts.append(f"mmio: {_addr(comp.mmio[0]['addr'])}")
    elif comp.mmio:
        maps = []
        for m in comp.mmio:
            fields = [f"addr: {_addr(m['addr'])}"] + [f"{k}: {m[k]}" for k in ("region", "priority") if m[k]]
            fields += [f"{k}: {_addr(m[k])}" for k in ("offset", "size") if k in m]
            maps.append("{" + ", ".join(fields) + "}")
        parts.append("mmio: [" + ", ".join(maps) + "]")
    return "{" + ", ".join(parts) + "}"


def _folded_components(comps: Mapping[str, _Comp], counts: dict[str, int]) -> dict[str, _Comp]:
    """``comps`` with each run of numbered look-alikes (hart0, hart1, ...) as one ``count:`` entry (plan.qmpfold)."""
    items = [(cid, None if c.count is not None else
              CompT(c.type, c.props, c.parent, tuple(_map_numbers(m) for m in c.mmio), c.links))
             for cid, c in comps.items()]
    out: dict[str, _Comp] = {}
    k = 0
    for key, n, texts in fold_components(items):
        first = comps[items[k][0]]
        if n is None or texts is None:
            out[key] = first
            k += 1
            continue
        values = iter(texts)
        props = {name: next(values) or value for name, value in first.props.items()}
        links = {name: next(values) or value for name, value in first.links.items()}
        mmio = [{**m, **{k: next(values) or m[k] for k in ("addr", "offset", "size") if k in m}} for m in first.mmio]
        out[key] = _Comp(first.type, props, first.line, mmio, first.parent, n, links)
        counts["component entries with count:"] = counts.get("component entries with count:", 0) + 1
        k += n
    return out


_U32, _S32, _U64 = (0, (1 << 32) - 1), (-(1 << 31), (1 << 31) - 1), (0, (1 << 64) - 1)


def _arg(args: Mapping[str, Any], key: str, default: int | None, bounds: tuple[int, int]) -> int:
    """Integer argument ``key`` of x-sysbus-mmio-map within QMP's type for it (``bounds``), else ValueError
    (``run`` reports it at the command's line); KeyError when it is missing and has no default."""
    value = args[key] if default is None else args.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{key}={value!r} is not an integer")
    if not bounds[0] <= value <= bounds[1]:
        raise ValueError(f"{key}={value} is out of range ({bounds[0]} to {bounds[1]})")
    return value


def _map_numbers(m: Mapping[str, Any]) -> tuple[int, ...]:
    """An MMIO map as qmpfold.CompT has it: (region, addr, priority), plus (offset, size) for a window."""
    window = (int(m["offset"]), int(m["size"])) if "offset" in m else ()
    return (int(m["region"]), int(m["addr"]), int(m["priority"]), *window)
