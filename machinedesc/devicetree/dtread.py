"""A device tree read for ``import-dtb``: DTS through dtlib, DTB through dtc, and the few readings it needs.

The parser is the Zephyr project's ``dtlib`` (PyPI ``devicetree``), the one
the style guide names as a model; a blob (FDT magic ``d00dfeed``) is first
turned into source by dtc (``dtc -I dtb -O dts``, Debian's
device-tree-compiler, already what makes machinedesc's own blobs), so one
parser reads both and dtc, the reference reader of blobs, judges them.
dtlib runs as ``dtparse.DTParser`` (includes within a budget, linear-time
values); the text is first checked for nesting deeper than MAX_DEPTH, a
blob's header for its size and version.

``Tree`` wraps the parsed tree with what the importer asks of it: cells of a
property, ``reg`` translated to CPU addresses through the buses' ``ranges``,
interrupt specifiers (``interrupts`` with the inherited ``interrupt-parent``,
or ``interrupts-extended``) with their controllers, and errors at
``file:line:col`` (for a DTS; a DTB has no lines, its errors name the node).
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from pathlib import Path
from typing import Any, NoReturn

from devicetree import dtlib

from ..errors import DeviceTreeFileError
from ..source import SourceLocation
from ..storage import FileProblem, read_regular
from .dtc import dtc_path
from .dtparse import SIZE_LIMIT, DTParser

#: The FDT header's magic number (big-endian), devicetree-specification 5.2.
FDT_MAGIC = b"\xd0\x0d\xfe\xed"
#: The deepest node read: libfdt's FDT_MAX_DEPTH (dtlib's parser recurses once per level).
MAX_DEPTH = 64
#: The most cells of an address or size (#address-cells, #size-cells) read.
MAX_ADDRESS_CELLS = 4
_PARSE = re.compile(r"^(?P<file>.*?):(?P<line>\d+) \(column (?P<col>\d+)\): (?P<msg>.*)$", re.S)
_LABEL = re.compile(r"undefined node label '(?P<label>[^']+)'")
#: dtlib's messages about one node (its path first, or after "appears on ... and on", or a property "on" it).
_NODE_MESSAGE = re.compile(r"^(?:(?P<path>/[^\s:]*): |Label '[^']*' appears on \S+ and on (?P<second>/\S*)$|"
                           r"property '(?P<prop>[^']+)' on (?P<on>/\S*) )")

Node = Any  # dtlib.Node: the package has no type information


class Tree:
    """A parsed tree: ``root``, ``phandles`` (number -> node), and where its text came from."""

    def __init__(self, path: Path, dt: Any, text: str | None) -> None:
        self.path = path
        self.dt = dt
        self.root: Node = dt.root
        self.text = text  # the DTS source, None for a DTB
        self.phandles: dict[int, Node] = dict(dt.phandle2node)

    # ------------------------------------------------------------ errors

    def locate(self, node: Node, prop: str | None = None) -> SourceLocation:
        """Where ``node`` (its property ``prop``) is in the DTS; line 0 when not found or a DTB."""
        if self.text is None:
            return SourceLocation(str(self.path), 0, 0)
        found = locate(self.text, node.path, prop)
        return SourceLocation(str(self.path), *(found or (0, 0)))

    def error(self, node: Node, prop: str | None, message: str, hint: str | None = None) -> NoReturn:
        where = node.path + (f": {prop}" if prop else "")
        raise DeviceTreeFileError(self.locate(node, prop), f"{where}: {message}", hint)

    # ------------------------------------------------------------ values

    def nums(self, node: Node, name: str) -> list[int]:
        """The 32-bit cells of property ``name`` ([] when absent)."""
        prop = node.props.get(name)
        if prop is None:
            return []
        if len(prop.value) % 4:
            self.error(node, name, f"{len(prop.value)} bytes: not a list of 32-bit cells")
        return [int.from_bytes(prop.value[k:k + 4], "big") for k in range(0, len(prop.value), 4)]

    def num(self, node: Node, name: str) -> int | None:
        cells = self.nums(node, name)
        return join(cells) if cells else None

    def strings(self, node: Node, name: str) -> list[str]:
        prop = node.props.get(name)
        if prop is None:
            return []
        return [s for s in prop.value.decode("utf-8", "replace").split("\0")[:-1]]

    def string(self, node: Node, name: str) -> str | None:
        found = self.strings(node, name)
        return found[0] if found else None

    def cells_of(self, node: Node, name: str, default: int) -> int:
        """``#address-cells`` / ``#size-cells`` / ``#interrupt-cells`` of ``node``, else ``default``."""
        value = self.num(node, name)
        return default if value is None else value

    def address_cells(self, node: Node, name: str, default: int) -> int:
        """``#address-cells`` / ``#size-cells`` of ``node`` (else ``default``): at most MAX_ADDRESS_CELLS.

        More cannot be a CPU address, and joining them costs their square (an
        address of 200,000 cells took 24 s).
        """
        value = self.cells_of(node, name, default)
        if value > MAX_ADDRESS_CELLS:
            self.error(node, name, f"{value} cells: an address or size is at most {MAX_ADDRESS_CELLS} cells "
                       "(PCI's 3 are the most a tree uses)")
        return value

    def phandle(self, node: Node, prop: str, number: int) -> Node:
        target = self.phandles.get(number)
        if target is None:
            self.error(node, prop, f"phandle {number:#x} names no node of the tree",
                       "a phandle is another node's `phandle` property (or &label in a DTS)")
        return target

    # ------------------------------------------------------------ reg and interrupts

    def reg(self, node: Node) -> list[tuple[int, int]]:
        """(CPU address, size) of each ``reg`` entry, translated through the parents' ``ranges``."""
        parent = node.parent
        ac, sc = self.address_cells(parent, "#address-cells", 2), self.address_cells(parent, "#size-cells", 1)
        cells = self.nums(node, "reg")
        step = ac + sc
        if not step or len(cells) % step:
            self.error(node, "reg", f"{len(cells)} cells are not (address, size) pairs of {ac} + {sc} cells")
        out = []
        for k in range(0, len(cells), step):
            addr, size = join(cells[k:k + ac]), join(cells[k + ac:k + step])
            out.append((self.translate(parent, addr), size))
        return out

    def bus_without_ranges(self, node: Node) -> Node | None:
        """The nearest ancestor (below the root) with no ``ranges``: its children's reg are not CPU addresses."""
        bus = node.parent
        while bus is not None and bus.parent is not None:
            if "ranges" not in bus.props:
                return bus
            bus = bus.parent
        return None

    def translate(self, bus: Node, addr: int) -> int:
        """``addr`` on ``bus`` as the CPU sees it: each bus's ``ranges`` up to the root (none: identity)."""
        while bus.parent is not None:
            if "ranges" not in bus.props:
                self.error(bus, None, "a bus without `ranges`: its children's addresses are not CPU addresses")
            cells = self.nums(bus, "ranges")
            if cells:
                addr = self._through_ranges(bus, cells, addr)
            bus = bus.parent
        return addr

    def _through_ranges(self, bus: Node, cells: list[int], addr: int) -> int:
        cac = self.address_cells(bus, "#address-cells", 2)
        pac = self.address_cells(bus.parent, "#address-cells", 2)
        sc = self.address_cells(bus, "#size-cells", 1)
        step = cac + pac + sc
        for k in range(0, len(cells) - step + 1, step):
            child, parent = join(cells[k:k + cac]), join(cells[k + cac:k + cac + pac])
            size = join(cells[k + cac + pac:k + step])
            if child <= addr < child + size:
                return parent + addr - child
        self.error(bus, "ranges", f"address {addr:#x} of a child is in none of its ranges")

    def interrupt_parent(self, node: Node) -> Node | None:
        """The ``interrupt-parent`` of ``node`` or its nearest ancestor; None when there is none."""
        at = node
        while at is not None:
            number = self.num(at, "interrupt-parent")
            if number is not None:
                return self.phandle(at, "interrupt-parent", number)
            at = at.parent
        return None

    def interrupts(self, node: Node) -> list[tuple[Node, tuple[int, ...]]]:
        """(controller, specifier) of each interrupt of ``node``: ``interrupts-extended``, else ``interrupts``."""
        out: list[tuple[Node, tuple[int, ...]]] = []
        if "interrupts-extended" in node.props:
            cells = self.nums(node, "interrupts-extended")
            k = 0
            while k < len(cells):
                ctrl = self.phandle(node, "interrupts-extended", cells[k])
                n = self.cells_of(ctrl, "#interrupt-cells", 1)
                if k + 1 + n > len(cells):
                    self.error(node, "interrupts-extended", f"{ctrl.path} takes {n} cells; the list ends first")
                out.append((ctrl, tuple(cells[k + 1:k + 1 + n])))
                k += 1 + n
            return out
        cells = self.nums(node, "interrupts")
        if not cells:
            return out
        ctrl = self.interrupt_parent(node)
        if ctrl is None:
            self.error(node, "interrupts", "no interrupt-parent here or above")
        n = self.cells_of(ctrl, "#interrupt-cells", 1)
        if not n or len(cells) % n:
            self.error(node, "interrupts", f"{len(cells)} cells are not specifiers of {ctrl.path}'s {n} cells")
        return [(ctrl, tuple(cells[k:k + n])) for k in range(0, len(cells), n)]


def join(cells: list[int]) -> int:
    """Big-endian 32-bit cells as one number."""
    value = 0
    for c in cells:
        value = (value << 32) | c
    return value


def read(path: Path) -> Tree:
    """Parse ``path``: a DTB (by its magic number) through dtc, else DTS through dtlib.

    Raises DeviceTreeFileError (exit 2) for a file that is neither, a parse
    error (``file:line:col``) or a reference to a label no node has;
    InstallError (exit 1) for a DTB without dtc.
    """
    try:
        data = read_regular(path, SIZE_LIMIT, FileProblem(f"larger than {SIZE_LIMIT} bytes: not a device tree"))
    except FileProblem as err:
        raise DeviceTreeFileError(SourceLocation(str(path), 0, 0), err.message) from None
    if data[:4] == FDT_MAGIC:
        _check_header(path, data)
        text = _dtb_source(path, data)
        return _parse(path, text, dtb=True)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise DeviceTreeFileError(SourceLocation(str(path), 0, 0), "neither a DTB (no FDT magic d00dfeed) "
                                  "nor DTS text (not UTF-8)", "give a .dtb or .dts file") from None
    return _parse(path, text, dtb=False)


def _check_header(path: Path, data: bytes) -> None:
    """Refuse a blob whose header (devicetree-specification 5.2) says it is longer than the file, or of a
    version dtc does not read (dtc's own messages for them are "Bad address", after allocating what the
    header says, or about some node)."""
    where = SourceLocation(str(path), 0, 0)
    if len(data) < 40:
        raise DeviceTreeFileError(where, f"a DTB header is 40 bytes; the file has {len(data)}: truncated")
    totalsize, version, last_compatible = (int.from_bytes(data[k:k + 4], "big") for k in (4, 20, 24))
    if totalsize > len(data):
        raise DeviceTreeFileError(where, f"the DTB header says {totalsize} bytes; the file has {len(data)}: "
                                  "truncated, or not a DTB")
    if last_compatible > 17 or version < last_compatible:
        raise DeviceTreeFileError(where, f"DTB version {version}, compatible with version {last_compatible}: "
                                  "dtc reads versions up to 17 (and a version is never below its compatible one)",
                                  "recompile the tree with a current dtc")


def _dtb_source(path: Path, data: bytes) -> str:
    proc = subprocess.run([dtc_path(), "-q", "-I", "dtb", "-O", "dts", "-"], input=data, capture_output=True,
                          timeout=60, check=False)
    if proc.returncode != 0:
        words = proc.stderr.decode(errors="replace").strip()
        raise DeviceTreeFileError(SourceLocation(str(path), 0, 0), f"dtc cannot read this blob: {words}")
    return proc.stdout.decode("utf-8", "replace")


def _parse(path: Path, text: str, *, dtb: bool) -> Tree:
    # dtlib reads a file by name (and /include/s relative to it): a DTS is parsed where it is;
    # a DTB's source, dtc's, from a private temporary file.
    _check_depth(path, text, dtb=dtb)
    tmp = None
    try:
        if dtb:
            fd, tmp = tempfile.mkstemp(suffix=".dts", prefix="machinedesc-dtb-")
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
        dt = DTParser(tmp or str(path))
    except dtlib.DTError as err:
        message = str(err).replace(tmp, str(path)) if tmp else str(err)  # never the temporary file's name
        raise _located(path, message, None if dtb else text) from None
    except OSError as err:  # an /include/ that cannot be opened
        raise DeviceTreeFileError(SourceLocation(str(path), 0, 0), f"cannot read: {err}") from None
    finally:
        if tmp is not None:
            os.unlink(tmp)
    return Tree(path, dt, None if dtb else text)


def _check_depth(path: Path, text: str, *, dtb: bool) -> None:
    """Raise DeviceTreeFileError at the first node nested deeper than MAX_DEPTH (the root is depth 1)."""
    depth = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok == "{":
            depth += 1
            if depth > MAX_DEPTH:
                line_col = (0, 0) if dtb else _line_col(text, m.start())  # a DTB has no lines
                where = SourceLocation(str(path), *line_col)
                raise DeviceTreeFileError(where, f"nodes nested more than {MAX_DEPTH} deep: not read",
                                          f"a device tree is at most {MAX_DEPTH} levels deep (libfdt's FDT_MAX_DEPTH)")
        elif tok == "}":
            depth -= 1


def _located(path: Path, message: str, text: str | None) -> DeviceTreeFileError:
    """dtlib's message as ``file:line:col: message`` (its parse errors say ``file:line (column c)``)."""
    parsed = _PARSE.match(message)
    if parsed and text is not None and "expected '/dts-v1/;'" in message:
        return DeviceTreeFileError(SourceLocation(str(path), int(parsed["line"]), int(parsed["col"])),
                                   "not a device tree: neither a DTB (no FDT magic d00dfeed) nor DTS source "
                                   "(no /dts-v1/; at its start)", "give a .dtb or .dts file")
    if parsed and text is not None:
        file = parsed["file"] if parsed["file"] != str(path) else str(path)
        return DeviceTreeFileError(SourceLocation(file, int(parsed["line"]), int(parsed["col"])),
                                   f"parse error: {parsed['msg'].removeprefix('parse error: ')}")
    label = _LABEL.search(message)
    if label and text is not None:
        at = text.find("&" + label["label"])
        if at >= 0:
            line = text.count("\n", 0, at) + 1
            col = at - (text.rfind("\n", 0, at) + 1) + 1
            return DeviceTreeFileError(SourceLocation(str(path), line, col), message,
                                       "a &label names a node with that label (label: name { ... })")
    node = _NODE_MESSAGE.match(message)
    where = (node["path"] or node["second"] or node["on"]) if node else None
    found = locate(text, where, node["prop"] if node else None) if where and text is not None else None
    if found is not None:
        return DeviceTreeFileError(SourceLocation(str(path), *found), message)
    return DeviceTreeFileError(SourceLocation(str(path), 0, 0), message)


_TOKEN = re.compile(r'"(?:[^"\\]|\\.)*"|//[^\n]*|/\*.*?\*/|\{|\}|;|[^\s{};"]+', re.S)


def locate(text: str, path: str, prop: str | None) -> tuple[int, int] | None:
    """(line, column) of node ``path`` (its property ``prop``) in DTS ``text``; None when not found.

    A small scanner over braces and names (strings and comments skipped):
    enough to point at a node or property of an ordinary DTS, not a parser.
    """
    want = [p for p in path.split("/") if p]
    stack: list[str] = []
    words: list[tuple[str, int]] = []  # the words since the last ';', '{' or '}', with their offsets
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok.startswith(("//", "/*")):
            continue
        if tok == "{":
            name = next((w for w, _ in reversed(words) if not w.endswith(":")), "/")
            stack.append("" if name == "/" else name.lstrip("&"))
            if prop is None and [s for s in stack if s] == want:
                return _line_col(text, words[-1][1] if words else m.start())
            words = []
        elif tok == "}":
            stack = stack[:-1]
            words = []
        elif tok == ";":
            words = []
        else:
            if prop is not None and not words and tok.split("=")[0] == prop and [s for s in stack if s] == want:
                return _line_col(text, m.start())
            words.append((tok, m.start()))
    return None


def _line_col(text: str, at: int) -> tuple[int, int]:
    return text.count("\n", 0, at) + 1, at - (text.rfind("\n", 0, at) + 1) + 1
