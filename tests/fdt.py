"""A reader of flattened device trees for tests: blob -> {path: {property: bytes}}, independent of machinedesc."""

from __future__ import annotations

import struct


def parse(blob: bytes) -> dict[str, dict[str, bytes]]:
    """Every node of an FDT by path, with its properties' raw values (spec v17, no reserve-map entries)."""
    magic, _total, off_struct, off_strings = struct.unpack_from(">4I", blob, 0)
    assert magic == 0xD00DFEED
    nodes: dict[str, dict[str, bytes]] = {}
    stack: list[str] = []
    pos = off_struct
    while True:
        (token,) = struct.unpack_from(">I", blob, pos)
        pos += 4
        if token == 1:  # FDT_BEGIN_NODE
            end = blob.index(b"\0", pos)
            name = blob[pos:end].decode()
            pos = (end + 4) & ~3
            stack.append(name)
            nodes["/" + "/".join(stack[1:])] = {}
        elif token == 2:  # FDT_END_NODE
            stack.pop()
        elif token == 3:  # FDT_PROP
            length, nameoff = struct.unpack_from(">II", blob, pos)
            pos += 8
            name_end = blob.index(b"\0", off_strings + nameoff)
            name = blob[off_strings + nameoff:name_end].decode()
            nodes["/" + "/".join(stack[1:])][name] = blob[pos:pos + length]
            pos = (pos + length + 3) & ~3
        elif token == 4:  # FDT_NOP
            continue
        else:
            assert token == 9, token  # FDT_END
            return nodes


def cells(value: bytes) -> list[int]:
    return list(struct.unpack(f">{len(value) // 4}I", value))


def strings(value: bytes) -> list[str]:
    return value.rstrip(b"\0").decode().split("\0")
