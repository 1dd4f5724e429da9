"""Start QEMU the way a user does for ``--connect``: its QMP socket made ready before QEMU runs.

The test binds and listens on the socket itself and hands QEMU the listening
file descriptor with ``server=on,wait=on``: the first connection (the one under
test) can be made at once, with nothing to poll for, and QEMU accepts it while
it creates the chardev, before any monitor exists. A monitor that accepts its
first client later, while QEMU starts, races with the monitor I/O thread and
sometimes greets twice or never (machinedesc/qemu/process.py, ``QemuProcess``).
"""

from __future__ import annotations

import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def start_user_qemu(argv: Sequence[str], sock: Path, **popen: Any) -> subprocess.Popen[bytes]:
    """``subprocess.Popen(argv + a QMP monitor on sock)``; connect to ``sock`` right away.

    ``sock`` must be a new path shorter than 108 bytes; ``popen`` goes to Popen.
    """
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(str(sock))
        listener.listen(1)
        fd = listener.fileno()
        return subprocess.Popen([*argv, "-chardev", f"socket,id=user-qmp,fd={fd},server=on,wait=on",
                                 "-mon", "chardev=user-qmp,mode=control"], pass_fds=(fd,), **popen)
    finally:
        listener.close()
