"""A device tree in memory: nodes, properties, phandle references; DTS and DTB writers.

Both writers are deterministic: the same tree gives the same bytes. The DTB
is flattened here, in the layout ``dtc -I dts -O dtb`` writes (FDT version
17, an empty memory reservation map, the string table built the way dtc
builds it), so that it needs no tool and its hash does not depend on the
installed dtc; tests/test_devicetree.py checks it byte for byte against dtc.
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from dataclasses import dataclass, field

#: The DT specification's node name characters (section 2.2.1); 31 at most.
NODE_NAME = re.compile(r"^[A-Za-z0-9,._+-]{1,31}$")
PROP_NAME = re.compile(r"^[A-Za-z0-9,._+?#-]{1,31}$")
LABEL = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
FDT_MAGIC = 0xD00DFEED
FDT_BEGIN_NODE, FDT_END_NODE, FDT_PROP, FDT_END = 1, 2, 3, 9


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

    # ------------------------------------------------------------------ DTB

    def to_dtb(self, padding: int = 0) -> bytes:
        """The flattened tree (FDT v17), as ``dtc -I dts -O dtb [-p padding]`` makes it from ``to_dts()``.

        ``padding`` zero bytes end the blob and count in its ``totalsize``: room
        for firmware that edits the tree in place (OpenSBI, U-Boot add nodes
        and properties; QEMU's own -dtb adds 10,000 bytes).
        """
        phandles = self.phandles()
        strtab = bytearray()
        body = bytearray()

        def name_offset(name: str) -> int:
            raw = name.encode() + b"\0"
            # dtc reuses any match, a suffix of an earlier name included.
            at = strtab.find(raw)
            if at < 0:
                at = len(strtab)
                strtab.extend(raw)
            return at

        def emit(node: Node) -> None:
            body.extend(struct.pack(">I", FDT_BEGIN_NODE))
            body.extend(_pad(node.full_name.encode() + b"\0"))
            for name, value in _props_with_phandle(node, phandles):
                data = _blob_value(value, phandles)
                body.extend(struct.pack(">III", FDT_PROP, len(data), name_offset(name)))
                body.extend(_pad(data))
            for child in node.children:
                emit(child)
            body.extend(struct.pack(">I", FDT_END_NODE))

        emit(self.root)
        body.extend(struct.pack(">I", FDT_END))
        rsv_off = 40
        rsvmap = bytes(16)
        struct_off = rsv_off + len(rsvmap)
        strings_off = struct_off + len(body)
        total = strings_off + len(strtab) + padding
        header = struct.pack(">10I", FDT_MAGIC, total, struct_off, strings_off, rsv_off, 17, 16, 0,
                             len(strtab), len(body))
        return header + rsvmap + bytes(body) + bytes(strtab) + bytes(padding)


def _props_with_phandle(node: Node, phandles: dict[str, int]) -> list[tuple[str, Value]]:
    props = list(node.props.items())
    if node.label in phandles:
        props.append(("phandle", cells(phandles[node.label])))
    return props


def _pad(data: bytes) -> bytes:
    return data + bytes(-len(data) % 4)


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


def _blob_value(value: Value, phandles: dict[str, int]) -> bytes:
    if value is None:
        return b""
    if isinstance(value, Strings):
        return b"".join(s.encode() + b"\0" for s in value.items)
    if isinstance(value, Bytes):
        return value.data
    return b"".join(struct.pack(">I", phandles[c.label] if isinstance(c, Ref) else c) for c in value.items)
