"""machinedesc's private directories for QEMU: a fresh 0700 directory per QEMU, and the removal of stale ones.

A directory records the machinedesc process that owns it (``owner``: its pid
and start time), so that one left behind by a machinedesc that was SIGKILLed
is removed by the next one (``reap_stale``), with the QEMU still running
from it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
from pathlib import Path

#: Prefix of machinedesc's private directories in $TMPDIR.
WORKDIR_PREFIX = "machinedesc-"


#: The file in a private directory naming the machinedesc process that owns it.
OWNER_FILE = "owner"


def _process_start(pid: int) -> str | None:
    """The start time of process ``pid`` (clock ticks since boot), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22, counted after the parenthesised command name (which may hold blanks).
    fields = stat.rsplit(")", 1)[-1].split()
    return fields[19] if len(fields) > 19 else None


def make_workdir() -> Path:
    """A fresh 0700 private directory in $TMPDIR that records its owner (this process).

    First removes the directories of machinedesc processes that no longer
    exist (see ``reap_stale``).
    """
    reap_stale()
    workdir = Path(tempfile.mkdtemp(prefix=WORKDIR_PREFIX))
    os.chmod(workdir, 0o700)
    (workdir / OWNER_FILE).write_text(f"{os.getpid()} {_process_start(os.getpid()) or ''}\n")
    return workdir


def _kill_orphan(workdir: Path) -> None:
    """SIGKILL the QEMU of a stale directory, if it still runs (its command line names the directory)."""
    with contextlib.suppress(OSError, ValueError):
        pid = int((workdir / "qemu.pid").read_text().strip())
        if str(workdir).encode() in Path(f"/proc/{pid}/cmdline").read_bytes():
            os.kill(pid, signal.SIGKILL)


def reap_stale(tmpdir: Path | None = None) -> list[Path]:
    """Remove our private directories whose owner process is gone (machinedesc was SIGKILLed).

    Only directories of this user that hold an ``owner`` file are touched: a
    directory being created right now has none yet, and ``--detach`` removes
    its own so that the user decides when it goes.  Returns what was removed.
    """
    base = tmpdir if tmpdir is not None else Path(tempfile.gettempdir())
    removed: list[Path] = []
    try:
        entries = list(base.glob(WORKDIR_PREFIX + "*"))
    except OSError:
        return removed
    for entry in entries:
        try:
            st = entry.lstat()
            if not entry.is_dir() or entry.is_symlink() or st.st_uid != os.geteuid():
                continue
            pid_text, _, start = (entry / OWNER_FILE).read_text().strip().partition(" ")
            pid = int(pid_text)
        except (OSError, ValueError):
            continue
        alive = _process_start(pid)
        if alive is not None and (not start or alive == start):
            continue
        _kill_orphan(entry)
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed
