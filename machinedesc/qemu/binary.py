"""Which QEMU binary to run: --qemu, the environment, the patched build, then PATH."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..errors import MachinedescError, QemuNotFoundError

#: Printed wherever the patched QEMU is missing.
HOW_TO_GET_PATCHED = (
    "build the patched QEMU with `machinedesc qemu build` (apply finds it "
    "automatically), or point --qemu / MACHINEDESC_QEMU at a patched binary"
)


def find_binary(system: str, explicit: str | None = None) -> Path:
    """Find ``qemu-system-SYSTEM``: explicit path, env, patched build, then PATH.

    The environment variables are ``MACHINEDESC_QEMU_<SYSTEM>`` (upper case,
    e.g. ``MACHINEDESC_QEMU_RISCV64``) and then ``MACHINEDESC_QEMU``.
    Raises QemuNotFoundError (exit 3) when nothing is found.
    """
    name = f"qemu-system-{system}"
    candidates: list[tuple[str, str]] = []
    if explicit:
        candidates.append(("--qemu", explicit))
    for var in (f"MACHINEDESC_QEMU_{system.upper()}", "MACHINEDESC_QEMU"):
        if os.environ.get(var):
            candidates.append((var, os.environ[var]))
    for origin, value in candidates:
        path = Path(value) if "/" in value else _which(value)
        if path is None or not path.is_file() or not os.access(path, os.X_OK):
            raise QemuNotFoundError(f"{origin}: {value}: no such executable")
        return path.resolve()
    patched = _patched_binary(system)
    if patched is not None:
        return patched
    found = _which(name)
    if found is None:
        raise QemuNotFoundError(f"{name} not found (looked at --qemu, MACHINEDESC_QEMU_{system.upper()}, "
                                f"MACHINEDESC_QEMU, the patched build and PATH); {HOW_TO_GET_PATCHED}")
    return found


def _patched_binary(system: str) -> Path | None:
    """The patched build's binary, or None when it is not built or cannot be located."""
    from . import build as qemu_build

    try:
        return qemu_build.patched_binary(system)
    except MachinedescError:
        return None


def _which(name: str) -> Path | None:
    found = shutil.which(name)
    return Path(found) if found else None
