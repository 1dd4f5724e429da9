"""import-dtb's runs: equal components numbered 0..n-1 written as one ``count:`` entry, and their wires too.

A run is a maximal sequence of components, consecutive in the board's
order, whose ids are PREFIX0, PREFIX1, ... (hart0, hart1; virtio_mmio0 ...
virtio_mmio31), of one type and parent, whose every property and MMIO
address is either the same in all or linear in the index (``${0xa000000 + i *
0x200}``), or a string PREFIXk. Wires whose one end runs over such a run
(and whose other end is one component) with indices linear in it become one
``count:`` entry. What does not fit stays one line per component or wire.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from .dtimport import Comp, Wire

_NUMBERED = re.compile(r"^(?P<prefix>[A-Za-z](?:[A-Za-z0-9_-]*[A-Za-z_-])?)(?P<k>0|[1-9][0-9]*)$")


@dataclass
class Run:
    """Components ``prefix0`` .. ``prefix{n-1}`` as one entry: ``values`` are the entry's props and mmio."""

    prefix: str
    members: list[str]
    props: dict[str, Any]
    mmio: dict[int, Any]


def linear(values: list[Any]) -> Any:
    """One value for all k: the value itself, ``${a + i * b}`` for integers a + b*k, ``p${i}`` for strings pk;
    None when there is none."""
    first = values[0]
    if all(v == first and type(v) is type(first) for v in values):
        return first
    if all(isinstance(v, int) and not isinstance(v, bool) for v in values):
        a, b = values[0], values[1] - values[0]
        if all(v == a + b * k for k, v in enumerate(values)):
            step = "i" if abs(b) == 1 else f"i * {_num(abs(b))}"
            return "${" + (f"{_num(a)} {'+' if b > 0 else '-'} " if a or b < 0 else "") + step + "}"
        return None
    if all(isinstance(v, str) for v in values):
        m = _NUMBERED.match(str(first))
        if m and m["k"] == "0" and all(v == f"{m['prefix']}{k}" for k, v in enumerate(values)):
            return m["prefix"] + "${i}"
    return None


def _num(v: int) -> str:
    return f"{v:#x}" if v >= 0x1000 else str(v)


def find_runs(order: list[str], comps: dict[str, Comp]) -> dict[str, Run]:
    """The runs of ``order`` (at least two members), keyed by their first member."""
    runs: dict[str, Run] = {}
    k = 0
    while k < len(order):
        m = _NUMBERED.match(order[k])
        n = 0
        if m and m["k"] == "0":
            while k + n < len(order) and order[k + n] == f"{m['prefix']}{n}":
                n += 1
        run = _run(m["prefix"], order[k:k + n], comps) if m and n > 1 else None
        if run is not None:
            runs[order[k]] = run
            k += n
        else:
            k += 1
    return runs


def _run(prefix: str, members: list[str], comps: dict[str, Comp]) -> Run | None:
    cs = [comps[c] for c in members]
    head = cs[0]
    if any(c.type != head.type or c.parent != head.parent or list(c.props) != list(head.props)
           or list(c.mmio) != list(head.mmio) or c.windows for c in cs):
        return None
    props = {p: linear([c.props[p] for c in cs]) for p in head.props}
    mmio = {r: linear([c.mmio[r] for c in cs]) for r in head.mmio}
    if any(v is None for v in [*props.values(), *mmio.values()]):
        return None
    return Run(prefix, members, props, mmio)


def fold_wires(wires: list[Wire], runs: dict[str, Run]) -> list[tuple[str, str, int]]:
    """(from, to, count) entries: wires over a run's members with linear indices as one; the rest one each."""
    member = {cid: (run, k) for run in runs.values() for k, cid in enumerate(run.members)}
    groups: dict[tuple[Any, ...], dict[int, tuple[int, Wire]]] = {}
    out: list[tuple[int, str, str, int]] = []  # (position of the first wire, from, to, count)
    seen: dict[tuple[Any, ...], int] = {}
    for pos, w in enumerate(wires):
        s, sl, si, d, dl, di = w
        if (s in member) == (d in member):
            out.append((pos, f"{s}.{sl}[{si}]", f"{d}.{dl}[{di}]", 1))
            continue
        key: tuple[Any, ...] = ("from", member[s][0].prefix, sl, d, dl) if s in member else \
            ("to", member[d][0].prefix, dl, s, sl)
        k = member[s if s in member else d][1]
        # The j-th such wire of member k goes with the j-th of every other member (wires are sorted).
        j = seen.get((*key, k), 0)
        seen[(*key, k)] = j + 1
        groups.setdefault((*key, j), {})[k] = (pos, w)
    for key, by_k in groups.items():
        run = next(r for r in runs.values() if r.prefix == key[1])
        entry = _wire_entry(key, {k: w for k, (_p, w) in by_k.items()}, run)
        if entry is None or len(by_k) != len(run.members):
            out += [(p, f"{s}.{sl}[{si}]", f"{d}.{dl}[{di}]", 1) for p, (s, sl, si, d, dl, di) in by_k.values()]
        else:
            out.append((min(p for p, _ in by_k.values()), *entry))
    if sum(n for *_, n in out) != len(wires):  # never drop a wire, whatever the grouping did
        raise AssertionError(f"folded {sum(n for *_, n in out)} of {len(wires)} wires")
    return _ranges([(f, t, n) for _pos, f, t, n in sorted(out)])


_ONE = re.compile(r"^(?P<end>[^$\[]+)\[(?P<k>\d+)\]$")


def _ranges(entries: list[tuple[str, str, int]]) -> list[tuple[str, str, int]]:
    """Consecutive single wires from one line family to one other, both indices one up each time (a PCIe
    host's INTA-INTD), as one ``a.x[i..j]`` -> ``b.y[k..l]`` entry (its count stays the number of wires)."""
    out: list[tuple[str, str, int]] = []
    run: list[tuple[str, int, str, int]] = []  # (from family, index, to family, index) of the open range

    def close() -> None:
        if len(run) > 1:
            (f, a, t, b), (_f, a2, _t, b2) = run[0], run[-1]
            out.append((f"{f}[{a}..{a2}]", f"{t}[{b}..{b2}]", len(run)))
        else:
            out.extend((f"{f}[{a}]", f"{t}[{b}]", 1) for f, a, t, b in run)
        run.clear()

    for src, dst, n in entries:
        ms, md = _ONE.match(src), _ONE.match(dst)
        if n != 1 or ms is None or md is None:
            close()
            out.append((src, dst, n))
            continue
        one = (ms["end"], int(ms["k"]), md["end"], int(md["k"]))
        if run and not (run[-1][0] == one[0] and run[-1][2] == one[2] and run[-1][1] + 1 == one[1]
                        and run[-1][3] + 1 == one[3]):
            close()
        run.append(one)
    close()
    return out


def _wire_entry(key: tuple[Any, ...], by_k: dict[int, Wire], run: Run) -> tuple[str, str, int] | None:
    n = len(run.members)
    if sorted(by_k) != list(range(n)):
        return None
    src_index = linear([by_k[k][2] for k in range(n)])
    dst_index = linear([by_k[k][5] for k in range(n)])
    if src_index is None or dst_index is None:
        return None
    s, sl, _, d, dl, _ = by_k[0]
    if key[0] == "from":
        s = run.prefix + "${i}"
    else:
        d = run.prefix + "${i}"
    return f"{s}.{sl}[{src_index}]", f"{d}.{dl}[{dst_index}]", n
