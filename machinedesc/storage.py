"""Files, safely: the one atomic-write helper, the one input reader, the one cache-directory helper.

Every file machinedesc writes (``plan -o``, the plan cache, the capability
cache, the patched-prefix memo) goes through ``write_file``; every input file
(boards and their includes, QMP files, firmware) is checked by
``check_regular`` or read by ``read_regular``; every cache directory it reads
or writes comes from ``cache_dir``.
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO


def write_file(path: Path, data: bytes, *, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` without ever leaving half a file or clobbering what ``path`` is.

    - A regular file (or a new path) is replaced atomically: a temporary file
      in the same directory, renamed over it.  An existing file keeps its
      permission bits; a new one gets ``mode`` (default: 0666 minus the umask).
    - A symlink is written through: its target is what gets replaced.
    - Anything else that already exists and is not a directory (``/dev/null``,
      a FIFO, a terminal) is written in place: it is never replaced by a file.

    Raises OSError (for a missing directory, a read-only file system, a full
    disk, ...); no temporary file is left behind.
    """
    # What the path is, followed as open() follows it: /dev/stdout and
    # /dev/fd/N (a shell's >(...)) lead to a pipe that realpath() cannot name.
    try:
        st: os.stat_result | None = os.stat(path)
    except FileNotFoundError:
        st = None
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise IsADirectoryError(21, "Is a directory", str(path))
    if st is not None and not stat.S_ISREG(st.st_mode):
        # A device node, FIFO, pipe or socket: never replace it, write into it as a shell's `>` would.
        with _open_special(path, st) as out:
            out.write(data)
        return
    # Write through symlinks: the rest works on the final target.
    real = Path(os.path.realpath(path))
    if st is not None:
        perms = stat.S_IMODE(st.st_mode)
    elif mode is not None:
        perms = mode
    else:
        perms = 0o666 & ~_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{real.name}.", suffix=".tmp", dir=real.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), perms)
            if st is not None and os.geteuid() == 0:
                # Root rewriting someone's file keeps its owner, as an in-place write would.
                with contextlib.suppress(OSError):
                    os.fchown(out.fileno(), st.st_uid, st.st_gid)
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, real)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _open_special(path: Path, st: os.stat_result) -> BinaryIO:
    """``path`` (not a regular file) opened for writing; a FIFO nobody reads yet is waited for, with a note.

    Opening a FIFO for writing blocks until a reader opens it, as a shell's
    ``> fifo`` does; the note on stderr says why nothing happens (Ctrl-C stops
    the wait: nothing was written, nothing is left behind).
    """
    if stat.S_ISFIFO(st.st_mode):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno != errno.ENXIO:  # ENXIO: no reader yet
                raise
            print(f"machinedesc: waiting for a process to read the FIFO {path} (Ctrl-C to stop)",
                  file=sys.stderr, flush=True)
        else:
            os.set_blocking(fd, True)  # a full pipe then waits for the reader instead of failing
            return os.fdopen(fd, "wb")
    return open(path, "wb")


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def cache_root() -> Path:
    """``$MACHINEDESC_CACHE``, else ``$XDG_CACHE_HOME/machinedesc``, else ``~/.cache/machinedesc``."""
    return Path(os.environ.get("MACHINEDESC_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "machinedesc"))


def cache_dir(*parts: str, create: bool = False) -> Path | None:
    """The cache directory ``$MACHINEDESC_CACHE/PARTS`` (default ``$XDG_CACHE_HOME/machinedesc``, ``~/.cache``).

    Returns None, after a one-line warning on stderr, when the directory (or
    the cache root above it) exists but is not safe to read: not a directory,
    not owned by this user, or writable by group or others - a file planted
    there must not steer machinedesc.  With ``create``, missing directories
    are made with mode 0700; None if that fails.
    """
    root = cache_root()
    path = root.joinpath(*parts)
    for directory in (root, path) if parts else (root,):
        if create:
            try:
                directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            except OSError:
                return None
        problem = unsafe_directory(directory)
        if problem == "missing":
            return None  # nothing cached yet
        if problem:
            warn_once(f"machinedesc: warning: ignoring cache directory {directory}: {problem}")
            return None
    return path


def keep_newest(directory: Path, suffix: str, keep: int, prefix: str = "") -> None:
    """Delete all but the ``keep`` most recently used ``prefix*suffix`` files of cache ``directory``.

    "Used" is the modification time: a cache hit refreshes it (``touch``), so
    this bounds a content-keyed cache (``boot/<sha256>.dtb``, one per
    ``--append``) to its ``keep`` latest entries.  Best effort: a file that
    vanished or cannot be removed is skipped.
    """
    entries = []
    for path in directory.glob(f"{prefix}*{suffix}"):
        with contextlib.suppress(OSError):
            entries.append((path.stat().st_mtime_ns, path.name, path))
    entries.sort(reverse=True)
    for _, _, path in entries[keep:]:
        with contextlib.suppress(OSError):
            path.unlink()


def unsafe_directory(directory: Path) -> str | None:
    """Why ``directory`` must not be trusted ('missing' if it does not exist), or None if it may be."""
    try:
        st = os.lstat(directory)
    except FileNotFoundError:
        return "missing"
    except OSError as exc:
        return exc.strerror or str(exc)
    if not stat.S_ISDIR(st.st_mode):
        return "not a directory"
    if st.st_uid != os.geteuid():
        return f"owned by uid {st.st_uid}, not by you (uid {os.geteuid()})"
    if st.st_mode & 0o022:
        return f"writable by group or others (mode {stat.S_IMODE(st.st_mode):04o}; chmod go-w it)"
    return None


_warned: set[str] = set()


def warn_once(text: str) -> None:
    """Print ``text`` on stderr, once per process."""
    if text not in _warned:
        _warned.add(text)
        print(text, file=sys.stderr)


def same_file(output: Path, inputs: Sequence[Path]) -> Path | None:
    """The input that ``output`` would overwrite (the same file, through any link), else None."""
    for source in inputs:
        with contextlib.suppress(OSError):
            if output.exists() and os.path.samefile(output, source):
                return source
    return None


_FILE_KINDS = {stat.S_IFDIR: "a directory", stat.S_IFIFO: "a FIFO (named pipe)", stat.S_IFCHR: "a character device",
               stat.S_IFBLK: "a block device", stat.S_IFSOCK: "a socket"}


class FileProblem(Exception):
    """An input file that cannot be read: missing, not a regular file, too large; the message says which."""

    def __init__(self, message: str, hint: str | None = None, strerror: str | None = None) -> None:
        super().__init__(message)
        #: What is wrong, said of the file: "is a directory, ...", "cannot read: ...".
        self.message = message
        self.hint = hint
        #: The system's reason when the file could not be opened or read.
        self.strerror = strerror

    def about(self, name: str) -> str:
        """The message about a file as another file names it (an include)."""
        return f"cannot read '{name}': {self.strerror}" if self.strerror else f"'{name}' {self.message}"


def _not_regular(mode: int, hint: str | None) -> FileProblem | None:
    if stat.S_ISREG(mode):
        return None
    kind = _FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
    return FileProblem(f"is {kind}, not a regular file", hint)


def check_regular(path: Path, hint: str | None = None) -> os.stat_result:
    """``path``'s status, if it is a regular file; raises FileProblem (and not OSError) otherwise.

    Inputs (boards, QMP files, firmware) must be regular files: a FIFO blocks a
    reader for ever and a device such as /dev/zero never ends. ``hint`` goes
    with the "not a regular file" problem.
    """
    try:
        st = os.stat(path)
    except OSError as err:
        loop_hint = "symbolic links that lead in a circle" if err.errno == errno.ELOOP else None
        raise FileProblem(f"cannot read: {err.strerror}", loop_hint, err.strerror) from None
    problem = _not_regular(st.st_mode, hint)
    if problem:
        raise problem
    return st


def read_regular(path: Path, limit: int, too_big: FileProblem, hint: str | None = None) -> bytes:
    """The bytes of regular file ``path``, at most ``limit`` of them (else ``too_big`` is raised).

    Anything but a regular file is refused before it is opened, and again on
    the open file in case it was replaced in between; a file that grows past
    ``limit`` while it is read is refused too.

    Raises:
        FileProblem: not a regular file, larger than ``limit``, or unreadable.
    """
    if check_regular(path, hint).st_size > limit:
        raise too_big
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as err:
        raise FileProblem(f"cannot read: {err.strerror}", None, err.strerror) from None
    try:
        problem = _not_regular(os.fstat(fd).st_mode, hint)
        if problem:
            raise problem
        chunks: list[bytes] = []
        size = 0
        while chunk := os.read(fd, min(1 << 20, limit + 1 - size)):
            chunks.append(chunk)
            size += len(chunk)
            if size > limit:  # it grew since the stat
                raise too_big
        return b"".join(chunks)
    except OSError as err:
        raise FileProblem(f"cannot read: {err.strerror}", None, err.strerror) from None
    finally:
        os.close(fd)
