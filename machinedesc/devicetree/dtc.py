"""The device-tree compiler, ``dtc`` (Debian package device-tree-compiler), for checking trees.

machinedesc writes DTBs itself (tree.DeviceTree.to_dtb); dtc is the
independent judge: ``compile_dts`` runs ``dtc -I dts -O dtb`` with every
warning dtc has by default and returns the blob and dtc's messages.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass

from ..errors import InstallError

INSTALL_HINT = "install dtc: apt-get install device-tree-compiler (scripts/install.sh does)"


@dataclass(frozen=True)
class DtcResult:
    """What dtc made of a DTS: the blob (empty when it failed), its messages, its exit status."""

    dtb: bytes
    messages: str
    returncode: int


def dtc_path() -> str:
    """The dtc on PATH; raises InstallError (exit 1) saying what to install when there is none."""
    path = shutil.which("dtc")
    if path is None:
        raise InstallError(f"machinedesc: dtc (the device-tree compiler) is not installed; {INSTALL_HINT}")
    return path


def compile_dts(dts: str, *, in_format: str = "dts", out_format: str = "dtb", data: bytes | None = None,
                timeout: float = 60.0) -> DtcResult:
    """Run ``dtc -I in_format -O out_format`` on ``dts`` (or ``data``); stderr is dtc's warnings and errors."""
    proc = subprocess.run([dtc_path(), "-I", in_format, "-O", out_format, "-"],
                          input=data if data is not None else dts.encode(), capture_output=True,
                          timeout=timeout, check=False)
    return DtcResult(proc.stdout if proc.returncode == 0 else b"",
                     proc.stderr.decode(errors="replace"), proc.returncode)
