"""A flattened device tree read and written back, to set ``/chosen`` as QEMU does before boot.

QEMU writes ``bootargs`` (``-append``) and ``linux,initrd-start`` /
``linux,initrd-end`` (``-initrd``) into ``/chosen`` of the DTB it loads
(``hw/riscv/boot.c`` ``riscv_load_kernel``/``riscv_load_initrd``,
``hw/arm/boot.c`` ``arm_load_dtb``); machinedesc does the same to a generated
or given DTB. Format: devicetree-specification v0.4, chapter 5 (version 17
written; versions 16 and 17 read).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

FDT_MAGIC = 0xD00DFEED
_BEGIN_NODE, _END_NODE, _PROP, _NOP, _END = 1, 2, 3, 4, 9
_HEADER = struct.Struct(">10I")
#: A DTB larger than this is refused (QEMU's virt machines use 1 MiB).
MAX_DTB = 2 << 20


class FdtError(Exception):
    """Bytes that are not a flattened device tree; the message says what is wrong."""


@dataclass
class Node:
    """One device-tree node: its name, its properties in order (name -> raw value), its children in order."""

    name: str
    props: dict[str, bytes] = field(default_factory=dict)
    children: list[Node] = field(default_factory=list)

    def child(self, name: str) -> Node:
        """The child called ``name``, added at the end if missing."""
        for c in self.children:
            if c.name == name:
                return c
        node = Node(name)
        self.children.append(node)
        return node


@dataclass
class Fdt:
    """A whole DTB: the root node, the memory reservations, the boot CPU."""

    root: Node
    reservations: list[tuple[int, int]] = field(default_factory=list)
    boot_cpuid: int = 0


def parse(data: bytes) -> Fdt:
    """The tree of DTB ``data``; raises FdtError."""
    if len(data) < _HEADER.size:
        raise FdtError("too short for a device-tree header")
    (magic, total, off_struct, off_strings, off_rsv, version, _last, boot_cpuid, size_strings,
     size_struct) = _HEADER.unpack_from(data)
    if magic != FDT_MAGIC:
        raise FdtError(f"no device-tree magic (0x{FDT_MAGIC:08x}) at the start")
    if version < 16 or total > len(data) or max(off_struct + size_struct, off_strings + size_strings) > total:
        raise FdtError(f"unsupported version {version} or sizes beyond the file")
    strings = data[off_strings:off_strings + size_strings]
    reservations = []
    pos = off_rsv
    while True:
        addr, size = struct.unpack_from(">QQ", data, pos)
        pos += 16
        if addr == 0 and size == 0:
            break
        reservations.append((addr, size))
    root = _parse_struct(data, off_struct, off_struct + size_struct, strings)
    return Fdt(root, reservations, boot_cpuid)


def _parse_struct(data: bytes, pos: int, end: int, strings: bytes) -> Node:
    stack: list[Node] = []
    root: Node | None = None
    try:
        while pos < end:
            token = struct.unpack_from(">I", data, pos)[0]
            pos += 4
            if token == _BEGIN_NODE:
                nul = data.index(b"\0", pos)
                node = Node(data[pos:nul].decode())
                pos = _align(nul + 1)
                if stack:
                    stack[-1].children.append(node)
                elif root is None:
                    root = node
                stack.append(node)
            elif token == _END_NODE:
                stack.pop()
            elif token == _PROP:
                length, nameoff = struct.unpack_from(">II", data, pos)
                pos += 8
                name = strings[nameoff:strings.index(b"\0", nameoff)].decode()
                stack[-1].props[name] = data[pos:pos + length]
                pos = _align(pos + length)
            elif token == _END:
                break
            elif token != _NOP:
                raise FdtError(f"unknown structure token {token} at offset {pos - 4}")
    except (IndexError, ValueError, struct.error, UnicodeDecodeError) as err:
        raise FdtError(f"malformed structure block: {err}") from None
    if root is None or stack:
        raise FdtError("structure block without a complete root node")
    return root


def _align(n: int) -> int:
    return (n + 3) & ~3


def serialize(fdt: Fdt) -> bytes:
    """``fdt`` as DTB bytes (version 17), deterministic: properties and nodes keep their order."""
    strings = bytearray()
    offsets: dict[str, int] = {}
    body = bytearray()

    def name_offset(name: str) -> int:
        if name not in offsets:
            offsets[name] = len(strings)
            strings.extend(name.encode() + b"\0")
        return offsets[name]

    def emit(node: Node) -> None:
        body.extend(struct.pack(">I", _BEGIN_NODE))
        raw = node.name.encode() + b"\0"
        body.extend(raw + b"\0" * (_align(len(raw)) - len(raw)))
        for pname, value in node.props.items():
            body.extend(struct.pack(">III", _PROP, len(value), name_offset(pname)))
            body.extend(value + b"\0" * (_align(len(value)) - len(value)))
        for c in node.children:
            emit(c)
        body.extend(struct.pack(">I", _END_NODE))

    emit(fdt.root)
    body.extend(struct.pack(">I", _END))
    rsv = b"".join(struct.pack(">QQ", a, s) for a, s in fdt.reservations) + b"\0" * 16
    off_rsv = _align(_HEADER.size)
    off_struct = off_rsv + len(rsv)
    off_strings = off_struct + len(body)
    total = off_strings + len(strings)
    header = _HEADER.pack(FDT_MAGIC, total, off_struct, off_strings, off_rsv, 17, 16, fdt.boot_cpuid,
                          len(strings), len(body))
    return header + b"\0" * (off_rsv - len(header)) + rsv + bytes(body) + bytes(strings)


def set_chosen(data: bytes, bootargs: str | None = None, initrd: tuple[int, int] | None = None) -> bytes:
    """DTB ``data`` with ``/chosen`` ``bootargs`` and ``linux,initrd-start``/``-end`` set (as 64-bit cells)."""
    fdt = parse(data)  # checked even when nothing changes
    if bootargs is None and initrd is None:
        return data
    chosen = fdt.root.child("chosen")
    if bootargs is not None:
        chosen.props["bootargs"] = bootargs.encode() + b"\0"
    if initrd is not None:
        chosen.props["linux,initrd-start"] = struct.pack(">Q", initrd[0])
        chosen.props["linux,initrd-end"] = struct.pack(">Q", initrd[1])
    return serialize(fdt)
