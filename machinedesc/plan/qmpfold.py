"""import-qmp's folding: a run of similar wires written as one wiring entry.

A QMP file connects one output to one input per ``qom-set``; a board says
the same for a whole run in one entry (docs/format.md, "Wiring"). A run is a
sequence of consecutive wires (file order, which is the plan's order) whose
line names and component stems are the same and whose numbers (the number
at the end of a component id, each line index) step by a constant from one
wire to the next:

* component ids the same, indices stepping by one (or staying) -> ranges:
  ``gpio.sysbus-irq[0..31]`` to ``plic.unnamed-gpio-in[8..39]``;
* anything else that steps -> a ``count:`` entry with ``${...}``: one wire
  per hart, ``mswi.unnamed-gpio-out[${i}]`` to ``hart${i}.unnamed-gpio-in[3]``,
  or ``cpu${i}.unnamed-gpio-out[0]`` to ``gic.unnamed-gpio-in[${286 + 32 * i}]``.

Either entry expands to the very wires of the run, in the same order, so the
board plans the file's wires (tests/run/test_qmp_import.py compares plans).
Runs are found greedily from the first wire of each: the first two wires set
the steps, the run goes on while the next wire follows them.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

#: One wire as import-qmp reads it: (source id, output name, index, target id, input name, index).
WireT = tuple[str, str, int, str, str, int]

#: A component id ending in a number: hart12 is ("hart", 12). The stem keeps any leading zeros, and
#: any digits before the last 18 (a number of a QMP file is at most 64 bits).
_NUMBERED = re.compile(r"^(?P<stem>.+?)(?P<num>0|[1-9][0-9]{0,17})$")


@dataclass(frozen=True)
class WireEntry:
    """One wiring entry: its line texts, how many copies (``count``, None without) and wires it stands for."""

    name: str
    source: str
    target: str
    count: int | None
    wires: int

    @property
    def ranged(self) -> bool:
        return self.count is None and self.wires > 1


def _parts(wire: WireT) -> tuple[tuple[str | None, ...], tuple[int, ...]]:
    """The text parts and the numbers of a wire: ((stems, names), (id numbers, indices)); -1: no number."""
    texts: list[str | None] = []
    nums: list[int] = []
    for cid, name, index in (wire[:3], wire[3:]):
        match = _NUMBERED.match(cid)
        texts += [match["stem"] if match else cid, name]
        nums += [int(match["num"]) if match else -1, index]
    return tuple(texts), tuple(nums)


def _run(wires: list[WireT], k: int) -> tuple[int, tuple[int, ...]]:
    """How many wires from ``k`` on form a run, and its steps (id number, index, id number, index)."""
    if k + 1 >= len(wires):
        return 1, (0, 0, 0, 0)
    texts, first = _parts(wires[k])
    texts2, second = _parts(wires[k + 1])
    if texts2 != texts or any((a < 0) != (b < 0) for a, b in zip(first, second, strict=True)):
        return 1, (0, 0, 0, 0)
    steps = tuple(b - a for a, b in zip(first, second, strict=True))
    if not any(steps):
        return 1, steps  # the same wire twice: written as it is
    n = 2
    while k + n < len(wires):
        texts_n, nums = _parts(wires[k + n])
        if texts_n != texts or nums != tuple(a + s * n for a, s in zip(first, steps, strict=True)):
            break
        n += 1
    return n, steps


def _expr(base: int, step: int, hex_: bool = False) -> str:
    """``base + step * i`` as board text: ``3``, ``${i}``, ``${286 + 32 * i}``, ``${7 - i}``; hex for addresses."""
    num = (lambda v: f"{v:#x}") if hex_ else str
    if step == 0:
        return num(base)
    term = "i" if abs(step) == 1 else f"{num(abs(step))} * i"
    if base == 0 and step > 0:
        return f"${{{term}}}"
    return f"${{{num(base)} {'+' if step > 0 else '-'} {term}}}"


def fold_wires(wires: list[WireT]) -> list[WireT | WireEntry]:
    """``wires`` with each run of two or more replaced by one WireEntry (single wires stay tuples)."""
    out: list[WireT | WireEntry] = []
    k = 0
    while k < len(wires):
        n, steps = _run(wires, k)
        if n == 1:
            out.append(wires[k])
            k += 1
            continue
        src, sname, si, dst, dname, di = wires[k]
        last = wires[k + n - 1]
        if steps[0] == steps[2] == 0 and set(steps[1::2]) <= {0, 1}:  # the same two components: ranges
            source = f"{src}.{sname}[{si}..{last[2]}]" if steps[1] else f"{src}.{sname}[{si}]"
            target = f"{dst}.{dname}[{di}..{last[5]}]" if steps[3] else f"{dst}.{dname}[{di}]"
            out.append(WireEntry(f"{src}-{dst}", source, target, None, n))
        else:
            (sstem, _, dstem, _), nums = _parts(wires[k])
            ends: list[str] = []
            names: list[str] = []
            for side, (cid, stem, name) in enumerate(((src, sstem, sname), (dst, dstem, dname))):
                id_step, index_step = steps[2 * side], steps[2 * side + 1]
                names.append(str(stem) if id_step else cid)
                if id_step:
                    cid = f"{stem}{_expr(nums[2 * side], id_step)}"
                ends.append(f"{cid}.{name}[{_expr(nums[2 * side + 1], index_step)}]")
            out.append(WireEntry("-".join(names), ends[0], ends[1], n, n))
        k += n
    return out


@dataclass(frozen=True)
class CompT:
    """A component as import-qmp writes it: properties, parent, MMIO maps, links.

    Each MMIO map is (region, addr, priority), or (region, addr, priority,
    offset, size) for a window of the region (the alias form).
    """

    type: str
    props: dict[str, Any]
    parent: str | None
    mmio: tuple[tuple[int, ...], ...]
    links: dict[str, str] = field(default_factory=dict)


def _values(comp: CompT) -> list[Any]:
    """Everything of a component that may step from copy to copy: properties, links, then each MMIO map's
    address (and a window's offset and size)."""
    return [*comp.props.values(), *comp.links.values(), *(v for m in comp.mmio for v in (m[1], *m[3:]))]


def _shape(comp: CompT) -> tuple[Any, ...]:
    """What must be equal in a run: type, parent, property and link names, value kinds, MMIO regions and
    priorities, which maps are windows."""
    kinds = tuple((k, type(v).__name__) for k, v in comp.props.items())
    return comp.type, comp.parent, kinds, tuple(comp.links), tuple((m[0], m[2], len(m)) for m in comp.mmio)


#: How a value that stays the same in every copy is written: as it is.
SAME = ""


#: Whether the value of copy ``m`` follows a column's pattern.
Fits = Callable[[int, Any], bool]


def _pattern(first: Any, second: Any, hex_: bool = False) -> tuple[str, Fits] | None:
    """The pattern the first two values of a column set, as board text (SAME: they are equal) and a test
    of the later copies' values; None when the two follow none.

    Integers step by a constant; strings end in a number that steps
    (``virt.flash${i}``); booleans may differ in the first copy only
    (``${i != 0}``: a CPU's start-powered-off); anything else stays the same.
    """
    if second == first:
        return SAME, lambda _m, v: bool(v == first)
    if isinstance(first, bool):
        return ("${i != 0}" if second else "${i == 0}"), lambda _m, v: bool(v == second)
    if isinstance(first, int):
        step = second - first
        return _expr(first, step, hex_), lambda m, v: isinstance(v, int) and v == first + step * m
    if not isinstance(first, str) or not isinstance(second, str):
        return None
    one, two = _NUMBERED.match(first), _NUMBERED.match(second)
    if one is None or two is None or two["stem"] != one["stem"]:
        return None
    stem, start = one["stem"], int(one["num"])
    step = int(two["num"]) - start

    def fits(m: int, v: Any) -> bool:
        match = _NUMBERED.match(v) if isinstance(v, str) else None
        return match is not None and match["stem"] == stem and int(match["num"]) == start + step * m
    return f"{stem}{_expr(start, step)}", fits


def fold_components(comps: list[tuple[str, CompT | None]]) -> list[tuple[str, int | None, list[str] | None]]:
    """Runs of components that differ only by numbers stepping with their ids, as ``count:`` entries.

    A component given as None is never part of a run. Each item is (id,
    count, texts): a single component is (id, None, None); a run is
    (``hart${i}``, n, the board text of each of ``_values`` of its first
    component: SAME where it stays the same).
    """
    out: list[tuple[str, int | None, list[str] | None]] = []
    k = 0
    while k < len(comps):
        n, key, texts = _component_run(comps, k)
        if texts is None:
            out.append((comps[k][0], None, None))
            k += 1
            continue
        out.append((key, n, texts))
        k += n
    return out


def _component_run(comps: list[tuple[str, CompT | None]], k: int) -> tuple[int, str, list[str] | None]:
    """The longest run from ``k`` (ids stepping, same shape, every value following a pattern); texts None: none.

    Each copy is compared once with the patterns of the first two: the run costs its length (times the
    values of one component), so folding a file is linear in its components.
    """
    if k + 1 >= len(comps):
        return 1, "", None
    (cid0, first), (cid1, second) = comps[k], comps[k + 1]
    ids = _NUMBERED.match(cid0), _NUMBERED.match(cid1)
    if ids[0] is None or ids[1] is None or first is None or second is None or ids[0]["stem"] != ids[1]["stem"] \
            or _shape(second) != _shape(first):
        return 1, "", None
    stem, start = ids[0]["stem"], int(ids[0]["num"])
    step = int(ids[1]["num"]) - start
    if step == 0:
        return 1, "", None
    values = _values(first)
    patterns = [_pattern(a, b, hex_=m >= len(first.props) + len(first.links))  # MMIO numbers in hex
                for m, (a, b) in enumerate(zip(values, _values(second), strict=True))]
    if any(p is None for p in patterns):
        return 1, "", None
    tests = [p[1] for p in patterns if p is not None]
    n = 2
    while k + n < len(comps):
        cid, comp = comps[k + n]
        match = _NUMBERED.match(cid)
        if comp is None or match is None or match["stem"] != stem or int(match["num"]) != start + step * n or \
                _shape(comp) != _shape(first) or \
                not all(fits(n, v) for fits, v in zip(tests, _values(comp), strict=True)):
            break
        n += 1
    return n, f"{stem}{_expr(start, step)}", [p[0] if p else SAME for p in patterns]
