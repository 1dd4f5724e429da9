"""Locating (and building) the patched QEMU: a thin wrapper over qemu/build.sh."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from ..errors import QemuBuildError
from ..storage import cache_dir, keep_newest, write_file

#: The repository checkout this package runs from (editable install or source tree).
REPO_ROOT = Path(__file__).resolve().parents[2]


def _build_script() -> Path:
    """qemu/build.sh: the checkout's, else the copy installed with the package (``machinedesc.qemu.series``).

    The wheel carries the script and the patch series as package data
    (pyproject.toml maps the checkout's qemu/ to ``machinedesc/qemu/series``),
    byte for byte: build.sh keys its cache by the series and its own
    configuration block, so an installed machinedesc finds a build that a
    checkout made, and the other way round.
    """
    checkout = REPO_ROOT / "qemu" / "build.sh"
    if checkout.is_file():
        return checkout
    return Path(__file__).resolve().parent / "series" / "build.sh"


BUILD_SCRIPT = _build_script()


def _require_script() -> Path:
    if not BUILD_SCRIPT.is_file():
        raise QemuBuildError(
            f"{BUILD_SCRIPT} not found: this installation of machinedesc lacks its QEMU patch series "
            "(machinedesc/qemu/series); reinstall it, or run it from a source checkout"
        )
    return BUILD_SCRIPT


def prefix() -> Path:
    """The install prefix of the patched build for the current series (built or not).

    Asking build.sh hashes the whole patch series in a shell pipeline (~75 ms,
    a large part of apply's start-up); the answer changes only with build.sh,
    a patch or the cache location, so it is remembered keyed by those - one
    file per key, so that two checkouts (or a checkout and an installed
    package) sharing the cache do not evict each other's answer every run.
    """
    key = _prefix_key()
    directory = cache_dir() if key is not None else None
    name = f"patched-prefix-{hashlib.sha256((key or '').encode()).hexdigest()[:16]}.json"
    if directory is not None:
        try:
            saved = json.loads((directory / name).read_text())
            if saved.get("key") == key:
                return Path(saved["prefix"])
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            pass
    found = _ask_build_script()
    directory = cache_dir(create=True) if key is not None else None
    if directory is not None:
        with contextlib.suppress(OSError):
            write_file(directory / name,
                       json.dumps({"key": key, "prefix": str(found)}).encode(), mode=0o600)
        keep_newest(directory, ".json", KEEP_PREFIX_MEMOS, prefix="patched-prefix-")
    return found


#: How many prefix memos the cache keeps: a key is a checkout's patches with their mtimes, so
#: every edit of a patch (or a new checkout) adds one.
KEEP_PREFIX_MEMOS = 16


def _prefix_key() -> str | None:
    try:
        inputs = [_require_script(), *sorted((BUILD_SCRIPT.parent / "patches").glob("*"))]
        stamp = [f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in inputs]
    except (OSError, QemuBuildError):
        return None
    env = [os.environ.get(v, "") for v in ("MACHINEDESC_QEMU_CACHE", "MACHINEDESC_CACHE", "XDG_CACHE_HOME", "HOME")]
    return json.dumps([stamp, env])


def _ask_build_script() -> Path:
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


def build(extra_args: list[str]) -> None:
    """Run the build script with ``extra_args``; its output goes to the terminal.

    Raises QemuBuildError (exit 7) when the script is missing or fails.

    QEMU's configure runs the ``python3`` first on PATH and needs meson from
    it: this interpreter's directory goes first, so a virtual environment
    made by scripts/install.sh (which holds the locked meson) is used even
    when it is not activated.
    """
    env = dict(os.environ, PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    code = subprocess.run(["bash", str(_require_script()), *extra_args], check=False, env=env).returncode
    if code != 0:
        how = f"exit status {code}" if code > 0 else f"killed by signal {-code}"
        raise QemuBuildError(f"machinedesc: {BUILD_SCRIPT} failed ({how}); its output above says why")
