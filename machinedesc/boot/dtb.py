"""The device tree a boot loads: generated from the board or read from a file, /chosen set, kept in the cache.

``--dtb auto`` is ``machinedesc dtb``'s tree (machinedesc.devicetree) with
``/chosen`` ``bootargs`` and the initrd's range written into its source
before dtc compiles it; ``--dtb FILE`` a blob of the user's, checked by dtc
and edited with fdtput (boot/fdt.py), as QEMU does to the tree it loads.
The result is written to ``$MACHINEDESC_CACHE/boot/<sha256>.dtb`` for a
``loader`` to read.
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path

from ..board.model import Board
from ..devicetree.dtc import DtcError
from ..devicetree.generate import generate
from ..devicetree.tree import DeviceTree, Strings, cells, split64
from ..storage import FileProblem, cache_dir, keep_newest, read_regular, write_file
from . import fdt


class DtbError(Exception):
    """A device tree that cannot be loaded; ``message`` says why."""

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


def dtb_bytes(mode: str, board: Board, bootargs: str | None, initrd: tuple[int, int] | None) -> tuple[bytes, str]:
    """The blob for ``mode`` (``auto`` or a file name) with /chosen set, and what it came from.

    Raises DtbError (an unreadable file, not a device tree, a generated tree
    dtc refuses), the generator's BoardError, or InstallError without dtc.
    """
    if mode == "auto":
        tree = generate(board)
        set_chosen(tree, bootargs, initrd)
        try:
            return tree.to_dtb(), "generated from the board"
        except DtcError as err:
            raise DtbError(f"dtb generated from the board: dtc refused it: {err.messages}",
                           "`machinedesc dtb BOARD --check` shows what dtc says") from None
    try:
        data = read_regular(Path(mode), fdt.MAX_DTB, FileProblem(f"is larger than {fdt.MAX_DTB >> 20} MiB"))
    except FileProblem as err:
        raise DtbError(f"dtb {mode} {err.message}", err.hint) from None
    try:
        return fdt.set_chosen(data, bootargs, initrd, _workdir()), mode
    except fdt.FdtError as err:
        raise DtbError(f"dtb {mode} is not a device tree: {err}",
                       "give a flattened device tree (.dtb), e.g. `machinedesc dtb BOARD -o FILE`, "
                       "or --dtb auto") from None


def set_chosen(tree: DeviceTree, bootargs: str | None, initrd: tuple[int, int] | None) -> None:
    """``tree``'s /chosen with ``bootargs`` and ``linux,initrd-start``/``-end`` (64-bit cells), as QEMU sets them."""
    if bootargs is not None:
        tree.chosen().props["bootargs"] = Strings((bootargs,))
    if initrd is not None:
        tree.chosen().props["linux,initrd-start"] = cells(*split64(initrd[0], 2))
        tree.chosen().props["linux,initrd-end"] = cells(*split64(initrd[1], 2))


def _workdir() -> Path:
    """The cache's boot directory, where fdtput edits its copy; raises DtbError without a usable cache."""
    directory = cache_dir("boot", create=True)
    if directory is None:
        raise DtbError("the cache directory for the device tree is not usable",
                       "set MACHINEDESC_CACHE to a directory of your own")
    return directory


#: How many device trees ``boot/`` keeps (the most recently used): each --append, initrd or board
#: change makes a new one, and a cache keyed by content would otherwise grow without limit.
KEEP_DTBS = 32


def cached_dtb(data: bytes) -> Path:
    """``data`` in the cache as ``boot/<sha256>.dtb``; raises DtbError without a usable cache.

    Written once and touched on reuse; the directory keeps the ``KEEP_DTBS``
    most recently used trees (a plan file naming an older one must be planned again).
    """
    directory = _workdir()
    path = directory / f"{hashlib.sha256(data).hexdigest()[:32]}.dtb"
    if not path.is_file() or path.read_bytes() != data:
        write_file(path, data, mode=0o600)
    else:
        with contextlib.suppress(OSError):
            path.touch()
    keep_newest(directory, ".dtb", KEEP_DTBS)
    return path
