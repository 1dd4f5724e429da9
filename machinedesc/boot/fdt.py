"""A given DTB checked by dtc and its ``/chosen`` set by fdtput, as QEMU does before boot.

QEMU writes ``bootargs`` (``-append``) and ``linux,initrd-start`` /
``linux,initrd-end`` (``-initrd``, 64-bit cells) into ``/chosen`` of the
DTB it loads (``hw/riscv/boot.c`` ``riscv_load_kernel``/``riscv_load_initrd``,
``hw/arm/boot.c`` ``arm_load_dtb``). machinedesc does the same to a
``--dtb FILE`` with the dtc project's own tools (Debian's
device-tree-compiler): ``dtc -I dtb`` reads the whole blob (a file that is
not one is refused with dtc's words), then ``fdtput`` edits a copy in
``$MACHINEDESC_CACHE/boot``; fdtput grows the blob as the new properties
need. A generated tree gets /chosen in its source instead (boot/dtb.py).
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from ..devicetree.dtc import tool_path

#: A DTB larger than this is refused (QEMU's virt machines use 1 MiB).
MAX_DTB = 2 << 20
TIMEOUT = 60.0


class FdtError(Exception):
    """Bytes that are not a flattened device tree, or an edit fdtput refused; the message has the tool's words."""


def _run(args: list[str], data: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(args, input=data, capture_output=True, timeout=TIMEOUT, check=False)


def _words(proc: subprocess.CompletedProcess[bytes]) -> str:
    text = proc.stderr.decode(errors="replace").strip()
    return " ".join(line.removeprefix("FATAL ERROR: ") for line in text.splitlines()) or \
        f"exit status {proc.returncode}"


def check(data: bytes) -> None:
    """Raise FdtError unless ``dtc -I dtb`` reads ``data`` to its end (its checks forced, only the blob judged)."""
    proc = _run([tool_path("dtc"), "-q", "-f", "-I", "dtb", "-O", "dtb", "-o", os.devnull, "-"], data)
    if proc.returncode != 0:
        raise FdtError(f"dtc says: {_words(proc)}")


def set_chosen(data: bytes, bootargs: str | None = None, initrd: tuple[int, int] | None = None,
               workdir: Path | None = None) -> bytes:
    """DTB ``data`` with ``/chosen`` ``bootargs`` and ``linux,initrd-start``/``-end`` set (as 64-bit cells).

    ``data`` is checked (``check``) even when nothing changes; the edits run
    on a temporary copy in ``workdir`` (default: the system's temporary
    directory), removed afterwards. Raises FdtError, or InstallError without
    the tools.
    """
    check(data)
    if bootargs is None and initrd is None:
        return data
    edits: list[list[str]] = []
    if bootargs is not None:
        edits.append(["-t", "s", "--", "bootargs", bootargs])
    if initrd is not None:
        for name, value in (("linux,initrd-start", initrd[0]), ("linux,initrd-end", initrd[1])):
            edits.append(["-t", "x", "--", name, f"{value >> 32:x}", f"{value & 0xFFFFFFFF:x}"])
    fdtput = tool_path("fdtput")
    handle, name = tempfile.mkstemp(suffix=".dtb", dir=workdir)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        for edit in edits:
            dash = edit.index("--")
            # fdtput [-p: create /chosen if missing] -t TYPE -- FILE NODE PROPERTY VALUE...
            proc = _run([fdtput, "-p", *edit[:dash], "--", name, "/chosen", *edit[dash + 1:]])
            if proc.returncode != 0:
                raise FdtError(f"fdtput could not set /chosen/{edit[dash + 1]}: {_words(proc)}")
        return Path(name).read_bytes()
    finally:
        os.unlink(name)
