"""The device tree a boot loads: generated from the board or read from a file, /chosen set, kept in the cache.

``--dtb auto`` is ``machinedesc dtb``'s tree (machinedesc.devicetree);
``--dtb FILE`` a blob of the user's. Either gets ``/chosen`` ``bootargs``
and the initrd's range (boot/fdt.py), as QEMU does to the tree it loads, and
is written to ``$MACHINEDESC_CACHE/boot/<sha256>.dtb`` for a ``loader`` to read.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..board.model import Board
from ..devicetree.generate import generate
from ..storage import FileProblem, cache_dir, read_regular, write_file
from . import fdt


class DtbError(Exception):
    """A device tree that cannot be loaded; ``message`` says why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def dtb_bytes(mode: str, board: Board, bootargs: str | None, initrd: tuple[int, int] | None) -> tuple[bytes, str]:
    """The blob for ``mode`` (``auto`` or a file name) with /chosen set, and what it came from.

    Raises DtbError (an unreadable file, not a device tree) or the
    generator's BoardError.
    """
    if mode == "auto":
        data, source = generate(board).to_dtb(), "generated from the board"
    else:
        try:
            data = read_regular(Path(mode), fdt.MAX_DTB, FileProblem(f"is larger than {fdt.MAX_DTB >> 20} MiB"))
        except FileProblem as err:
            raise DtbError(f"dtb {mode} {err.message}", err.hint) from None
        source = mode
    try:
        return fdt.set_chosen(data, bootargs, initrd), source
    except fdt.FdtError as err:
        raise DtbError(f"dtb {source} is not a device tree: {err}") from None


def cached_dtb(data: bytes) -> Path:
    """``data`` in the cache as ``boot/<sha256>.dtb`` (written once); raises DtbError without a usable cache."""
    directory = cache_dir("boot", create=True)
    if directory is None:
        raise DtbError("the cache directory for the device tree is not usable",
                       "set MACHINEDESC_CACHE to a directory of your own")
    path = directory / f"{hashlib.sha256(data).hexdigest()[:32]}.dtb"
    if not path.is_file() or path.read_bytes() != data:
        write_file(path, data, mode=0o600)
    return path
