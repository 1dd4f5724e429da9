"""Locating (and building) the patched QEMU: a thin wrapper over qemu/build.sh."""

from __future__ import annotations

import subprocess
from pathlib import Path

from .errors import MachinedescError

#: The repository checkout this package runs from (editable install or source tree).
REPO_ROOT = Path(__file__).resolve().parent.parent
BUILD_SCRIPT = REPO_ROOT / "qemu" / "build.sh"


class QemuBuildError(MachinedescError):
    """The build script is missing or failed."""

    exit_code = 1


def _require_script() -> Path:
    if not BUILD_SCRIPT.is_file():
        raise QemuBuildError(
            f"{BUILD_SCRIPT} not found: `machinedesc qemu` needs a source checkout "
            "of machinedesc (pip install -e .)"
        )
    return BUILD_SCRIPT


def prefix() -> Path:
    """The install prefix of the patched build for the current series (built or not)."""
    out = subprocess.run(
        ["bash", str(_require_script()), "--print-prefix"],
        check=False, capture_output=True, text=True,
    )
    if out.returncode != 0 or not out.stdout.strip():
        raise QemuBuildError(f"{BUILD_SCRIPT} --print-prefix failed: {out.stderr.strip()}")
    return Path(out.stdout.strip().splitlines()[-1])


def patched_binary(system: str) -> Path | None:
    """The patched ``qemu-system-SYSTEM`` if it has been built, else None."""
    path = prefix() / "bin" / f"qemu-system-{system}"
    return path if path.is_file() else None


def build(extra_args: list[str]) -> int:
    """Run the build script with ``extra_args``; its output goes to the terminal."""
    return subprocess.run(["bash", str(_require_script()), *extra_args], check=False).returncode
