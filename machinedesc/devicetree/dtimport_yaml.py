"""import-dtb's output: the board YAML (one flow-style line per component and wire) and the coverage report.

The same shape as import-qmp's (plan/qmpimport.py): a header comment, the
board's keys, ``components:`` one line each (here with the node it came from
as a comment), ``wiring:`` one line each; the report is a header line, one
line per kind with its count, then one line per node skipped, per node with
properties not mapped, and per value the tree did not give.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..board.flowyaml import addr as _addr
from ..board.flowyaml import scalar, value
from ..board.flowyaml import unique_name as _unique
from .dtimport_runs import find_runs, fold_wires

if TYPE_CHECKING:
    from .dtimport import Comp, Importer

# No ',' (a flow mapping's separator: hart-config "MS,MS" must be quoted).


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
            prefix = f"count: {count}, " if count > 1 and ".." not in src else ""
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
                 f"{imp.implied} that the GIC implies)")
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
    rest.sort(key=lambda c: (min([*imp.comps[c].mmio.values(), *(w[3] for w in imp.comps[c].windows)], default=-1), c))
    return clusters + imp.cpus + rest


def _component(comp: Comp, props: dict[str, Any], mmio: dict[int, Any], count: int = 1) -> str:
    """One flow mapping: a component, or a run of ``count`` (``props`` and ``mmio`` may hold ``${i}``)."""
    parts = [f"count: {count}"] if count > 1 else []
    parts.append(f"type: {scalar(comp.type)}")
    if comp.parent:
        parts.append(f"parent: {scalar(comp.parent)}")
    if props:
        parts.append("props: {" + ", ".join(f"{scalar(k)}: {value(v)}" for k, v in props.items()) + "}")
    entries = [(r, -1, f"{{region: {r}, addr: {_addr(a)}}}") for r, a in mmio.items()]
    entries += [(r, off, f"{{region: {r}, offset: {value(off)}, size: {value(size)}, addr: {_addr(a)}}}")
                for r, off, size, a in comp.windows]
    if list(mmio) == [0] and not comp.windows:
        parts.append(f"mmio: {_addr(mmio[0])}")
    elif entries:
        # Regions in order, each one's own mapping before its windows (by offset).
        parts.append("mmio: [" + ", ".join(text for *_, text in sorted(entries, key=lambda e: e[:2])) + "]")
    return "{" + ", ".join(parts) + "}"


