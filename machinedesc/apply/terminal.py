"""The terminal while the guest runs: whether keystrokes go to the guest console, and cbreak mode for them."""

from __future__ import annotations

import contextlib
import os
import termios
from collections.abc import Iterator

from ..qemu.process import QemuProcess
from .job import Job, Options


def typing_fd(job: Job, opts: Options) -> int | None:
    """Our stdin, if keystrokes should go to the guest console: a terminal we own, console on stdio."""
    if opts.detach or opts.connect or (opts.serial or "stdio") != "stdio" or not job.console_ids:
        return None
    try:
        if os.isatty(0) and os.tcgetpgrp(0) == os.getpgrp():
            return 0
    except OSError:
        pass
    return None


@contextlib.contextmanager
def keystrokes_to(qemu: QemuProcess, fd: int | None) -> Iterator[None]:
    """While the guest runs, send each key typed on terminal ``fd`` to its console.

    The terminal is put in cbreak mode (no line editing, no local echo: the
    guest echoes) but keeps ISIG, so Ctrl-C still reaches machinedesc, which
    shuts QEMU down; the previous mode is restored on the way out.
    """
    if fd is None:
        yield
        return
    import asyncio  # here: typing_fd is asked before QEMU starts, ahead of asyncio (apply.spawn)

    loop = asyncio.get_running_loop()
    saved = termios.tcgetattr(fd)
    mode = termios.tcgetattr(fd)
    mode[3] &= ~(termios.ECHO | termios.ICANON)
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0

    def typed() -> None:
        try:
            data = os.read(fd, 4096)
        except OSError:
            data = b""
        if data:
            qemu.feed(data)
        else:
            loop.remove_reader(fd)
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        loop.add_reader(fd, typed)
        yield
    finally:
        loop.remove_reader(fd)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)
