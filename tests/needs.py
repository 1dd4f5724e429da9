"""What a test needs from the machine: skipped loudly outside CI, a failure under CI.

CI (``CI`` set, as .ci/run sets it) has everything the README's install gives,
and runs as root: a test that cannot run there has found a missing install
step, so it fails instead of skipping.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NoReturn

import pytest

IN_CI = bool(os.environ.get("CI"))


def missing(reason: str) -> NoReturn:
    """Skip loudly outside CI; fail under CI, where everything must be there."""
    if IN_CI:
        pytest.fail(f"CI is set and {reason}")
    pytest.skip(f"SKIPPED LOUDLY: {reason}")


@contextmanager
def mounted_tmpfs(mnt: Path, options: str) -> Iterator[Path]:
    """A tmpfs mounted at the new directory ``mnt`` with ``options`` (e.g. ``ro,size=64k``), unmounted after."""
    mnt.mkdir()
    if os.geteuid() != 0:
        missing("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mnt)],
                             capture_output=True, text=True, check=False)
    if mounted.returncode:
        missing(f"cannot mount a tmpfs: {mounted.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", str(mnt)], check=False)
