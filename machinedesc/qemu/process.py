"""Start and stop one QEMU process: private socket directory, no shell, console relay, cleanup.

The process runs in its own session (so the terminal's Ctrl-C reaches only
machinedesc, which then shuts QEMU down cleanly), gets machinedesc's QMP
monitor as one end of a socket pair that is connected before QEMU starts (see
``QemuProcess``), plus a listening QMP socket for people who connect later
(``--paused``, ``--detach``), writes
its stderr to a file whose tail goes into error messages, and has its stdout
on a pipe that is relayed to our stdout (that is where ``-chardev stdio``
writes, so the guest console works without handing QEMU the terminal).
Everything lives in a fresh 0700 directory that ``cleanup()`` removes; the
directory records machinedesc's pid (``owner``), so that a directory left by
a machinedesc that was SIGKILLed is removed by the next one (``workdir``).
Which binary to start is ``binary.find_binary``'s answer; the console's
``-chardev`` options are rewritten by ``chardevs``.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

from ..errors import QemuError
from .chardevs import SUN_PATH_MAX
from .workdir import OWNER_FILE, make_workdir

_PR_SET_PDEATHSIG = 1


def _set_pdeathsig() -> None:
    # Runs in the child between fork and exec: if machinedesc dies without
    # cleaning up (SIGKILL), the kernel kills QEMU too.
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class QemuProcess:
    """One running QEMU started by machinedesc.  Always call ``cleanup()`` (or use ``with``).

    ``args`` are the emulator arguments without the binary and without any
    QMP monitor. Two monitors are added, plus ``-pidfile``:

    - ``machinedesc-qmp``: machinedesc's own, ``-chardev socket,fd=N`` in
      client mode on one end of a ``socketpair()`` (``qmp_socket`` is ours).
      QEMU finds it connected when it creates the chardev, before any monitor
      exists. A monitor whose chardev instead accepts a connection while QEMU
      starts races with the monitor I/O thread that installs the QMP handlers:
      both deliver CHR_EVENT_OPENED (chardev/char.c ``qemu_chr_be_event`` and
      chardev/char-fe.c ``qemu_chr_fe_set_handlers_full``). Measured on QEMU
      10.0.2, 2 cores at load 2-4.5: 9 of 4,500 such connections got the
      greeting twice (the client then fails negotiation) or never; with the
      pair, 0 of 8,900.
    - ``machinedesc-user-qmp``: a listening socket at ``qmp_path`` for a person
      or tool connecting once QEMU is up (``--paused``, ``--detach``).

    ``console`` receives QEMU's stdout (the ``stdio`` chardev) chunk by chunk;
    None sends it to /dev/null; ``close_console`` closes it in ``cleanup()``.
    A failed write (other than a closed pipe) is kept in ``console_error`` and
    reported through ``on_console_error``.  ``keep_alive=True`` (detach) does
    not tie QEMU's life to ours.
    """

    def __init__(self, binary: Path, args: Sequence[str], *, console: BinaryIO | None,
                 keep_alive: bool = False, workdir: Path | None = None, console_input: bool = False,
                 close_console: bool = False) -> None:
        self.binary = binary
        self.workdir = workdir if workdir is not None else make_workdir()
        self.qmp_path = self.workdir / "qmp.sock"
        self.stderr_path = self.workdir / "qemu.stderr"
        self.pidfile = self.workdir / "qemu.pid"
        self.detached = False
        self._console = console
        self._close_console = console if close_console else None
        #: Why writing the console failed (a full disk, an I/O error), if it did.
        self.console_error: OSError | None = None
        #: Called (from the relay thread) once, when writing the console fails.
        self.on_console_error: Callable[[OSError], None] | None = None
        self._relay: threading.Thread | None = None
        self._first_output: float | None = None
        # A unix socket path is limited to 108 bytes; a deep TMPDIR can exceed it.
        # Binding (and connecting) through /proc/self/fd/DIRFD/qmp.sock is short
        # and names the same file.
        self._dirfd = os.open(self.workdir, os.O_RDONLY | os.O_DIRECTORY)
        self.qmp_socket, qemu_end = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(self.qmp_address)
            listener.listen(4)
            fd = listener.fileno()
            self.argv = [
                str(binary), *args,
                "-chardev", f"socket,id=machinedesc-qmp,fd={qemu_end.fileno()}",
                "-mon", "chardev=machinedesc-qmp,mode=control",
                "-chardev", f"socket,id=machinedesc-user-qmp,fd={fd},server=on,wait=off",
                "-mon", "chardev=machinedesc-user-qmp,mode=control",
                "-pidfile", str(self.pidfile),
            ]
            with open(self.stderr_path, "wb") as err:
                self.proc = subprocess.Popen(
                    self.argv,
                    stdin=subprocess.PIPE if console_input else subprocess.DEVNULL,
                    stdout=subprocess.PIPE if console is not None else subprocess.DEVNULL,
                    stderr=err,
                    pass_fds=(fd, qemu_end.fileno()),
                    start_new_session=True,
                    preexec_fn=None if keep_alive else _set_pdeathsig,
                    close_fds=True,
                )
        except OSError as exc:
            listener.close()
            self.qmp_socket.close()
            os.close(self._dirfd)
            shutil.rmtree(self.workdir, ignore_errors=True)
            raise QemuError(f"cannot start {binary}: {exc}") from exc
        finally:
            # QEMU holds its own copies of the listening socket and its end of the pair now.
            listener.close()
            qemu_end.close()
        if self.proc.stdout is not None:
            self._relay = threading.Thread(target=self._relay_console, name="qemu-console", daemon=True)
            self._relay.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def qmp_address(self) -> str:
        """The listening QMP socket's path for this process (short even when the real path is long)."""
        path = str(self.qmp_path)
        if len(path.encode()) < SUN_PATH_MAX:
            return path
        return f"/proc/self/fd/{self._dirfd}/{self.qmp_path.name}"

    @property
    def first_output(self) -> float | None:
        """``time.monotonic()`` when the console's first byte arrived, if any."""
        return self._first_output

    def _relay_console(self) -> None:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        while True:
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return
            if not chunk:
                return
            if self._first_output is None:
                self._first_output = time.monotonic()
            if self._console is not None:
                try:
                    self._console.write(chunk)
                    self._console.flush()
                except (BrokenPipeError, ValueError):
                    # Our stdout went away (closed pipe): keep draining so QEMU never blocks.
                    self._console = None
                except OSError as exc:
                    # A full disk or an I/O error loses console output: that is a failure.
                    self._console = None
                    self.console_error = exc
                    if self.on_console_error is not None:
                        self.on_console_error(exc)

    def poll(self) -> int | None:
        """QEMU's exit status if it has exited (negative: killed by that signal), else None."""
        return self.proc.poll()

    def stopped(self) -> bool:
        """Whether QEMU is running but stopped (SIGSTOP, SIGTSTP, a debugger): state T or t in /proc."""
        try:
            stat_line = Path(f"/proc/{self.proc.pid}/stat").read_text()
        except OSError:
            return False
        # "pid (comm) S ...": comm may hold spaces and parentheses, the state follows the last ")".
        return stat_line.rpartition(")")[2].split()[:1] in (["T"], ["t"])

    def describe_exit(self) -> str:
        """``exited with status N`` / ``was killed by SIGKILL`` / ``is stopped (...)`` / ``is still running``."""
        rc = self.proc.poll()
        if rc is None and self.stopped():
            return "is stopped (by SIGSTOP, SIGTSTP or a debugger), not running"
        if rc is None:
            return "is still running"
        if rc < 0:
            try:
                name = signal.Signals(-rc).name
            except ValueError:
                name = f"signal {-rc}"
            return f"was killed by {name}"
        return f"exited with status {rc}"

    def stderr_tail(self, lines: int = 15) -> str:
        """The last ``lines`` lines QEMU wrote to stderr ('' if none)."""
        try:
            data = self.stderr_path.read_bytes()[-8192:]
        except OSError:
            return ""
        text = data.decode("utf-8", errors="replace").rstrip()
        return "\n".join(text.splitlines()[-lines:])

    def signal(self, sig: int) -> None:
        """Send ``sig`` to QEMU's process group (it is the group leader)."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, sig)

    def wait(self, timeout: float | None = None) -> int | None:
        """Wait for QEMU to exit; its status, or None on timeout."""
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self, grace: float = 0.0) -> None:
        """End QEMU: SIGTERM and ``grace`` seconds to exit cleanly, then SIGKILL."""
        if self.proc.poll() is not None:
            return
        if grace > 0:
            self.signal(signal.SIGTERM)
            if self.wait(grace) is not None:
                return
        self.signal(signal.SIGKILL)
        self.proc.wait()

    def detach(self) -> None:
        """Leave QEMU running and its directory in place: ``cleanup()`` then only closes our ends.

        The directory no longer names an owner, so later runs never reap it:
        the user removes it once QEMU has exited.
        """
        self.detached = True
        with contextlib.suppress(OSError):
            (self.workdir / OWNER_FILE).unlink()

    def finish_console(self, timeout: float = 2.0) -> None:
        """Wait until everything QEMU wrote to the console has been relayed."""
        if self._relay is not None:
            self._relay.join(timeout)

    def feed(self, data: bytes) -> None:
        """Send ``data`` to QEMU's stdin (what ``-chardev stdio`` reads); ignored once QEMU is gone."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError, ValueError):
                self.proc.stdin.write(data)
                self.proc.stdin.flush()

    def cleanup(self, grace: float = 0.0) -> None:
        """Stop QEMU (unless detached), close our pipe ends, remove the private directory."""
        if self.proc.stdin is not None:
            with contextlib.suppress(OSError):
                self.proc.stdin.close()
        if not self.detached:
            self.stop(grace)
            self.finish_console()
        if self._close_console is not None:
            with contextlib.suppress(OSError):
                self._close_console.close()
        if self.proc.stdout is not None and (self._relay is None or not self._relay.is_alive()):
            self.proc.stdout.close()
        if self._dirfd >= 0:
            os.close(self._dirfd)
            self._dirfd = -1
        self.qmp_socket.close()
        if not self.detached:
            shutil.rmtree(self.workdir, ignore_errors=True)
        elif self.proc.returncode is None:
            # Deliberately left running: stop Popen from tracking (and warning about) it.
            self.proc.returncode = 0

    def __enter__(self) -> QemuProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


