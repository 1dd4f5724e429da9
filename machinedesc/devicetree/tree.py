"""A device tree in memory: nodes, properties, phandle references; the DTS writer (dtc makes the DTB).

The DTS writer is deterministic: the same tree gives the same text. The DTB
is dtc's (``dtc.dtb_of``, Debian's device-tree-compiler): the same text and
the same dtc give the same bytes; tests/test_devicetree.py checks that dtc
compiles every catalog board's source without a warning.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .dtc import dtb_of

#: The DT specification's node name characters (section 2.2.1); 31 at most.
NODE_NAME = re.compile(r"^[A-Za-z0-9,._+-]{1,31}$")
PROP_NAME = re.compile(r"^[A-Za-z0-9,._+?#-]{1,31}$")
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class Ref:
    """A phandle cell pointing at the node with this label (``<&label>`` in DTS)."""

    label: str


Cell = int | Ref


@dataclass(frozen=True)
class Cells:
    """``<a b c>``: 32-bit cells (integers 0 to 2**32-1, or phandle references)."""

    items: tuple[Cell, ...]


@dataclass(frozen=True)
class Strings:
    """``"a", "b"``: a string list (NUL-separated in the blob)."""

    items: tuple[str, ...]


@dataclass(frozen=True)
class Bytes:
    """``[00 01]``: raw bytes."""

    data: bytes


#: A property value; None is an empty property (``interrupt-controller;``).
Value = Cells | Strings | Bytes | None


def cells(*items: Cell) -> Cells:
    return Cells(tuple(items))


def strings(*items: str) -> Strings:
    return Strings(tuple(items))


def cell_value(value: Any) -> int | None:
    """``value`` if it fits one 32-bit cell (an integer, not a boolean), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 0xFFFFFFFF:
        return value
    return None


def split64(value: int, count: int) -> tuple[int, ...]:
    """``value`` as ``count`` 32-bit cells, most significant first (``count`` 1 or 2)."""
    if count == 2:
        return (value >> 32) & 0xFFFFFFFF, value & 0xFFFFFFFF
    return tuple((value >> (32 * (count - 1 - k))) & 0xFFFFFFFF for k in range(count))


@dataclass
class Node:
    """One node: ``name@unit`` with a label for references, properties in order, children."""

    name: str
    unit: str | None = None
    label: str | None = None
    props: dict[str, Value] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    @property
    def full_name(self) -> str:
        return f"{self.name}@{self.unit}" if self.unit is not None else self.name

    def child(self, full_name: str) -> Node | None:
        return next((c for c in self.children if c.full_name == full_name), None)

    def add(self, node: Node) -> Node:
        self.children.append(node)
        return node

    def walk(self, path: str = "/") -> Iterator[tuple[str, Node]]:
        """(path, node) for this node (at ``path``) and every descendant, depth first, in order."""
        todo: list[tuple[str, Node]] = [(path, self)]
        while todo:
            here, node = todo.pop()
            yield here, node
            prefix = here.rstrip("/") + "/"
            todo.extend((prefix + c.full_name, c) for c in reversed(node.children))


@dataclass
class DeviceTree:
    """A whole tree; phandles are numbered 1, 2, ... in depth-first order of referenced nodes."""

    root: Node
    #: What was left out and why (types without a binding, lines that reach no
    #: interrupt controller, ...): ``machinedesc dtb -v`` prints them.
    notes: list[str] = field(default_factory=list)

    def chosen(self) -> Node:
        """The /chosen node (created when missing), for bootargs and initrd properties."""
        node = self.root.child("chosen")
        return node if node is not None else self.root.add(Node("chosen"))

    def labels(self) -> dict[str, tuple[str, Node]]:
        return {n.label: (p, n) for p, n in self.root.walk() if n.label}

    def path_of(self, label: str) -> str:
        return self.labels()[label][0]

    def phandles(self) -> dict[str, int]:
        """label -> phandle number, for the labels some property references."""
        used = {c.label for _, n in self.root.walk() for v in n.props.values()
                if isinstance(v, Cells) for c in v.items if isinstance(c, Ref)}
        out: dict[str, int] = {}
        for _, node in self.root.walk():
            if node.label in used:
                out[node.label] = len(out) + 1
        missing = used - set(out)
        if missing:
            raise ValueError(f"references to missing labels: {', '.join(sorted(missing))}")
        return out

    # ------------------------------------------------------------------ DTS

    def to_dts(self) -> str:
        """The tree as DTS source (``/dts-v1/;``), tabs, hex cells, labels and ``&label`` references."""
        phandles = self.phandles()
        lines = ["/dts-v1/;", ""]
        self._dts_node(self.root, 0, phandles, lines)
        return "\n".join(lines) + "\n"

    def _dts_node(self, node: Node, depth: int, phandles: dict[str, int], lines: list[str]) -> None:
        tab = "\t" * depth
        label = f"{node.label}: " if node.label else ""
        lines.append(f"{tab}{label}{node.full_name or '/'} {{")
        for name, value in _props_with_phandle(node, phandles):
            lines.append(f"{tab}\t{name}{_dts_value(value)};")
        for child in node.children:
            lines.append("")
            self._dts_node(child, depth + 1, phandles, lines)
        lines.append(f"{tab}}};")

    # ------------------------------------------------------------------ DTB (dtc)

    def to_dtb(self, padding: int = 0) -> bytes:
        """The flattened tree: ``to_dts()`` compiled by dtc (``dtc.dtb_of``: FDT v17, ``-p padding``).

        ``padding`` zero bytes end the blob and count in its ``totalsize``: room
        for firmware that edits the tree in place (OpenSBI, U-Boot add nodes
        and properties; QEMU's own -dtb adds 10,000 bytes). Raises
        InstallError without dtc, dtc.DtcError when dtc refuses the source.
        """
        return dtb_of(self.to_dts(), padding)


def _props_with_phandle(node: Node, phandles: dict[str, int]) -> list[tuple[str, Value]]:
    props = list(node.props.items())
    if node.label in phandles:
        props.append(("phandle", cells(phandles[node.label])))
    return props


def _dts_string(text: str) -> str:
    out = []
    for ch in text:
        if ch in '"\\':
            out.append("\\" + ch)
        elif " " <= ch <= "~":
            out.append(ch)
        else:
            out.append("".join(f"\\x{b:02x}" for b in ch.encode()))
    return '"' + "".join(out) + '"'


def _dts_value(value: Value) -> str:
    if value is None:
        return ""
    if isinstance(value, Strings):
        return " = " + ", ".join(_dts_string(s) for s in value.items)
    if isinstance(value, Bytes):
        return " = [" + " ".join(f"{b:02x}" for b in value.data) + "]"
    return " = <" + " ".join(f"&{c.label}" if isinstance(c, Ref) else f"{c:#x}" for c in value.items) + ">"
