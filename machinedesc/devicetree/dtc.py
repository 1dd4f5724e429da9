"""The dtc project's tools (Debian package device-tree-compiler): ``dtc``, ``fdtput``, ``fdtget``.

machinedesc writes device-tree *source* (tree.DeviceTree.to_dts); the blob is
dtc's: ``dtb_of`` runs ``dtc -I dts -O dtb`` with its output format pinned
(FDT version 17, boot CPU 0, no memory reservations, ``-p N`` bytes of
padding), so the same source and the same dtc give the same bytes.
``compile_dts`` runs it as the judge of ``machinedesc dtb --check`` (dtc's
default checks, its messages returned); boot/fdt.py edits blobs with
``fdtput``. Every tool missing from PATH is an InstallError (exit 1) that
names the package.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass

from ..errors import InstallError, UsageError, printable_lines

PACKAGE = "device-tree-compiler"
INSTALL_HINT = f"install dtc: apt-get install {PACKAGE} (scripts/install.sh does)"
#: dtc's output pinned, whatever its defaults: DTB version 17, boot CPU 0, no reserve-map entries.
DTB_FLAGS = ("-I", "dts", "-O", "dtb", "-V", "17", "-b", "0", "-R", "0")
#: The plan header's text when dtc is not there to make the blob (docs/plan.md).
NOT_INSTALLED = f"not computed: dtc ({PACKAGE}) is not installed"


class DtcError(UsageError):
    """dtc refused a device tree (exit 2); ``messages`` is what it wrote on stderr."""

    def __init__(self, message: str, messages: str) -> None:
        super().__init__(message)
        self.messages = messages


@dataclass(frozen=True)
class DtcResult:
    """What dtc made of a DTS: the blob (empty when it failed), its messages, its exit status."""

    dtb: bytes
    messages: str
    returncode: int


def tool_path(name: str = "dtc") -> str:
    """``name`` (dtc, fdtput, fdtget) on PATH; raises InstallError (exit 1) saying what to install."""
    path = shutil.which(name)
    if path is None:
        what = "the device-tree compiler" if name == "dtc" else f"from {PACKAGE}"
        raise InstallError(f"machinedesc: {name} ({what}) is not installed; {INSTALL_HINT}")
    return path


def dtc_path() -> str:
    """The dtc on PATH; raises InstallError (exit 1) saying what to install when there is none."""
    return tool_path("dtc")


def dtc_identity() -> tuple[str, int, int] | None:
    """The dtc on PATH as (path, size, mtime_ns), None without one: the plan cache's key includes it,
    since a plan's DTB hash is of dtc's bytes (another dtc, or none, plans again)."""
    path = shutil.which("dtc")
    if path is None:
        return None
    info = os.stat(path)
    return path, info.st_size, info.st_mtime_ns


def compile_dts(dts: str, *, in_format: str = "dts", out_format: str = "dtb", data: bytes | None = None,
                timeout: float = 60.0) -> DtcResult:
    """Run ``dtc -I in_format -O out_format`` on ``dts`` (or ``data``); stderr is dtc's warnings and errors."""
    proc = subprocess.run([dtc_path(), "-I", in_format, "-O", out_format, "-"],
                          input=data if data is not None else dts.encode(), capture_output=True,
                          timeout=timeout, check=False)
    return DtcResult(proc.stdout if proc.returncode == 0 else b"",
                     proc.stderr.decode(errors="replace"), proc.returncode)


def dtb_of(dts: str, padding: int = 0, timeout: float = 60.0) -> bytes:
    """The blob ``dtc DTB_FLAGS -p padding`` makes of ``dts``; warnings are ignored (``--check`` shows them).

    ``padding`` zero bytes end the blob inside its ``totalsize`` (room for
    firmware that edits the tree in place). Raises InstallError without dtc,
    DtcError when dtc refuses the source.
    """
    proc = subprocess.run([dtc_path(), "-q", *DTB_FLAGS, "-p", str(padding), "-"], input=dts.encode(),
                          capture_output=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        messages = proc.stderr.decode(errors="replace").strip()
        raise DtcError(printable_lines(f"machinedesc: dtc refused the device tree:\n{messages}"), messages)
    return proc.stdout


def dtb_sha256(dts: str) -> str:
    """sha256 (hex) of ``dtb_of(dts)`` for the plan header, else ``not computed: WHY`` (never raises for dtc)."""
    try:
        return hashlib.sha256(dtb_of(dts)).hexdigest()
    except InstallError:
        return NOT_INSTALLED
    except DtcError as err:
        first = err.messages.splitlines()[0] if err.messages else "no message"
        return f"not computed: dtc refused the tree ({first}; `machinedesc dtb --check` shows all)"
    except (OSError, subprocess.SubprocessError) as err:
        return f"not computed: dtc could not run ({err})"
