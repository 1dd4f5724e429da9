"""import-dtb's output: the board YAML (one flow-style line per component and wire) and the coverage report.

The same shape as import-qmp's (plan/qmpimport.py): a header comment, the
board's keys, ``components:`` one line each (here with the node it came from
as a comment), ``wiring:`` one line each; the report is a header line, one
line per kind with its count, then one line per node skipped, per node with
properties not mapped, and per value the tree did not give.
"""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING, Any

from .dtimport_runs import find_runs, fold_wires

if TYPE_CHECKING:
    from .dtimport import Comp, Importer

# No ',' (a flow mapping's separator: hart-config "MS,MS" must be quoted).
_PLAIN = re.compile(r"^[A-Za-z_][A-Za-z0-9_./-]*$")


def render(imp: Importer, chardevs: dict[str, str]) -> str:
    """The board text: deterministic (the tree's order, ids and names only from the tree)."""
    path = imp.tree.path
    model = imp.devicetree.get("model")
    summary = f"imported from {path.name}" + (f" ({model})" if model else "")
    out = ["# Imported by machinedesc import-dtb from " + path.name,
           "machinedesc: 1", f"name: {scalar(imp.name)}", f"summary: {scalar(summary)}",
           f"system: {imp.system}", ""]
    if chardevs:
        out.append("chardevs:")
        out.extend(f"  {k}: {scalar(v)}" for k, v in chardevs.items())
        out.append("")
    if imp.devicetree:
        out.append("devicetree:")
        out.extend(f"  {k}: {value(v)}" for k, v in imp.devicetree.items())
        out.append("")
    out.append("components:")
    order = _order(imp)
    runs = find_runs(order, imp.comps)
    in_run = {m for run in runs.values() for m in run.members}
    for cid in order:
        comp = imp.comps[cid]
        if cid in runs:
            run = runs[cid]
            last = imp.comps[run.members[-1]].path
            text = _component(comp, run.props, run.mmio, len(run.members))
            out.append(f"  {run.prefix}${{i}}: {text}  # {comp.path}" + (f" .. {last}" if last != comp.path else ""))
        elif cid not in in_run:
            out.append(f"  {cid}: {_component(comp, comp.props, comp.mmio)}  # {comp.path}")
    if imp.wires:
        out += ["", "wiring:"]
        used: set[str] = set()
        rank = {cid: k for k, cid in enumerate(order)}
        wires = sorted(imp.wires, key=lambda w: (rank[w[0]], w[1], w[2], rank[w[3]], w[4], w[5]))
        for src, dst, count in fold_wires(wires, runs):
            name = _unique("-".join(e.split(".")[0].replace("${i}", "") for e in (src, dst)), used)
            prefix = f"count: {count}, " if count > 1 else ""
            out.append(f"  {name}: {{{prefix}from: {scalar(src)}, to: {scalar(dst)}}}")
    return "\n".join(out) + "\n"


def report(imp: Importer) -> list[str]:
    """The coverage report's lines: every node of the tree counted, and each one not imported named."""
    nodes = [n.path for n in imp.tree.dt.node_iter()]
    for path in nodes:
        imp.outcome.setdefault(path, "skipped: not examined (a bug: please report it)")
    outcomes = [imp.outcome[p] for p in nodes]
    imported = [o for o in outcomes if o.startswith("imported")]
    skipped = [(p, imp.outcome[p]) for p in nodes if imp.outcome[p].startswith("skipped")]
    lines = [f"import-dtb: {imp.tree.path}: {len(nodes)} nodes",
             f"  {len(imported):4d} nodes imported as {len(imp.comps)} components"]
    folded: dict[str, int] = {}
    for o in outcomes:
        if o.startswith("folded: "):
            folded[o.removeprefix("folded: ")] = folded.get(o.removeprefix("folded: "), 0) + 1
    lines += [f"  {n:4d} folded: {why}" for why, n in folded.items()]
    lines.append(f"  {len(skipped):4d} nodes skipped (each below, with its reason)")
    lines.append(f"  {len(imp.wires):4d} wires ({len(imp.wires) - imp.implied} from interrupt properties, "
                 f"{imp.implied} that the GICv3 implies)")
    lines += [f"  skipped {p}: {o.removeprefix('skipped: ')}" for p, o in skipped]
    # Nodes with the same properties left (dma-coherent on 32 virtio-mmio nodes) share one line.
    same: dict[str, list[str]] = {}
    for p, props in imp.unmapped.items():
        same.setdefault(", ".join(props), []).append(p)
    lines += [f"  not mapped {props}: {', '.join(paths)}" for props, paths in same.items()]
    # Notes with the same words for several nodes (33 interrupts to a GIC left out) share one line too.
    by_text: dict[str, list[str]] = {}
    for n in imp.notes:
        where, _, text = n.partition(": ")
        if where not in by_text.setdefault(text, []):
            by_text[text].append(where)
    lines += [f"  note {', '.join(where)}: {text}" for text, where in by_text.items()]
    return lines


def _order(imp: Importer) -> list[str]:
    """Clusters, then CPUs (in their index order), then the rest by address (the memory map's order)."""
    clusters = [c for c, comp in imp.comps.items() if comp.type == "cpu-cluster"]
    rest = [c for c in imp.comps if c not in clusters and c not in imp.cpus]
    rest.sort(key=lambda c: (min(imp.comps[c].mmio.values(), default=-1), c))
    return clusters + imp.cpus + rest


def _component(comp: Comp, props: dict[str, Any], mmio: dict[int, Any], count: int = 1) -> str:
    """One flow mapping: a component, or a run of ``count`` (``props`` and ``mmio`` may hold ``${i}``)."""
    parts = [f"count: {count}"] if count > 1 else []
    parts.append(f"type: {scalar(comp.type)}")
    if comp.parent:
        parts.append(f"parent: {scalar(comp.parent)}")
    if props:
        parts.append("props: {" + ", ".join(f"{scalar(k)}: {value(v)}" for k, v in props.items()) + "}")
    if list(mmio) == [0]:
        parts.append(f"mmio: {_addr(mmio[0])}")
    elif mmio:
        parts.append("mmio: [" + ", ".join(f"{{region: {r}, addr: {_addr(a)}}}" for r, a in mmio.items()) + "]")
    return "{" + ", ".join(parts) + "}"


def _addr(a: Any) -> str:
    return f"{a:#x}" if isinstance(a, int) else scalar(str(a))


def _unique(name: str, used: set[str]) -> str:
    base, n = name, 1
    while name in used:
        n += 1
        name = f"{base}-{n}"
    used.add(name)
    return name


def value(v: Any) -> str:
    """A property value in flow YAML: booleans, integers (hex from 0x1000), lists, strings."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return f"{v:#x}" if v >= 0x1000 else str(v)
    if isinstance(v, list):
        return "[" + ", ".join(value(x) for x in v) + "]"
    return scalar(str(v))


def scalar(text: str) -> str:
    """A string as YAML reads it back as that string: plain when safe, else double-quoted (as import-qmp)."""
    if _PLAIN.match(text) and text.lower() not in ("true", "false", "null", "yes", "no", "on", "off", "y", "n") \
            and "${" not in text:
        return text
    return json.dumps(text)
